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
    batch = store.batched(ctx.run_id, step, [s.task_id for s in specs])
    if ctx.announce_starts:
        announce("started", step, [s.task_id for s in specs], 0, ctx.run_id)
    done: list[TaskRef] = []
    failure: TaskFailed | None = None
    # the splits' own time sizes the batches: a batch's fixed cost (its listing and its
    # one write, slow on an object store) shrinks per split as batches grow
    began = time.perf_counter()
    for spec in specs:
        try:
            done.append(run_task(ctx, batch, spec, parents))
        except TaskFailed as exc:
            failure = exc
            break
    seconds = time.perf_counter() - began
    batch.commit()
    if failure is not None:
        raise failure
    return SplitBatch(step, tuple(r.task_id for r in done), tuple(r.attempt for r in done),
                      seconds)
