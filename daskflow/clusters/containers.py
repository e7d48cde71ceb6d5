"""What the backends whose workers run in containers elsewhere share (kubernetes, aws)."""

from __future__ import annotations

from .base import ClusterBackend


class ContainerBackend(ClusterBackend):
    """A backend whose workers run from a container image on machines that are not this one.

    Its config section has an ``image`` setting (null: the stock Dask image of
    this Dask version). The workers share no filesystem with the driver.
    """

    shares_filesystem = False

    def image(self) -> str:
        """The workers' image: ``image`` from the settings, else ``ghcr.io/dask/dask:<dask>``."""
        image = self.option("image")
        if image:
            return str(image)
        import dask
        return f"ghcr.io/dask/dask:{dask.__version__}"
