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
where its records go differs: the batch's view of the store
(``ArtifactStore.batched``, ``datastore/batch_records.py``) holds them and the
batch commits them all as one object at its end, small artifacts inline.  A
worker that dies in a batch leaves no record of it: Dask runs the batch again,
and the driver sends its splits one per Dask task if it keeps failing, where a
dead attempt counts for ``@retry`` as usual.  Steps whose
splits may have to be stopped by killing their process (``@timeout``), gangs and
steps on clusters of their own are never batched
(:func:`~daskflow.runtime.fanout.batchable`).
"""

from __future__ import annotations

import time

from ..dask_client import current_worker
from ..datastore import pack_results
from ..exceptions import TaskFailed
from ._exit_watch import Journal
from .capture import announce
from .context import RunContext, SplitBatch, TaskRef, TaskSpec
from .task import cap_text, run_task


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
        # its record goes to the join with it too: the join reads nothing to find it
        results = pack_results([{"task_id": ref.task_id, "attempt": ref.attempt,
                                 "done": ref.as_record()}])
        return SplitBatch(step, (ref.task_id,), (ref.attempt,), time.perf_counter() - began,
                          results=results)
    journal = _journal()
    batch = store.batched(ctx.run_id, step, [s.task_id for s in specs], journal)
    fixed = time.perf_counter() - began
    if ctx.announce_starts:
        announce("started", step, [s.task_id for s in specs], 0, ctx.run_id)
    done: list[TaskRef] = []
    failure: TaskFailed | None = None
    # the splits' own time sizes the batches, and the batch's fixed cost (its listing
    # and its one write, requests on an object store) how long they aim to be
    began = time.perf_counter()
    for spec in specs:
        try:
            done.append(run_task(ctx, batch, spec, parents))
        except TaskFailed as exc:
            failure = exc
            break
    seconds = time.perf_counter() - began
    results = batch.commit()
    fixed += time.perf_counter() - began - seconds
    if journal is not None:
        journal.close()
    if failure is not None:
        raise failure
    if results is not None and len(results) > RESULTS_MOST:
        results = None  # the join reads the object: never megabytes through the scheduler
    return SplitBatch(step, tuple(r.task_id for r in done), tuple(r.attempt for r in done),
                      seconds, fixed, results)


#: bytes of packed done records a batch hands its join at most (more: the join reads them)
RESULTS_MOST = 1 << 20

#: characters of a split's stdout or stderr a journal keeps (the batch's record has all)
JOURNAL_LOG_CHARS = 20_000


class _CappedJournal(Journal):
    """A journal whose entries keep at most :data:`JOURNAL_LOG_CHARS` of each log."""

    def ended(self, entry: dict) -> None:
        for stream in ("stdout", "stderr"):
            text = entry.get(stream)
            if text and len(text) > JOURNAL_LOG_CHARS:
                entry = {**entry, stream: cap_text(text, JOURNAL_LOG_CHARS)}
        super().ended(entry)


def _journal() -> Journal | None:
    """This batch's journal, on a worker (None off one, or where no file can be made)."""
    worker = current_worker()
    if worker is None:
        return None
    try:
        return _CappedJournal(worker.address, worker.get_current_task())
    except (OSError, ValueError):
        return None
