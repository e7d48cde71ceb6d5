"""How a worker died, as a cause (:mod:`daskflow.causes`) and a sentence.

Each backend maps what its service reports onto the causes in its own folder
(``slurm/deaths.py``: job state and slurmstepd's lines; ``aws/deaths.py``: ECS stop
codes and reasons, EC2 state reasons; ``kubernetes/deaths.py``: pod status), through
``ClusterBackend.explain_worker_death``.  What every backend with Dask's nannies shares
is here: the nanny's account (:class:`NannyAccount`): its memory monitor's
``worker-restart-memory`` event (out of memory) and the exit code its worker process
ended with, which daskflow's nanny plugin reports (``runtime/_exit_watch.py``).

>>> nanny_death(NannyAccount(exitcode=-9), memory_limit=None).message
'it was killed by signal 9 (SIGKILL)'
"""

from __future__ import annotations

import signal as signals
from dataclasses import dataclass, field
from typing import Any

from .. import causes
from .request import format_bytes


@dataclass(frozen=True)
class Death:
    """Why a worker died: a ``cause`` and what the service or the nanny said, in a clause
    that reads after "the worker process running it died: " (``it was killed by signal
    9 (SIGKILL)``, ``SLURM ended job 42 at its time limit ...``), the lines that say so,
    and the backend's id of the job it ran in, where it has one (a SLURM job id)."""

    cause: str
    message: str
    evidence: tuple[str, ...] = ()
    job_id: str | None = None


@dataclass(frozen=True)
class NannyAccount:
    """What a worker's nanny said of its worker process's end: ``exitcode`` (None: nothing,
    e.g. the nanny died with it), its memory monitor's event (``{"rss": ...}``) when that
    stopped it, and the journals of the batches it ran (batch key -> bytes)."""

    exitcode: int | None = None
    memory: dict[str, Any] | None = None
    journals: dict[str, bytes] = field(default_factory=dict)

    @property
    def said(self) -> bool:
        return self.exitcode is not None or self.memory is not None


def exit_words(exitcode: int) -> str:
    """``was killed by signal 9 (SIGKILL)``, ``exited with status 3``.

    >>> exit_words(-6), exit_words(3)
    ('was killed by signal 6 (SIGABRT)', 'exited with status 3')
    """
    if exitcode == 255:
        return "was killed by an unknown signal"
    if exitcode >= 0:
        return f"exited with status {exitcode}"
    try:
        name = signals.Signals(-exitcode).name
    except ValueError:
        name = f"signal {-exitcode}"
    return f"was killed by signal {-exitcode} ({name})"


def nanny_death(account: NannyAccount | None, memory_limit: int | None) -> Death:
    """The nanny's account as a :class:`Death`: ``out-of-memory`` when its memory monitor
    stopped the process, else ``worker-lost`` with how the process ended (if said).

    >>> nanny_death(NannyAccount(-15, {"rss": 1300 * 2**20}), 2**30).cause
    'out-of-memory'
    """
    if account is not None and account.memory is not None:
        rss = int(account.memory.get("rss") or 0)
        limit = f" of its {format_bytes(memory_limit)} limit" if memory_limit else ""
        return Death(causes.OUT_OF_MEMORY,
                     f"it ran out of memory: it used {format_bytes(rss)}, over 95%{limit}, and "
                     f"Dask's nanny stopped it",
                     (f"worker-restart-memory event: {account.memory}",))
    if account is not None and account.exitcode is not None:
        return Death(causes.WORKER_LOST, f"it {exit_words(account.exitcode)}",
                     (f"nanny: worker process exit code {account.exitcode}",))
    return Death(causes.WORKER_LOST,
                 "nothing says why (a kill, a crash in native code or os._exit(), its "
                 "machine lost, or memory)")
