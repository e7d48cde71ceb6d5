"""The driver's side of batches of short splits: which fan-outs are batched, how big
each batch is, and how many are kept in flight.

A Dask task costs a few milliseconds of scheduler and worker time; a trivial split
costs well under one.  So the splits of a foreach step that qualifies
(:func:`batchable`) go to the default cluster several to a Dask task
(:func:`~daskflow.runtime.batch.execute_batch` runs them on the worker).  A
:class:`Fanout` holds the splits not sent yet and keeps enough batches in flight
that no worker waits for the next; :class:`BatchSizer` sizes each batch from how
long the splits took so far.  Per batch in flight the driver holds only what it
takes to send its splits again: a batch that fails for another reason than one of
its splits (its worker died, ...) is sent again one split per Dask task
(:meth:`Fanout.returned`), where a dead attempt counts for ``@retry`` as usual.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import config
from ..exceptions import DatastoreUnavailable, TaskFailed
from ..graph import FOREACH, SWITCH, FlowGraph
from ..steps import StepPlan
from .context import TaskRef, TaskSpec


def batchable(graph: FlowGraph, plan: StepPlan, own_cluster: bool, gang: bool) -> bool:
    """Whether the splits of a foreach into ``plan``'s step may share Dask tasks: on the
    default cluster, not a gang, no @timeout (stopping one kills its process), and going
    straight to the join (which takes a batch's result as a value)."""
    if not config.get("run.batching") or own_cluster or gang or plan.timeout:
        return False
    node = graph[plan.name]
    if node.transition in (FOREACH, SWITCH) or len(node.out_funcs) != 1 \
            or not any(graph[p].transition == FOREACH for p in node.in_funcs):
        return False
    join = graph[node.out_funcs[0]]
    split = graph[join.matching_split] if join.matching_split else None
    return join.is_join and split is not None and split.transition == FOREACH


@dataclass(frozen=True)
class BatchDone:
    """The driver's event: a batch of ``fanout``'s splits finished or failed."""

    future: Any
    fanout: Fanout
    specs: list[TaskSpec]


class BatchSizer:
    """How many splits of one step the next batch gets.

    Two splits per batch at first (what a split costs in a batch, where its records
    cost a share of one write, is what counts); then as many as fit the target by the splits
    measured so far, growing at most fourfold per batch, and at the end no more
    than an even share of what is left per worker, so no worker idles while
    another works through a long batch.  Splits as long as the target run alone.

    >>> sizer = BatchSizer(target=0.15, workers=2, most=1000)
    >>> sizer.next_size(remaining=10_000)
    2
    >>> sizer.measured(splits=2, seconds=0.002); sizer.next_size(remaining=10_000)
    8
    """

    def __init__(self, target: float, workers: int, most: int) -> None:
        self.target = target
        self.workers = max(1, workers)
        self.most = max(1, most)
        self.per_split: float | None = None
        self.size = 2

    def measured(self, splits: int, seconds: float) -> None:
        each = seconds / max(1, splits)
        if splits == 1 and each < self.target:
            # a split alone wrote its own records too (slow on an object store, slower
            # under load): a bound, not a measure, which would keep batches of one for
            # good; two splits measure again
            self.size = max(self.size, 2)
            return
        self.per_split = each if self.per_split is None else 0.5 * (self.per_split + each)
        fits = self.target / self.per_split if self.per_split > 0 else self.most
        self.size = max(1, min(int(fits), self.size * 4, self.most))
        if self.per_split >= self.target / 2:
            self.size = 1

    def next_size(self, remaining: int) -> int:
        # an even share at the end, but never below what a quarter of the target holds:
        # a batch that short idles no worker, and each batch costs a write (a request
        # on an object store) and a read by the join, the report and the client
        share = math.ceil(remaining / (2 * self.workers))
        if self.per_split:
            share = max(share, int(self.target / 4 / self.per_split))
        return max(1, min(self.size, share, remaining))

    def in_flight(self) -> int:
        """Batches to keep sent at once: enough that every worker always has the next."""
        return 2 * self.workers


class Fanout:
    """The splits of one foreach step, sent to the default cluster in batches."""

    def __init__(self, step: str, parent: TaskRef, specs: Sequence[TaskSpec],
                 sizer: BatchSizer) -> None:
        self.step = step
        self.parent = parent
        self.pending: deque[TaskSpec] = deque(specs)
        self.sizer = sizer
        self.name = f"fanout-{specs[0].task_id}"   # stands for its splits until all are done
        self.in_flight = 0

    @classmethod
    def configured(cls, step: str, parent: TaskRef, specs: Sequence[TaskSpec],
                   workers: int) -> Fanout:
        """A fan-out sized by ``daskflow.run.batch-target`` and ``batch-max``."""
        from dask.utils import parse_timedelta
        sizer = BatchSizer(float(parse_timedelta(config.get("run.batch-target"))), workers,
                           int(config.get("run.batch-max")))
        return cls(step, parent, specs, sizer)

    def next_batches(self) -> list[list[TaskSpec]]:
        """The batches to send now: enough that no worker waits for the next."""
        batches = []
        while self.pending and self.in_flight < self.sizer.in_flight():
            size = self.sizer.next_size(len(self.pending))
            batch = [self.pending.popleft()]
            # consecutive splits only: the join orders a batch by its first index
            while len(batch) < size and self.pending and \
                    self.pending[0].frames[-1].index == batch[-1].frames[-1].index + 1:
                batch.append(self.pending.popleft())
            self.in_flight += 1
            batches.append(batch)
        return batches

    def resize(self, workers: int) -> None:
        """The threads this fan-out may keep busy changed (a shared scheduler's share)."""
        self.sizer.workers = max(1, workers)

    def finished(self, splits: int, seconds: float) -> None:
        """A batch of ``splits`` came back after ``seconds`` of work."""
        self.in_flight -= 1
        self.sizer.measured(splits, seconds)

    def returned(self, specs: list[TaskSpec], error: BaseException | None) -> bool:
        """A batch failed with ``error``: True when its splits are to run again one per
        Dask task (not a split's failure: its worker died, ...), False when the run fails
        (a split's failure, or the datastore gone: each split alone would meet it too)."""
        self.in_flight -= 1
        return error is not None and not isinstance(error, (TaskFailed, DatastoreUnavailable))

    @property
    def done(self) -> bool:
        return not self.pending and self.in_flight == 0
