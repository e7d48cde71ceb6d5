"""Resource requests and the cluster backends that serve them.

>>> from daskflow.clusters import ResourceRequest, get_backend
>>> backend = get_backend("local")        # or None: daskflow.cluster.backend
>>> with backend.open(ResourceRequest(cpu=1, workers=2)) as cluster:  # doctest: +SKIP
...     client = Client(cluster)

Backends other than ``local`` are imported only when asked for, so that
``import daskflow`` does not import dask_jobqueue, asyncssh, ...

Adding a backend needs no file outside this package and its block in
``daskflow.yaml``: the steps are in this package's README.md.
"""

from .base import ClusterBackend
from .errors import (
                     BackendNotInstalledError,
                     BackendUnavailableError,
                     ClusterStartTimeoutError,
                     ClusterTeardownError,
                     ResourceRequestError,
                     UnknownBackendError,
                     WorkerKilledError,
)
from .local import LocalBackend
from .registry import (
                     DaskClusterBackend,
                     available_backends,
                     get_backend,
                     get_backend_class,
                     known_backends,
                     register_backend,
)
from .request import ResourceRequest

__all__ = [
    "BackendNotInstalledError",
    "BackendUnavailableError",
    "ClusterBackend",
    "ClusterStartTimeoutError",
    "ClusterTeardownError",
    "DaskClusterBackend",
    "LocalBackend",
    "ResourceRequest",
    "ResourceRequestError",
    "UnknownBackendError",
    "WorkerKilledError",
    "available_backends",
    "get_backend",
    "get_backend_class",
    "known_backends",
    "register_backend",
]
