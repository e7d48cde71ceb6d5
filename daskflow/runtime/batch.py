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
batch commits them all as one object at its end, small artifacts inline.  A split
that goes on to other steps before its join runs them in the batch too
(:func:`execute_chains`: ``a[i]`` then ``b[i]``, ``b[i]`` given ``a[i]``'s ref in
this process), each step's tasks tasks of their own, each step's records one object
of that step; a failing ``b[i]`` is retried by its own ``@retry`` and ``a[i]`` is not
run again.  A
worker that dies in a batch leaves no record of it: Dask runs the batch again,
and the driver sends its splits one per Dask task if it keeps failing, where a
dead attempt counts for ``@retry`` as usual.  Steps whose
splits may have to be stopped by killing their process (``@timeout``), gangs and
steps on clusters of their own are never batched, nor chains holding one
(:func:`~daskflow.runtime.fanout.batch_chains`).
"""

from __future__ import annotations

import time

from ..dask_client import current_worker
from ..datastore import ArtifactStore, pack_results
from ..exceptions import TaskFailed
from ._exit_watch import Journal
from .capture import announce
from .context import Chain, RunContext, SplitBatch, TaskRef, TaskSpec, chained
from .task import cap_text, run_task


def execute_batch(ctx: RunContext, specs: list[TaskSpec], *parents: TaskRef) -> SplitBatch:
    """Run splits of one step one after the other; commit their records in one object.

    Raises the :class:`TaskFailed` of the first split that fails for good, after
    committing the records of those that ran (so ``resume`` reuses them).
    """
    return execute_chains(ctx, (), specs, *parents)


def execute_chains(ctx: RunContext, chain: Chain, specs: list[TaskSpec],
                   *parents: TaskRef) -> SplitBatch:
    """Run splits one after the other, each split the steps of its ``chain`` too (``a[i]``
    then ``b[i]`` with ``a[i]``'s ref, in this process); commit each step's records in
    one object.  Returns the last step's tasks, for the join."""
    return _execute(ctx, chain, specs, [parents] * len(specs))


def execute_after_reused(ctx: RunContext, chain: Chain, specs: list[TaskSpec],
                         parents: list[TaskRef]) -> SplitBatch:
    """As :func:`execute_chains`, for splits of a chain's later step whose earlier steps
    were reused (``resume`` from ``b``: ``a`` cloned), each with its own parent
    (``parents[i]``, ``a[i]``'s ref for ``b[i]``)."""
    return _execute(ctx, chain, specs, [(parent,) for parent in parents])


def _execute(ctx: RunContext, chain: Chain, specs: list[TaskSpec],
             parents: list[tuple[TaskRef, ...]]) -> SplitBatch:
    """The splits ``specs`` (each with its ``parents``) and their chains, in a batch."""
    began = time.perf_counter()
    store = ctx.store()
    steps = [specs[0].step, *(step for step, _ in chain)]
    if len(specs) == 1:  # alone: exactly unbatched tasks (their claims first, a spool, ...)
        ref = _run_chain(ctx, [store] * len(steps), chained(specs[0], chain), parents[0])
        # its record goes to the join with it too: the join reads nothing to find it
        results = pack_results([{"task_id": ref.task_id, "attempt": ref.attempt,
                                 "done": ref.as_record()}])
        return SplitBatch(ref.step, (ref.task_id,), (ref.attempt,),
                          time.perf_counter() - began, results=results)
    journal = _journal()
    tasks = list(zip(*(chained(spec, chain) for spec in specs)))  # each step's tasks
    views = [store.batched(ctx.run_id, step, [t.task_id for t in column],
                           _StepNotes(journal, step) if chain and journal else journal)
             for step, column in zip(steps, tasks)]
    fixed = time.perf_counter() - began
    if ctx.announce_starts:
        for step, column in zip(steps, tasks):
            announce("started", step, [t.task_id for t in column], 0, ctx.run_id)
    done: list[TaskRef] = []
    failure: TaskFailed | None = None
    # the splits' own time sizes the batches, and the batch's fixed cost (its listing
    # and its one write, requests on an object store) how long they aim to be
    began = time.perf_counter()
    for spec, own in zip(specs, parents):
        try:
            done.append(_run_chain(ctx, views, chained(spec, chain), own))
        except TaskFailed as exc:
            failure = exc
            break
    seconds = time.perf_counter() - began
    results = [view.commit() for view in views][-1]   # the join reads the last step's
    fixed += time.perf_counter() - began - seconds
    if journal is not None:
        journal.close()
    if failure is not None:
        raise failure
    if results is not None and len(results) > RESULTS_MOST:
        results = None  # the join reads the object: never megabytes through the scheduler
    return SplitBatch(steps[-1], tuple(r.task_id for r in done),
                      tuple(r.attempt for r in done), seconds, fixed, results)


def _run_chain(ctx: RunContext, stores: list[ArtifactStore], tasks: list[TaskSpec],
               parents: tuple[TaskRef, ...]) -> TaskRef:
    """One split's tasks in order, each the parent of the next (its artifacts inline in
    its ref where small: no read back); the last one's ref."""
    for store, spec in zip(stores, tasks):
        ref = run_task(ctx, store, spec, parents)
        parents = (ref,)
    return ref


class _StepNotes:
    """A chain's journal as one step's records see it: each note names its step (the
    driver writes what a dead batch could not to that step's objects)."""

    def __init__(self, journal: Journal, step: str) -> None:
        self.journal = journal
        self.step = step

    def started(self, entry: dict) -> None:
        self.journal.started({**entry, "step": self.step})

    def ended(self, entry: dict) -> None:
        self.journal.ended({**entry, "step": self.step})


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
