"""Several short splits of a foreach in one Dask task, each still a task of its own.

A Dask task costs a few milliseconds of scheduler and worker time; a trivial split
costs well under one.  So the driver sends the splits of a foreach step in batches
(:func:`execute_batch`), sized by :class:`~daskflow.runtime.fanout.BatchSizer` from
how long the splits took so far: two splits per batch at first, growing while a batch
stays under ``daskflow.run.batch-target``, and never so big that a worker waits at
the end.

A batch of one split is exactly an unbatched task (splits that take long, and
the last few of a step when fewer are left than workers to share them).  Inside a
bigger batch each split runs as an unbatched task does
(:func:`~daskflow.runtime.task.run_task`): its own task id, ``current`` values,
captured output, artifacts, and its own ``@retry`` attempts and ``@catch``.  A
failing split is retried alone; the splits before it are not run again.  Only
where its records go differs: :class:`BatchRecords` holds them and the batch
commits them all as one object at its end (``datastore/batches.py``), small
artifacts inline.  A worker that dies in a batch leaves no record of it: Dask
runs the batch again, and the driver sends its splits one per Dask task if it
keeps failing, where a dead attempt counts for ``@retry`` as usual.  Steps whose
splits may have to be stopped by killing their process (``@timeout``), gangs and
steps on clusters of their own are never batched
(:func:`~daskflow.runtime.fanout.batchable`).
"""

from __future__ import annotations

import time
from typing import Any

from ..datastore import ArtifactRef, ArtifactStore
from ..exceptions import TaskFailed
from .capture import announce
from .context import RunContext, SplitBatch, TaskRef, TaskSpec
from .task import run_task


def execute_batch(ctx: RunContext, specs: list[TaskSpec], *parents: TaskRef) -> SplitBatch:
    """Run splits of one step one after the other; commit their records in one object.

    Raises the :class:`TaskFailed` of the first split that fails for good, after
    committing the records of those that ran (so ``resume`` reuses them).
    """
    began = time.perf_counter()
    store = ctx.store()
    step = specs[0].step
    if len(specs) == 1:  # alone: exactly an unbatched task (its claim first, a spool, ...)
        ref = run_task(ctx, store, specs[0], parents)
        return SplitBatch(step, (ref.task_id,), (ref.attempt,), time.perf_counter() - began)
    records = BatchRecords(store, ctx.run_id, step, [s.task_id for s in specs])
    if ctx.announce_starts:
        announce("started", step, [s.task_id for s in specs], 0)
    done: list[TaskRef] = []
    failure: TaskFailed | None = None
    # the splits' own time sizes the batches: a batch's fixed cost (its listing and its
    # one write, slow on an object store) shrinks per split as batches grow
    began = time.perf_counter()
    for spec in specs:
        try:
            done.append(run_task(ctx, records, spec, parents))
        except TaskFailed as exc:
            failure = exc
            break
    seconds = time.perf_counter() - began
    records.commit()
    if failure is not None:
        raise failure
    return SplitBatch(step, tuple(r.task_id for r in done), tuple(r.attempt for r in done),
                      seconds)


class BatchRecords:
    """The store as the splits of one batch see it: their claims, logs and done records
    are kept here and written together by :meth:`commit`; all else is the store's."""

    defers_records = True

    def __init__(self, store: ArtifactStore, run_id: str, step: str,
                 task_ids: list[str]) -> None:
        self._store = store
        self._run_id = run_id
        self._step = step
        self._index = store.step_batches(run_id, step)
        self._index.prefetch(task_ids)  # one look for what earlier runs of it stored
        # attempts that ran alone have a folder of files: one look for which do
        self._folders = set(store.files.folders(store.step_path(run_id, step)))
        self._entries: dict[tuple[str, int], dict[str, Any]] = {}
        self._pending: dict[str, set[int]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def commit(self) -> None:
        self._store.write_batch(self._run_id, self._step, list(self._entries.values()))
        self._entries.clear()
        self._pending.clear()

    def _mine(self, run_id: str, step: str) -> bool:
        return run_id == self._run_id and step == self._step

    def _stored_attempts(self, task_id: str) -> set[int]:
        found = set(self._index.entries_of(task_id, fresh=False))
        if task_id in self._folders:
            found |= self._store.file_attempts(self._run_id, self._step, task_id)
        return found

    def list_attempts(self, run_id: str, step: str, task_id: str) -> list[int]:
        if not self._mine(run_id, step):
            return self._store.list_attempts(run_id, step, task_id)
        return sorted(self._stored_attempts(task_id) | self._pending.get(task_id, set()))

    def claim_attempt(self, run_id: str, step: str, task_id: str,
                      record: dict[str, Any]) -> int:
        if not self._mine(run_id, step):
            return self._store.claim_attempt(run_id, step, task_id, record)
        attempt = max(self.list_attempts(run_id, step, task_id), default=-1) + 1
        record["attempt"] = attempt
        self._pending.setdefault(task_id, set()).add(attempt)
        self._entries[(task_id, attempt)] = {"task_id": task_id, "attempt": attempt,
                                             "start": dict(record)}
        return attempt

    def write_log(self, run_id: str, step: str, task_id: str, attempt: int,
                  stream: str, text: str) -> None:
        entry = self._entries.get((task_id, attempt)) if self._mine(run_id, step) else None
        if entry is None:
            self._store.write_log(run_id, step, task_id, attempt, stream, text)
        elif text:
            entry[stream] = text

    def write_done(self, run_id: str, step: str, task_id: str, attempt: int,
                   record: dict[str, Any]) -> None:
        entry = self._entries.get((task_id, attempt)) if self._mine(run_id, step) else None
        if entry is None:
            self._store.write_done(run_id, step, task_id, attempt, record)
        else:
            entry["done"] = record

    def read_done(self, run_id: str, step: str, task_id: str,
                  attempt: int) -> dict[str, Any] | None:
        entry = self._entries.get((task_id, attempt)) if self._mine(run_id, step) else None
        if entry is not None:
            return entry.get("done")
        if self._mine(run_id, step) and attempt not in self._stored_attempts(task_id):
            return None
        return self._store.read_done(run_id, step, task_id, attempt)

    def read_start(self, run_id: str, step: str, task_id: str, attempt: int) -> dict[str, Any]:
        entry = self._entries.get((task_id, attempt)) if self._mine(run_id, step) else None
        if entry is not None:
            return entry["start"]
        return self._store.read_start(run_id, step, task_id, attempt)

    def read_log(self, run_id: str, step: str, task_id: str, attempt: int, stream: str) -> str:
        entry = self._entries.get((task_id, attempt)) if self._mine(run_id, step) else None
        if entry is not None:
            return entry.get(stream, "")
        return self._store.read_log(run_id, step, task_id, attempt, stream)

    def put_artifact(self, value: Any, name: str = "?", inline: bool = True) -> ArtifactRef:
        return self._store.put_artifact(value, name, inline=inline)

