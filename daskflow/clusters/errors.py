"""The errors of the cluster layer, all :class:`~daskflow.exceptions.ClusterError`.

Each also inherits the builtin a caller would expect (``LookupError`` for an
unknown backend, ``ImportError`` for a missing optional dependency,
``ValueError`` for a request no machine can meet, ``TimeoutError`` for workers
that never came), as distributed's ``WorkerStartTimeoutError`` does.
"""

from __future__ import annotations

from ..exceptions import ClusterError


class UnknownBackendError(ClusterError, LookupError):
    """No backend has the name asked for (and it is no importable dotted path)."""

    headline = "Unknown cluster backend"


class BackendNotInstalledError(ClusterError, ImportError):
    """The backend's optional dependency is missing; the message says what to install."""

    headline = "Cluster backend not installed"


class BackendUnavailableError(ClusterError):
    """The backend is installed but its service cannot be reached (no ``sinfo``, ...)."""

    headline = "Cluster backend unavailable"


class TLSCredentialsError(ClusterError):
    """The run's TLS certificate and key could not be made (no ``cryptography``, ...)."""

    headline = "TLS error"


class ResourceRequestError(ClusterError, ValueError):
    """A request that this backend can never serve, found before anything starts."""

    headline = "Resource request cannot be met"


class ClusterStartTimeoutError(ClusterError, TimeoutError):
    """Fewer workers than asked for arrived within the start timeout."""

    headline = "Cluster start timeout"

    def __init__(self, message: str, *, expected: int, available: int,
                 timeout: float) -> None:
        self.expected = expected
        self.available = available
        self.timeout = timeout
        super().__init__(message)

    def __reduce__(self):  # keyword-only arguments: keep it picklable
        return (_rebuild, (type(self), str(self), dict(vars(self))))


class WorkerKilledError(ClusterError):
    """A worker died while running a task: out of memory, out of time, preempted, ...

    ``cause`` is one of :data:`daskflow.causes.CAUSES` (``out-of-memory``,
    ``walltime``, ``preempted``, ``worker-lost``); ``evidence`` the lines of the
    backend's own logs or the nanny's events that say so.
    """

    headline = "Worker killed"

    def __init__(self, message: str, *, cause: str = "worker-lost", worker: str | None = None,
                 job_id: str | None = None, evidence: tuple[str, ...] = ()) -> None:
        self.cause = cause
        self.worker = worker
        self.job_id = job_id
        self.evidence = tuple(evidence)
        super().__init__(message)

    def __reduce__(self):
        return (_rebuild, (type(self), str(self), dict(vars(self))))


class ClusterTeardownError(ClusterError):
    """Something of a closed cluster was still running after teardown (and a forced kill)."""

    headline = "Cluster teardown error"


def _rebuild(cls: type[BaseException], message: str, state: dict) -> BaseException:
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    exc.__dict__.update(state)
    return exc
