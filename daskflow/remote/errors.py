"""The errors of shipping code to workers and checking their environment."""

from __future__ import annotations

from ..exceptions import DaskflowException


class CodePackageTooLargeError(DaskflowException, ValueError):
    """The files a run would ship to its workers add up to more than ``daskflow.code.max-size``."""

    headline = "Code package too large"


class CodeInstallError(DaskflowException, RuntimeError):
    """The code package could not be installed on a cluster's workers."""

    headline = "Code package not installed"


class WorkerEnvironmentError(DaskflowException, RuntimeError):
    """A cluster's workers differ from the driver in a way that breaks unpickling.

    ``mismatches`` holds every difference found, the harmless ones too.
    """

    headline = "Worker environment mismatch"

    def __init__(self, message: str, mismatches: list | None = None) -> None:
        self.mismatches = list(mismatches or [])
        super().__init__(message)


class WorkerEnvironmentWarning(UserWarning):
    """A cluster's workers differ from the driver in a way that should not break tasks."""
