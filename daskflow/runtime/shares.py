"""A run's fair share of a scheduler that other runs use too.

Dask has no fairness between clients: a run that keeps 2,000 tasks in flight makes a
colleague's ten-split run wait behind them. So each run on an existing scheduler
(``--scheduler-address``) bounds itself, with no plugin on the scheduler:

- Runs find each other on the scheduler's own state, which a stock scheduler offers to
  every client (``Client.set_metadata``): each driver writes its entry under
  :data:`BOARD` every ``daskflow.shared.heartbeat`` (user, flow, run id, share, tasks in
  flight, and the time by the scheduler's clock) and reads the others'. An entry not
  renewed for ``daskflow.shared.expire-after`` is a run that is gone.
- :class:`FairShare` turns the entries into this run's share of the scheduler's
  threads: its ``--share`` (1 by default) over the sum of the live runs' shares. The
  driver keeps that many threads' worth of batches of splits in flight
  (``fanout.py``), and gives each task it submits a Dask priority that falls with the
  tasks it has in flight per thread of its share, so a run that has just started goes
  ahead of the queued tasks of a run that holds more than its share.
- :class:`ShareBoard` does the scheduler's side in a thread and tells the driver when
  its share changed (:class:`ShareChanged`); nothing already running is cancelled.

``daskflow scheduler ADDRESS`` reads the same entries (:func:`runs_on`).
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from .. import config

BOARD = "daskflow-runs"   # the scheduler's metadata key holding every run's entry
PRIORITY_LEVELS = 32      # priorities below this many rounds ahead are all one


@dataclass(frozen=True)
class SharedRun:
    """One run's entry on a scheduler's board."""

    user: str
    flow: str
    run_id: str
    share: int = 1
    in_flight: int = 0
    beat: float = 0.0          # when it was written, by the scheduler's clock
    host: str = ""

    @property
    def key(self) -> str:
        return f"{self.flow}/{self.run_id}"

    @classmethod
    def from_entry(cls, entry: Any) -> SharedRun | None:
        """An entry as a run wrote it; None for one this version cannot read."""
        if not isinstance(entry, dict):
            return None
        try:
            return cls(**{k: entry[k] for k in cls.__dataclass_fields__ if k in entry})
        except TypeError:
            return None


def live_runs(entries: Any, now: float, expire_after: float) -> list[SharedRun]:
    """The runs whose entry was renewed within ``expire_after`` of ``now``."""
    runs = [SharedRun.from_entry(e) for e in (entries or {}).values()] \
        if isinstance(entries, dict) else []
    return sorted((r for r in runs if r is not None and now - r.beat <= expire_after),
                  key=lambda r: r.beat)


class FairShare:
    """This run's part of a scheduler's threads among the runs that use it.

    >>> fair = FairShare("Train/1", share=1)
    >>> fair.update([SharedRun("ann", "Train", "1"), SharedRun("bob", "Eval", "2")], 4)
    True
    >>> fair.threads, fair.priority(ahead=5)
    (2, -2)
    """

    def __init__(self, key: str, share: int = 1) -> None:
        self.key = key
        self.share = max(1, int(share))
        self.fraction = 1.0
        self.threads = 1
        self.total_threads = 1

    def update(self, runs: list[SharedRun], total_threads: int) -> bool:
        """Recompute from the live ``runs`` (this one counts whether listed or not) and the
        scheduler's ``total_threads``; True when this run's threads changed."""
        others = sum(max(1, r.share) for r in runs if r.key != self.key)
        self.fraction = self.share / (self.share + others)
        self.total_threads = max(1, total_threads)
        threads = max(1, math.floor(self.total_threads * self.fraction + 1e-9))
        changed = threads != self.threads
        self.threads = threads
        return changed

    def priority(self, ahead: int) -> int:
        """The Dask priority of a task submitted with ``ahead`` of this run's tasks in
        flight: one level lower per round of this run's threads (higher runs first)."""
        return -min(ahead // self.threads, PRIORITY_LEVELS)


@dataclass(frozen=True)
class ShareChanged:
    """The driver's event: the run's share of the scheduler's threads changed."""

    threads: int


class ShareBoard:
    """Keeps this run's entry on the scheduler's board and its :class:`FairShare` current."""

    def __init__(self, client: Any, me: SharedRun, events: queue.Queue[Any],
                 in_flight: Callable[[], int]) -> None:
        self.client = client
        self.me = me
        self.fair = FairShare(me.key, me.share)
        self.events = events
        self.in_flight = in_flight
        self.interval = _seconds("shared.heartbeat")
        self.expire_after = _seconds("shared.expire-after")
        self.offset = 0.0   # the scheduler's clock minus ours
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> FairShare:
        """Enter the board and learn the share now (before the run's first task), then
        keep both current in a thread."""
        self.offset = scheduler_clock_offset(self.client)
        try:
            _prune(self.client, self.now(), max(3600.0, 10 * self.expire_after))
            self.beat()
        except Exception:  # noqa: BLE001  alone until a beat gets through
            self.fair.update([], sum(self.client.nthreads().values()))
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f"daskflow-share-{self.me.run_id}")
        self._thread.start()
        return self.fair

    def now(self) -> float:
        return time.time() + self.offset

    def beat(self) -> bool:
        """Renew this run's entry, read the others'; True when the share changed."""
        entry = asdict(self.me) | {"in_flight": self.in_flight(), "beat": self.now()}
        self.client.set_metadata([BOARD, self.me.key], entry)
        entries = self.client.get_metadata([BOARD], default={})
        runs = live_runs(entries, self.now(), self.expire_after)
        return self.fair.update(runs, sum(self.client.nthreads().values()))

    def _loop(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                if self.beat():
                    self.events.put(ShareChanged(self.fair.threads))
            except Exception:  # noqa: BLE001  a missed beat; the next one tries again
                pass

    def stop(self) -> None:
        """Leave the board: the others' shares grow at their next beat."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.client.set_metadata([BOARD, self.me.key], None)
        except Exception:  # noqa: BLE001  the scheduler is gone: the entry went with it
            pass


def runs_on(client: Any) -> list[dict[str, Any]]:
    """The live runs on ``client``'s scheduler, each with its share (``daskflow scheduler``)."""
    now = time.time() + scheduler_clock_offset(client)
    entries = client.get_metadata([BOARD], default={})
    return shares_of(live_runs(entries, now, _seconds("shared.expire-after")),
                     sum(client.nthreads().values()))


def shares_of(runs: list[SharedRun], total_threads: int) -> list[dict[str, Any]]:
    """Each run with what it gets of ``total_threads``, as each driver computes it.

    >>> [r["threads"] for r in shares_of([SharedRun("a", "F", "1"),
    ...                                   SharedRun("b", "G", "2", share=3)], 8)]
    [2, 6]
    """
    rows = []
    for run in runs:
        fair = FairShare(run.key, run.share)
        fair.update(runs, total_threads)
        rows.append({**asdict(run), "fraction": fair.fraction, "threads": fair.threads})
    return rows


def scheduler_clock_offset(client: Any) -> float:
    """The scheduler's clock minus this machine's (entries of drivers on other machines
    compare by it); 0 where the scheduler runs no function of ours."""
    try:
        sent = time.time()
        theirs = client.run_on_scheduler(time.time)
        return theirs - (sent + time.time()) / 2
    except Exception:  # noqa: BLE001  run_on_scheduler refused: this machine's clock
        return 0.0


def _prune(client: Any, now: float, older_than: float) -> None:
    """Drop the entries of runs long gone (a driver that was killed left its own)."""
    entries = client.get_metadata([BOARD], default={})
    if not isinstance(entries, dict):
        return
    keep = {key: e for key, e in entries.items()
            if isinstance(e, dict) and now - e.get("beat", 0) <= older_than}
    if len(keep) < len(entries):
        client.set_metadata([BOARD], keep)


def _seconds(key: str) -> float:
    from dask.utils import parse_timedelta
    return float(parse_timedelta(config.get(key)))
