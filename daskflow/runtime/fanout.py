"""The driver's side of batches of short splits: which fan-outs are batched, how big
each batch is, and how many are kept in flight.

A Dask task costs a few milliseconds of scheduler and worker time; a trivial split
costs well under one.  So the splits of a foreach step that qualifies
(:func:`batch_chains`) go to the default cluster several to a Dask task
(:func:`~daskflow.runtime.batch.execute_batch` runs them on the worker).  Where a
split goes on to other steps before its join (``foreach -> a -> b -> join``), the
whole chain of each split runs in the batch (``a[i]`` then ``b[i]``), each step still
a task of its own; its join gets the last step's records (a chain's later step whose
earlier steps were reused, ``resume b``, is batched alike, each split with its own
parent).  A
:class:`Fanout` holds the splits not sent yet and keeps enough batches in flight
that no worker waits for the next; :class:`BatchSizer` sizes each batch from how
long the splits took so far.  Per batch in flight the driver holds only what it
takes to send its splits again.

A batch whose worker died (:meth:`Fanout.lost`) is accounted for split by split, from
its journal (``_exit_watch.py``: the nanny hands it over with the worker's exit): the
splits it had finished keep their records and results (the driver writes them as the
batch would have), the task that was running gets a failed attempt with the cause of
the death, and its split and the splits not started yet are batched again (the steps
of its chain it had finished are not run again: their stored results stand), where ``@retry``
counts that attempt as it counts any.  Without a journal (the nanny died too) nothing
is known of how far the batch got: its splits run again one per Dask task, where each
death is its own.  A batch that fails for another reason than one of its splits is
sent again one split per Dask task too (:meth:`Fanout.returned`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import config
from ..clusters.deaths import Death
from ..exceptions import DatastoreUnavailable, TaskFailed
from ..graph import FOREACH, FlowGraph
from ..steps import StepPlan
from .attempts import death_record, lost_message
from .context import Chain, SplitBatch, TaskRef, TaskSpec, chained
from .walk import chain_to_join


def may_batch(plan: StepPlan, own_cluster: bool, gang: bool) -> bool:
    """Whether tasks of ``plan``'s step may run inside a batch of splits: on the default
    cluster, not a gang, no @timeout (stopping one kills its process), none that may
    move to more memory (``max_memory``)."""
    return not (own_cluster or gang or plan.timeout or plan.may_grow)


def batch_chains(graph: FlowGraph, may: Callable[[str], bool],
                 waits: frozenset[str] = frozenset()) -> dict[str, tuple[str, ...]]:
    """The foreach steps whose splits share Dask tasks, each with the steps its splits go
    on to in the same batch (:func:`~daskflow.runtime.walk.chain_to_join`; ``()``:
    straight to the join, which takes a batch's result as a value).

    A chain is batched whole or not at all (then each of its tasks is a Dask task of
    its own, as before): each of its steps ``may`` be batched (:func:`may_batch`), and
    none but its last has followers that wait for its refs (``waits``: a ``@cache``
    lookup of the next step).
    """
    if not config.get("run.batching"):
        return {}
    chains = {}
    for node in graph:
        if not any(graph[p].transition == FOREACH for p in node.in_funcs):
            continue
        chain = chain_to_join(graph, node.name)
        if chain is None:
            continue
        steps = (node.name, *chain)
        if all(may(step) for step in steps) and not waits.intersection(steps[:-1]):
            chains[node.name] = chain
    return chains


def in_batches(chains: dict[str, tuple[str, ...]]) -> frozenset[str]:
    """The steps whose tasks a run with these chains (:func:`batch_chains`) may hold in
    batch objects: its batched foreach steps and the steps their splits go on to.  Every
    other step's tasks claim their attempts in their own folders only
    (``TaskSpec.own_folder``).

    >>> sorted(in_batches({"work": (), "double": ("add",)}))
    ['add', 'double', 'work']
    """
    return frozenset(chains).union(*chains.values())


@dataclass(frozen=True)
class BatchDone:
    """The driver's event: a batch of ``fanout``'s splits finished or failed."""

    future: Any
    fanout: Fanout
    specs: list[TaskSpec]


@dataclass
class BatchLoss:
    """What a batch lost with its worker leaves to do: ``entries`` to write, by step (the
    records of its ended attempts and of the one that died), ``finished`` (its splits
    that finished, for the join), ``dead`` (the entry of the attempt that died, if one
    was running) and ``alone`` (splits to send one per Dask task: nothing is known of
    them)."""

    entries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    finished: SplitBatch | None = None
    dead: dict[str, Any] | None = None
    alone: list[TaskSpec] = field(default_factory=list)


def journal_state(notes: list[tuple[str, dict[str, Any]]]
                  ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """A batch's journal as the entries of its ended attempts, in order, and the attempt
    started and not ended (``{"task_id", "attempt", "start"}``), if any."""
    entries: list[dict[str, Any]] = []
    running = None
    for kind, value in notes:
        if kind == "s":
            running = value
        elif kind == "e":
            entries.append(value)
            if running is not None and (running.get("task_id"), running.get("attempt")) == \
                    (value.get("task_id"), value.get("attempt")):
                running = None
    return entries, running


#: bytes of its batches' packed done records a fan-out keeps for its join at most: past
#: this (a step of millions of splits) the join reads the later batches' objects instead
CARRIED_MOST = 64 << 20

#: a batch's own cost (its look for earlier records and its one write: requests on an
#: object store) is kept under this share of its splits' time by making batches longer
FIXED_SHARE = 0.01


class BatchSizer:
    """How many splits of one step the next batch gets.

    Two splits per batch at first (what a split costs in a batch, where its records
    cost a share of one write, is what counts); then as many as fit the goal by the splits
    measured so far, growing at most fourfold per batch, and at the end no more
    than an even share of what is left per worker, so no worker idles while
    another works through a long batch.  Splits as long as half the goal run alone.

    The goal is the target, or longer where a batch's own cost (``fixed``: its look
    for earlier records and its write, two requests on an object store) would be over
    :data:`FIXED_SHARE` of it: on an object store batches grow until their requests
    are few per split, on a local disk the target stays.  So on an object store a
    split of a second, which would spend about as long again claiming, logging and
    recording itself alone, shares those with the others of its batch.

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
        self.fixed = 0.0   # a batch's own cost, seconds (measured)
        self.size = 2

    @property
    def goal(self) -> float:
        """The splits' time a batch aims at: the target, or long enough that the
        batch's own cost is at most :data:`FIXED_SHARE` of it."""
        return max(self.target, self.fixed / FIXED_SHARE)

    def measured(self, splits: int, seconds: float, fixed: float = 0.0) -> None:
        """A batch of ``splits`` took ``seconds`` (its splits) and ``fixed`` (its own
        look and write)."""
        if fixed > 0:
            self.fixed = fixed if not self.fixed else 0.5 * (self.fixed + fixed)
        each = seconds / max(1, splits)
        if splits == 1 and each < self.goal:
            # a split alone wrote its own records too (slow on an object store, slower
            # under load): a bound, not a measure, which would keep batches of one for
            # good; two splits measure again
            self.size = max(self.size, 2)
            return
        self.per_split = each if self.per_split is None else 0.5 * (self.per_split + each)
        fits = self.goal / self.per_split if self.per_split > 0 else self.most
        self.size = max(1, min(int(fits), self.size * 4, self.most))
        if self.per_split >= self.goal / 2:
            self.size = 1

    def next_size(self, remaining: int) -> int:
        # an even share at the end, but never below what a quarter of the goal holds:
        # a batch that short idles no worker, and each batch costs a write (a request
        # on an object store) and a read by the report and the client
        share = math.ceil(remaining / (2 * self.workers))
        if self.per_split:
            share = max(share, int(self.goal / 4 / self.per_split))
        return max(1, min(self.size, share, remaining))

    def in_flight(self) -> int:
        """Batches to keep sent at once: enough that every worker always has the next."""
        return 2 * self.workers


class Fanout:
    """The splits of one foreach step, sent to the default cluster in batches.

    Their parent is the foreach step's finished task, or, for the splits of a chain's
    later step whose earlier steps were reused (``resume`` from ``b`` of ``a -> b``),
    each split's own (``each``: ``a[i]``'s ref for ``b[i]``, by task id).
    """

    def __init__(self, step: str, parent: TaskRef | None, specs: Sequence[TaskSpec],
                 sizer: BatchSizer, chain: Chain = (),
                 each: dict[str, TaskRef] | None = None) -> None:
        self.step = step
        self.parent = parent
        self.each = each
        self.chain = chain     # the steps each split goes on to in its batch
        self.last = chain[-1][0] if chain else step   # the step whose tasks go to the join
        self.pending: deque[TaskSpec] = deque(specs)
        self.sizer = sizer
        self.name = f"fanout-{specs[0].task_id}"   # stands for its splits until all are done
        self.in_flight = 0
        self.sent = 0          # batches sent: a batch sent again gets a key of its own
        self.carried = 0       # bytes of done records kept for the join (CARRIED_MOST)

    @classmethod
    def configured(cls, step: str, parent: TaskRef | None, specs: Sequence[TaskSpec],
                   workers: int, chain: Chain = (),
                   each: dict[str, TaskRef] | None = None) -> Fanout:
        """A fan-out sized by ``daskflow.run.batch-target`` and ``batch-max``."""
        from dask.utils import parse_timedelta
        sizer = BatchSizer(float(parse_timedelta(config.get("run.batch-target"))), workers,
                           int(config.get("run.batch-max")))
        return cls(step, parent, specs, sizer, chain, each)

    def parents(self, specs: Sequence[TaskSpec]) -> list[list[TaskRef]]:
        """The parents of each of ``specs`` (splits sent one per Dask task)."""
        if self.each is None:
            return [[self.parent]] * len(specs)  # type: ignore[list-item]
        return [[self.each[spec.task_id]] for spec in specs]

    def tasks(self, specs: Sequence[TaskSpec]) -> list[tuple[str, list[str]]]:
        """The task ids of each step that the splits ``specs`` run, step by step."""
        if not self.chain:
            return [(self.step, [spec.task_id for spec in specs])]
        columns = zip(*(chained(spec, self.chain) for spec in specs))
        return [(column[0].step, [task.task_id for task in column]) for column in columns]

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

    def finished(self, splits: int, seconds: float, fixed: float = 0.0) -> None:
        """A batch of ``splits`` came back after ``seconds`` of work and ``fixed`` of
        its own (its look and its write)."""
        self.in_flight -= 1
        self.sizer.measured(splits, seconds, fixed)

    def for_join(self, batch: SplitBatch) -> SplitBatch:
        """``batch`` as the join gets it: with its splits' done records while this fan-out
        keeps less than :data:`CARRIED_MOST` of them, else without (the join then reads
        its object), so the driver's memory stays bounded however wide the step."""
        if batch.results is None:
            return batch
        if self.carried + len(batch.results) > CARRIED_MOST:
            return batch._replace(results=None)
        self.carried += len(batch.results)
        return batch

    def key(self, batch: list[TaskSpec], run_id: str) -> str:
        """A new batch's Dask key: unique, as a batch sent again after its worker died
        starts at the same split again."""
        self.sent += 1
        return f"{self.step}-{batch[0].task_id}x{len(batch)}.{self.sent}-{run_id}"

    def lost(self, specs: list[TaskSpec], notes: list[tuple[str, dict[str, Any]]] | None,
             death: Death) -> BatchLoss:
        """The batch of ``specs`` died with its worker, of ``death``; ``notes`` its journal
        (``[]``: it had nothing uncommitted; None: nothing is known)."""
        self.in_flight -= 1
        if notes is None:
            return BatchLoss(alone=list(specs))
        entries, running = journal_state(notes)
        finished_at = {e["task_id"]: e["attempt"] for e in entries
                       if (e.get("done") or {}).get("status") == "ok"}
        ends = self.tasks(specs)[-1][1]   # a split is finished when its chain's last is
        count = 0  # the splits run in order: those finished are the first ones
        while count < len(specs) and ends[count] in finished_at:
            count += 1
        finished = None
        if count:
            ids = tuple(ends[:count])
            finished = SplitBatch(self.last, ids, tuple(finished_at[i] for i in ids), 0.0)
        dead = None
        if running is not None:
            start, attempt = running.get("start") or {}, int(running.get("attempt", 0))
            dead = {"step": running.get("step", self.step), "task_id": running["task_id"],
                    "attempt": attempt, "start": start,
                    "done": death_record(start, attempt, death.cause,
                                         lost_message(start, attempt, death.message))}
            entries = [*entries, dead]
        self.pending.extendleft(reversed(specs[count:]))
        by_step: dict[str, list[dict[str, Any]]] = {}
        for entry in entries:  # a chain's journal names each entry's step
            by_step.setdefault(entry.get("step", self.step), []).append(
                {k: v for k, v in entry.items() if k != "step"})
        if dead is not None:
            dead = by_step[dead["step"]][-1]
        return BatchLoss(by_step, finished, dead)

    def returned(self, specs: list[TaskSpec], error: BaseException | None) -> bool:
        """A batch failed with ``error``: True when its splits are to run again one per
        Dask task (not a split's failure: its worker died, ...), False when the run fails
        (a split's failure, or the datastore gone: each split alone would meet it too)."""
        self.in_flight -= 1
        return error is not None and not isinstance(error, (TaskFailed, DatastoreUnavailable))

    @property
    def done(self) -> bool:
        return not self.pending and self.in_flight == 0
