"""Checks that refuse a run before its id is claimed: the scheduler it names must
answer, and where each step runs must be able to reach the datastore.

A backend declares whether its workers share this machine's filesystem
(``shares_filesystem``: True for local, SLURM and SSH by default; False for
Kubernetes and AWS; None when only a probe can tell, as for an existing
scheduler).  A local-folder datastore with a step whose workers cannot see it
would write artifacts into a container's own disk, where the driver never sees
them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .. import config
from ..datastore.files import probe
from ..exceptions import ClusterError, ConfigurationError


@contextmanager
def connect_scheduler(address: str) -> Iterator[Any]:
    """A client of the existing scheduler at ``address``, within
    ``daskflow.run.scheduler-timeout``, closed after the block; one clear line when it
    does not answer. Its workers' versions are for the environment check to judge."""
    from distributed import Client

    from ..remote.environment import our_version_check
    timeout = config.get("run.scheduler-timeout")
    try:
        with our_version_check():
            client = Client(address, timeout=timeout)
    except OSError as exc:
        raise ClusterError(
            f"Cannot reach the Dask scheduler at {address} within {timeout}: {exc}. Check "
            f"the address (tcp://host:8786) and that the scheduler runs.") from exc
    with client:
        yield client


def is_local_root(root: str) -> bool:
    return "://" not in root or root.startswith("file://")


def refuse_unreachable_datastore(root: str, where: dict[str, Any]) -> None:
    """``where`` maps a place (a step name, or "" for the run's default cluster) to its
    backend; refuse the first whose workers cannot reach a local-folder ``root``."""
    if not is_local_root(root):
        return
    for place, backend in where.items():
        if getattr(backend, "shares_filesystem", True) is False:
            what = f"Step '{place}' runs" if place else "The run's default cluster runs"
            raise ConfigurationError(
                f"{what} on the {backend.name} backend, whose workers do not share this "
                f"machine's disk, but the datastore is the local folder {root}. Use a "
                f"datastore they can reach: daskflow.datastore.root: s3://bucket/prefix "
                f"in the Dask config, DASK_DASKFLOW__DATASTORE__ROOT=s3://..., or "
                f"--datastore-root s3://... (pip install 'daskflow[s3]').")


def probe_scheduler_sees(root: str, address: str, timeout: str, client: Any = None) -> None:
    """For an existing scheduler with a local-folder datastore: refuse when its workers
    do not see a file written here (they run elsewhere, or in containers).  ``client``:
    ask through it rather than through a new connection."""
    if not is_local_root(root):
        return
    from distributed import Client

    from ..remote.environment import our_version_check
    with probe(root) as marker:
        try:
            if client is not None:
                seen = client.run(os.path.exists, marker)
            else:
                with our_version_check():  # the run's environment check says it
                    client = Client(address, timeout=timeout)
                with client:
                    seen = client.run(os.path.exists, marker)
        except OSError:
            return  # unreachable: the run's own connection says so, with the address
    blind = sorted(worker for worker, ok in seen.items() if not ok)
    if blind:
        raise ConfigurationError(
            f"The workers of the scheduler at {address} cannot see the local datastore "
            f"folder {root} (not found on {', '.join(blind[:3])}"
            f"{' and others' if len(blind) > 3 else ''}). Use a datastore they can reach: "
            f"--datastore-root s3://bucket/prefix (or daskflow.datastore.root), or a "
            f"folder shared with them.")
