"""Resource requests and the cluster backends that serve them.

>>> from daskflow.clusters import ResourceRequest, get_backend
>>> backend = get_backend("local")        # or None: daskflow.cluster.backend
>>> with backend.open(ResourceRequest(cpu=1, workers=2)) as cluster:  # doctest: +SKIP
...     client = Client(cluster)

Backends other than ``local`` are imported only when asked for, so that
``import daskflow`` does not import dask_jobqueue, asyncssh, ...

Each backend is one folder (``local/``, ``slurm/``, ``kubernetes/``, ``aws/``; ``ssh.py``
while it is small) holding everything about it: start, check, listing and ending its
clusters, label encoding, price. ``daskflow clusters list`` / ``gc`` and the cost
estimate ask each backend the registry knows, so adding one needs its folder, its
block in ``daskflow.yaml`` and its registry line: the steps are in this package's
README.md.
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
