"""The client reading a step's tasks one after another, on an object store, ahead of time.

``sum(t.data.out for t in run["work"])`` or ``sorted(run["work"], key=lambda t: t.index)``
read each task's attempts, record and artifacts in turn: on a local folder each read
takes microseconds, on an object store tens of milliseconds, and more when the store
answers ``503 SlowDown`` and the read backs off.  So the tasks of one :class:`Step`
share a :class:`StepReads`: once a task's record or an artifact of it is read, the same
is read for the next tasks of the step (in the order the reads go: up or down the task
ids) by the process's 8 read-ahead threads, and a task finds it read when asked.  At
most ``depth`` tasks ahead are read, none of an artifact stored bigger than 32 MiB, and
what nobody took is dropped past a bound, so memory stays bounded.

A read ahead is only a guess: what a task is asked for is read then if no read of it
is ahead (or that read failed: it is tried again with the datastore's retries, and
fails, if it does, as any read would).  A task asked for one attempt (``Task(..,
attempt=n)``) reads as it always does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .datastore.store import worth_reading_ahead

if TYPE_CHECKING:
    from .datastore import ArtifactRef, ArtifactStore

#: reads held ahead that nobody took, at most (the oldest are dropped)
HELD_MOST = 256


class _TooBig(Exception):
    """An artifact too big to hold ahead: its task reads it when asked."""


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """The process's threads that read ahead for every step (8, made on first use): a
    notebook that reads many steps all day keeps 8 threads, not 8 a step."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(8, thread_name_prefix="daskflow-client-read-ahead")
        return _POOL


def step_reads(store: ArtifactStore, run_id: str, step: str,
               task_ids: Callable[[], list[str]]) -> StepReads | None:
    """A step's shared reads, on an object store (``daskflow.datastore.read-ahead``
    tasks ahead; 0: none); None on a local folder, whose reads are already fast."""
    depth = store.read_ahead
    return StepReads(store, run_id, step, task_ids, depth) if depth > 0 else None


class StepReads:
    """The reads of one step's tasks, the next tasks' read ahead (see the module)."""

    def __init__(self, store: ArtifactStore, run_id: str, step: str,
                 task_ids: Callable[[], list[str]], depth: int) -> None:
        self.store, self.run_id, self.step, self.depth = store, run_id, step, depth
        self._task_ids = task_ids
        self._positions: dict[str, int] | None = None
        self._order: list[str] = []
        self._lock = threading.Lock()
        self._ahead: dict[tuple[str, str, str], Future] = {}   # (what, task, name)
        self._taken: dict[str, tuple[list[int], dict[str, Any] | None]] = {}  # records
        self._last: int | None = None     # the position of the task last read
        self._direction = 1               # which way the reads go: up or down the ids

    # -- what a Task asks for --------------------------------------------------------------

    def latest(self, task_id: str) -> tuple[list[int], dict[str, Any] | None]:
        """The task's attempts and its latest attempt's done record (None: none yet)."""
        found = self._take(("record", task_id, ""), lambda: self._read_latest(task_id))
        with self._lock:  # kept for the artifact read ahead that may come after
            self._taken[task_id] = found
            while len(self._taken) > HELD_MOST:
                self._taken.pop(next(iter(self._taken)))
        return found

    def artifact(self, task_id: str, name: str, ref: ArtifactRef) -> Any:
        """Artifact ``name`` of the task's latest attempt, whose ref is ``ref``."""
        return self._take(("artifact", task_id, name),
                          lambda: self.store.get_artifact(ref, name))

    # -- how -------------------------------------------------------------------------------

    def _read_latest(self, task_id: str) -> tuple[list[int], dict[str, Any] | None]:
        attempts = self.store.list_attempts(self.run_id, self.step, task_id)
        done = self.store.read_done(self.run_id, self.step, task_id, attempts[-1]) \
            if attempts else None
        return attempts, done

    def _read_artifact(self, task_id: str, name: str) -> Any:
        with self._lock:
            record = self._ahead.get(("record", task_id, ""))
            taken = self._taken.get(task_id)
        # the record its task took already; or one read ahead, used once read or waited
        # for while a thread reads it (one still queued is not: its thread may be queued
        # behind this one); else it is read here
        if taken is not None:
            _, done = taken
        elif record is not None and (record.done() or record.running()) \
                and not record.cancelled():
            try:
                _, done = record.result()
            except Exception:  # noqa: BLE001  read again, with the store's retries
                _, done = self._read_latest(task_id)
        else:
            _, done = self._read_latest(task_id)
        from .datastore import ArtifactRef
        ref = ArtifactRef(*done["artifacts"][name])
        if not worth_reading_ahead(ref):
            raise _TooBig(name)  # read when asked for, not held ahead
        return self.store.get_artifact(ref, name)

    def _take(self, key: tuple[str, str, str], read: Callable[[], Any]) -> Any:
        with self._lock:
            future = self._ahead.pop(key, None)
        self._read_on(key)
        if future is not None:
            try:
                return future.result()
            except Exception:  # noqa: BLE001  read again, with the store's retries
                pass
        return read()

    def _read_on(self, key: tuple[str, str, str]) -> None:
        """Read what ``key`` read for the next tasks, in the direction the reads go."""
        what, task_id, name = key
        with self._lock:
            position = self._position(task_id)
            if position is None:
                return
            if self._last is not None and position != self._last:
                self._direction = -1 if position < self._last else 1
            self._last = position
            step = self._direction
            for ahead in range(position + step, position + step * (self.depth + 1), step):
                if not 0 <= ahead < len(self._order):
                    break
                other = (what, self._order[ahead], name)
                if other not in self._ahead:
                    self._ahead[other] = self._submit(
                        self._read_latest if what == "record" else self._read_artifact,
                        other[1], *((name,) if what == "artifact" else ()))
            while len(self._ahead) > HELD_MOST:
                self._ahead.pop(next(iter(self._ahead))).cancel()

    def _position(self, task_id: str) -> int | None:
        if self._positions is None:
            self._order = list(self._task_ids())
            self._positions = {t: i for i, t in enumerate(self._order)}
        return self._positions.get(task_id)

    def _submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        return _pool().submit(fn, *args)

    def close(self) -> None:
        """Stop reading ahead: what was not started is not (what runs ends)."""
        with self._lock:
            for future in self._ahead.values():
                future.cancel()
            self._ahead.clear()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001  at interpreter exit: nothing to stop
            pass
