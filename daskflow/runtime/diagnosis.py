"""Why a task failed, said as plainly as what is known allows.

A step that raised comes back as the :class:`TaskFailed` its task wrote.  Other
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

import re
import signal as signals
from collections.abc import Callable, Mapping, Sequence
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
