"""Why a task failed, said as plainly as what is known allows.

A step that raised comes back as the :class:`TaskFailed` its task wrote.  Two
failures are the whole run's, not a task's (:func:`run_stopped`): the run's scheduler
went away (:func:`scheduler_lost`), or the datastore stopped answering; either ends the
run with one line that names what went away and the command that resumes it.  Other
failures are Dask's: a cancelled future, a ``KilledWorker`` after the workers
running it kept dying, or an error the cluster's backend can explain (SLURM killed
the job for its memory, ...).  A worker process that died during an attempt is
found by the task's next attempt (``WorkerDied``, naming the dead pid); the nanny
that ran that process logged how it ended (``Worker process 4242 was killed by
signal 9``), and that account is added to the message.

:func:`explain` and :func:`how_it_died` decide from values (tests feed them real
nanny log lines); :func:`failure_of` fetches those values from a failed future.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import signal as signals
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ..exceptions import TaskFailed

#: what the nanny logs when its worker process ends (distributed's ``_death_message``)
_DEATH = r"Worker process {pid} (was killed by signal|exited with status) (-?\d+)"
#: nanny logs as ``Client.get_worker_logs(nanny=True)`` gives them: address -> (level, line)
NannyLogs = Mapping[str, Sequence[tuple[str, str]]]


def failure_of(future: Any, pathspec: str,
               account: Callable[[BaseException], BaseException | None] | None = None
               ) -> TaskFailed:
    """The failure of the task (or batch) whose ``future`` did not finish; ``account``
    asks the cluster's backend about an error (None: the run's default cluster)."""
    exc = future.exception() if future.status == "error" else None
    if isinstance(exc, TaskFailed):
        if exc.type_name == "WorkerDied":
            return _with_nanny_account(future, exc)
        return exc
    return explain(pathspec, exc, account(exc) if account and exc is not None else None)


def explain(pathspec: str, exc: BaseException | None,
            diagnosis: BaseException | None = None) -> TaskFailed:
    """A failure Dask reported for the task ``pathspec``: ``exc`` (None: it was cancelled),
    with the backend's ``diagnosis`` of it where there is one."""
    if exc is None:
        return TaskFailed(pathspec, "Cancelled", "the task was cancelled")
    if diagnosis is not None:  # e.g. SLURM killed the job for using too much memory
        return TaskFailed(pathspec, type(diagnosis).__name__, str(diagnosis))
    name = type(exc).__name__
    if name == "KilledWorker":
        return TaskFailed(pathspec, "WorkerDied",
                          "Dask gave up on it: the workers running it kept dying "
                          f"(killed, segfault, os.abort() or out of memory). {exc}")
    return TaskFailed(pathspec, name, str(exc))


def dead_pid(failure: TaskFailed) -> str | None:
    """The pid of the dead worker process a ``WorkerDied`` failure names, if it does."""
    found = re.search(r"\(pid (\d+)\)", failure.message)
    return found.group(1) if found else None


def how_it_died(failure: TaskFailed, logs: NannyLogs) -> TaskFailed:
    """``failure`` with the nanny's account of its dead process added (``it was killed by
    signal 9 (SIGKILL)``), or as it is when no nanny logged that pid's end."""
    pid = dead_pid(failure)
    if pid is None:
        return failure
    pattern = re.compile(_DEATH.format(pid=pid))
    for lines in logs.values():
        for _, line in lines:
            hit = pattern.search(line)
            if hit is None:
                continue
            number = int(hit.group(2))
            if hit.group(1).startswith("was killed"):
                try:
                    name = signals.Signals(number).name
                except ValueError:
                    name = f"signal {number}"
                how = f"it was killed by signal {number} ({name})"
            else:
                how = f"it exited with status {number}"
            return TaskFailed(failure.pathspec, failure.type_name,
                              f"{failure.message}; {how}", failure.traceback_text)
    return failure


def _with_nanny_account(future: Any, failure: TaskFailed) -> TaskFailed:
    if dead_pid(failure) is None:
        return failure
    try:
        logs = future.client.get_worker_logs(nanny=True)
    except Exception:  # noqa: BLE001  no account: the failure as it is
        return failure
    return how_it_died(failure, logs)


# -- what the whole run needs, gone -----------------------------------------------------------

#: the failures that stop the run rather than fail a task: resume goes on once it is back
RUN_STOPPERS = ("SchedulerGone", "DatastoreUnavailable")


def scheduler_lost(future: Any, client: Any) -> bool:
    """Whether ``future`` ended because its client lost the scheduler (killed, restarted,
    unreachable): distributed cancels every future then, with that reason."""
    state = getattr(future, "_state", None)
    reason = getattr(getattr(state, "exception", None), "reason", None)
    return reason == "scheduler-connection-lost" or \
        getattr(client, "status", "running") in ("connecting", "closing", "closed")


def scheduler_went_away(exc: BaseException, client: Any, wait: float = 5.0) -> bool:
    """Whether the driver's own call that raised ``exc`` (fetching a result...) failed
    because the scheduler went away: a broken connection, and the client, given ``wait``
    seconds to notice, has lost it too."""
    if not isinstance(exc, OSError):  # distributed's CommClosedError is one
        return False
    deadline = time.monotonic() + wait
    while getattr(client, "status", "running") == "running":
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@contextmanager
def quiet_once_lost(client: Any = None) -> Iterator[_WhileConnected]:
    """Within: distributed's client logs nothing once it has lost its scheduler (its tries
    to reconnect, then its close cancelling them, each with a traceback); the run says
    what happened in one line instead. What it logs while connected passes. The client
    may be given later, as the ``client`` of what this yields (entered first, the filter
    is left last: after the client's close)."""
    logger = logging.getLogger("distributed.client")
    connected = _WhileConnected(client)
    logger.addFilter(connected)
    try:
        yield connected
    finally:
        logger.removeFilter(connected)


class _WhileConnected(logging.Filter):
    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(self.client, "status", "running") == "running"


def scheduler_gone(run_pathspec: str, address: str) -> TaskFailed:
    """The run's scheduler at ``address`` went away; :func:`run_stopped` says the rest."""
    return TaskFailed(run_pathspec, "SchedulerGone",
                      f"the Dask scheduler at {address} went away (its client lost the "
                      f"connection and every task on it with it).")


def run_stopped(failure: TaskFailed, run_pathspec: str, flow_file: str,
                scheduler_address: str | None) -> TaskFailed:
    """``failure`` as the run's one line when it stops the whole run (:data:`RUN_STOPPERS`):
    what went away, its last error, and the command that continues the run; other
    failures as they are."""
    if failure.type_name not in RUN_STOPPERS:
        return failure
    run_id = run_pathspec.rsplit("/", 1)[-1]
    command = shlex.join(["python", _shown(flow_file), "resume", "--origin-run-id", run_id])
    if failure.type_name == "SchedulerGone":
        then = "Start it again (or another one), then continue the run with"
    else:
        then = "Once it answers again, continue the run with"
    if scheduler_address:
        command += " --scheduler-address ADDRESS"
    return TaskFailed(run_pathspec, failure.type_name,
                      f"{failure.message.rstrip('. ')}. {then}: {command}", input_error=True)


def _shown(flow_file: str) -> str:
    """The flow file as the user would type it: relative to here when it is below."""
    relative = os.path.relpath(flow_file)
    return flow_file if relative.startswith("..") else relative
