"""Every error daskflow raises on purpose.

One root, :class:`DaskflowException`; each user-facing failure has its own
subclass whose message says what was wrong, where, and what to do.  Subclasses
also inherit the builtin a caller would expect (``ValueError``, ``LookupError``,
``TimeoutError``), as fsspec and distributed do.  Only the CLI turns these into
exit codes.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class DaskflowException(Exception):
    """Root of every error daskflow raises on purpose."""

    headline = "daskflow error"


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return " Did you mean 'x'?" when a close match exists, else ""."""
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


class FlowDefinitionError(DaskflowException, ValueError):
    """The flow's source is malformed: found before any task runs.

    Carries the flow file and line so the message can point at the code.
    """

    headline = "Flow definition error"

    def __init__(self, message: str, *, step: str | None = None,
                 file: str | None = None, lineno: int | None = None) -> None:
        self.step = step
        self.file = file
        self.lineno = lineno
        where = ""
        if file:
            where = f"{file}:{lineno}: " if lineno else f"{file}: "
        super().__init__(f"{where}{message}")


class MissingMainGuardError(FlowDefinitionError):
    """The flow file starts the flow at import time, which breaks worker processes."""


class ParameterError(DaskflowException, ValueError):
    """A parameter value is missing, unknown or of the wrong type."""

    headline = "Bad parameter"


class ForeachError(DaskflowException, ValueError):
    """A foreach cannot fan out: missing, not iterable, empty or too wide."""

    headline = "Foreach error"


class ReservedNameError(DaskflowException, AttributeError):
    """A step assigned a name that is not an artifact's: daskflow's own (``self.index``,
    ``self.input``, ``self.next``...), a class constant or a Parameter."""

    headline = "Reserved name"


class MergeArtifactsError(DaskflowException, ValueError):
    """``merge_artifacts`` found conflicting values or was called wrongly."""

    headline = "merge_artifacts error"


class UnhandledTransitionError(DaskflowException, ValueError):
    """A step called ``self.next`` differently from what its source says, or not at all."""

    headline = "Transition error"


class ArtifactError(DaskflowException, ValueError):
    """An artifact cannot be stored or loaded (unpicklable, corrupt, missing)."""

    headline = "Artifact error"


class DatasetError(DaskflowException, ValueError):
    """A dataset cannot be opened or split: wrong format, no files, not on storage."""

    headline = "Dataset error"


class DataNotFoundError(DaskflowException, LookupError):
    """A flow, run, step, task or artifact the caller named does not exist."""

    headline = "Not found"


class TagError(DaskflowException, ValueError):
    """A tag that cannot be added or removed (empty, a system tag, a running run)."""

    headline = "Tag error"


class InvalidNameError(DaskflowException, ValueError):
    """A flow name, run id, step name or task id is not what daskflow makes.

    Checked before any path is built from it, so a name like ``../../tmp``
    can never reach outside the datastore.
    """

    headline = "Invalid name"


class DatastoreWriteError(DaskflowException, OSError):
    """A file could not be written to the datastore (disk full, read-only, no permission).

    The partial file is removed before this is raised.  ``path`` is where the
    write was going and ``errno`` the cause's, so ``except OSError`` still works.
    """

    headline = "Datastore write failed"

    def __init__(self, message: str, path: str = "", errno: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.errno = errno

    def __reduce__(self):  # travels from a worker with its path and errno
        return (type(self), (str(self), self.path, self.errno))


class DatastoreUnavailable(DaskflowException, ConnectionError):
    """The datastore stopped answering: every try of one read or write failed with an
    error that may pass (throttling, a refused or reset connection, a timeout).

    ``store`` names it (``s3://bucket/prefix``), ``last_error`` its last answer.  What
    was stored before stays: ``resume`` continues from there once it answers again.
    """

    headline = "Datastore unavailable"

    def __init__(self, message: str, store: str = "", last_error: str = "") -> None:
        super().__init__(message)
        self.store = store
        self.last_error = last_error

    def __str__(self) -> str:  # ConnectionError would show its args as a tuple
        return self.args[0] if self.args else ""

    def __reduce__(self):  # travels from a worker with its store
        return (type(self), (str(self), self.store, self.last_error))


class ConfigurationError(DaskflowException, ValueError):
    """A setting in ``dask.config`` under ``daskflow`` is invalid."""

    headline = "Configuration error"


class RunOptionError(DaskflowException, TypeError, ValueError):
    """A run option that ``Runner(...)`` does not take, or a value out of its bounds
    (a ``TypeError`` as Python's own unknown keyword, a ``ValueError`` as a bad value)."""

    headline = "Run option error"


class ResumeError(DaskflowException, ValueError):
    """A run cannot be resumed as asked."""

    headline = "Cannot resume"


class ClusterError(DaskflowException, RuntimeError):
    """A Dask cluster could not be started, reached or sized as asked."""

    headline = "Cluster error"


class TaskFailed(DaskflowException, RuntimeError):
    """A task's step body raised; travels from worker to driver as plain text.

    The original exception is never pickled (it may not unpickle on the
    driver): its type name, message and formatted traceback travel instead.
    ``input_error``: daskflow refused what the step did (a foreach over no list, an
    artifact it cannot store, ...) with a message that says where and what to do, so
    the command line prints that line without the traceback.  ``cause`` says why the
    last attempt failed (``daskflow.causes``: ``exception``, ``out-of-memory``, ...).
    """

    headline = "Task failed"

    def __init__(self, pathspec: str, type_name: str, message: str,
                 traceback_text: str = "", input_error: bool = False,
                 cause: str = "exception") -> None:
        self.pathspec = pathspec
        self.type_name = type_name
        self.message = message
        self.traceback_text = traceback_text
        self.input_error = input_error
        self.cause = cause
        super().__init__(f"Task {pathspec} failed: {type_name}: {message}")

    def __reduce__(self):  # keep it picklable whatever the original was
        return (type(self), (self.pathspec, self.type_name, self.message,
                             self.traceback_text, self.input_error, self.cause))

    def explained(self) -> str:
        """``raised ValueError: ...``, or for a task that did not raise, why it failed:
        ``failed (out-of-memory): ...``."""
        if self.cause == "exception":
            return f"raised {self.type_name}: {self.message}"
        return f"failed ({self.cause}): {self.message}"


class StepError(DaskflowException, RuntimeError):
    """The failed step's own traceback, raised as the cause of :class:`RunFailed`, so a
    notebook or script shows the step's code, not the runtime's."""

    headline = "Step failed"

    def __init__(self, failure: TaskFailed) -> None:
        self.failure = failure
        text = failure.traceback_text.rstrip()
        super().__init__(f"{failure.pathspec}\n{text}" if text else
                         f"{failure.pathspec}: {failure.type_name}: {failure.message}")


class RunFailed(DaskflowException, RuntimeError):
    """A run ended without its ``end`` step succeeding."""

    headline = "Run failed"

    def __init__(self, message: str, *, run_pathspec: str | None = None,
                 failure: TaskFailed | None = None) -> None:
        self.run_pathspec = run_pathspec
        self.failure = failure
        super().__init__(message)


class MetaflowFeatureError(DaskflowException, ImportError):
    """A flow file asked for a Metaflow feature that daskflow does not have.

    An ``ImportError`` (not an ``AttributeError``) so that ``from metaflow import S3``
    shows this message rather than Python's "cannot import name".
    """

    headline = "Not in daskflow"
