"""The graph walk of one run: given what finished, what to submit next. No Dask here.

The walk owns the flow's control flow: which task follows which, the joins that
wait for all their inputs, a foreach fanning out once its width is known, a switch
following the step it chose (a recursive switch choosing its own step runs it again,
one pass further: a loop), and tasks reused instead of run (clones on resume).
It hands out task ids and returns plain decisions (:class:`Run`, :class:`Reused`,
:class:`ReusedSplits`, :class:`Expanded`, :class:`SizeSplits`); the driver carries them
out, and where
those tasks run (the default cluster, a step cluster, batches of splits) is the
business of other owners.

Tasks go to Dask as soon as their inputs are known, so the scheduler runs a linear
stretch, branches and their joins without waiting for the driver: the followers of
a task that needs no decision of its own are walked to at once, with the task's
:class:`TaskKey` standing for its result (the driver puts the task's future in its
place).  The followers of a foreach or switch step (which decide only when done),
of a step on a cluster of its own (whose futures stay on that cluster) and of a
batch of splits are walked to when the driver says they finished, with their refs.
The steps that follow a batched split in its batch (a chain ``a -> b`` up to the join,
:attr:`Routes.chains`) get their task ids reserved by split index when the foreach
fans out, so ``b[i]`` has the same id run in a batch, alone, or reused.  The splits of
such a step that follow reused ones (``resume`` of the chain) are asked of the reusers
all at once, each with its own parent, and those left to run go out as one batched
fan-out (:attr:`Run.after_reused`), as the chain's first step's do.

Tests drive it in-process from graphs given as data (``tests/runtime/test_walk.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, Union

from ..datastore.store import REUSED_PER_OBJECT
from ..graph import FOREACH, SWITCH, FlowGraph
from ..inputs import ForeachFrame
from .context import Chain, SplitBatch, TaskKey, TaskRef, TaskSpec

Frames = tuple[ForeachFrame, ...]
#: what a task gets from a parent: the ref of a finished task, the result of a batch of
#: splits, or the key of a submitted task whose result Dask hands over
Parent = Union[TaskRef, SplitBatch, TaskKey]


@dataclass(frozen=True)
class Run:
    """Submit these tasks of ``step``, each with its parents (in its join's order)."""

    step: str
    specs: tuple[TaskSpec, ...]
    parents: tuple[tuple[Parent, ...], ...]
    fanout: bool = False      # the splits of one foreach, all with its finished step's ref
    chain: Chain = ()         # a batched fan-out's: the steps its splits go on to in a batch
    #: splits of a batched chain's later step whose earlier steps were reused: batched
    #: as a fan-out's, each with its own parent (``a[i]``'s ref for ``b[i]``)
    after_reused: bool = False

    @property
    def parent(self) -> Parent:
        """The one parent of a fan-out's splits."""
        return self.parents[0][0]


@dataclass(frozen=True)
class Reused:
    """A task taken as finished instead of run; its followers are walked to already.
    ``source``: what gave it (``resume``'s clones, the ``cache``)."""

    step: str
    task_id: str
    ref: TaskRef
    source: str = "resume"


@dataclass(frozen=True)
class ReusedSplits:
    """Splits of ``step`` taken as finished at once.  Those of a step that goes to its
    join are consecutive and reach it as one :class:`SplitBatch` (as a batch that ran
    would; at most as many as a batch object of reused tasks holds,
    ``REUSED_PER_OBJECT``): a wide foreach that ``resume`` clones puts one value per
    chunk in its join's graph, not one ref per split.  Those of a batched chain's
    earlier step (``a`` of ``a -> b -> join``) go on to the next step together."""

    step: str
    refs: tuple[TaskRef, ...]
    source: str = "resume"

    @property
    def task_ids(self) -> list[str]:
        return [ref.task_id for ref in self.refs]


@dataclass(frozen=True)
class Expanded:
    """A foreach step finished: ``count`` splits of ``target`` follow."""

    step: str
    target: str
    count: int


@dataclass(frozen=True)
class SizeSplits:
    """The splits of ``step`` wait for their sizes (``@resources`` per split): give them
    to :meth:`Walk.splits` group by group once they are known."""

    step: str
    frames: tuple[Frames, ...]
    parent: TaskRef


Decision = Union[Run, Reused, ReusedSplits, Expanded, SizeSplits]



class TaskReuse(Protocol):
    """Finds tasks that need not run: what was done before is taken instead."""

    source: str   # what :class:`Reused` names as where the task came from
    #: whether the tasks it takes of a step that :func:`goes_to_join` reach the join as
    #: :class:`SplitBatch` values (:class:`ReusedSplits`; the join reads their records),
    #: which :meth:`reuse` then takes as the join's parents, and whose refs need only
    #: their task id, attempt and frames; else as one :class:`TaskRef` each
    in_batches: bool

    def waits(self) -> frozenset[str]:
        """The steps whose followers it looks up only with their refs (the driver then
        has the walk wait for those, :attr:`Routes.follow_on_finish`)."""
        ...

    def reuse(self, specs: Sequence[TaskSpec],
              parents: Sequence[Sequence[TaskRef | SplitBatch]]) -> list[TaskRef | None]:
        """The ref of each of ``specs`` (one step's tasks, each with its parents in
        ``parents``: finished tasks, or batches of splits for a join; the splits of one
        foreach share one sequence) recorded as done in this run, or None where it has
        to run."""
        ...


def goes_to_join(graph: FlowGraph, step: str) -> bool:
    """Whether the tasks of ``step`` go straight to the join of their foreach."""
    node = graph[step]
    if node.transition in (FOREACH, SWITCH) or len(node.out_funcs) != 1:
        return False
    join = graph[node.out_funcs[0]]
    return join.is_join and bool(join.matching_split) \
        and graph[join.matching_split or ""].transition == FOREACH


def chain_to_join(graph: FlowGraph, step: str) -> tuple[str, ...] | None:
    """The steps that follow ``step``, one after the other, up to the join of its
    foreach: ``()`` when it goes straight there; None when what follows is no such
    line (a branch, a nested foreach, a switch, a step that other steps lead to too)."""
    chain: list[str] = []
    while not goes_to_join(graph, step):
        node = graph[step]
        if node.transition in (FOREACH, SWITCH) or len(node.out_funcs) != 1:
            return None
        after = graph[node.out_funcs[0]]
        if after.is_join or after.in_funcs != [step]:
            return None
        step = after.name
        chain.append(step)
    return tuple(chain)


@dataclass(frozen=True)
class Routes:
    """What the walk needs to know of where steps run (the driver's owners decide it)."""

    #: steps on a cluster of their own, and steps followed by cached ones: what follows
    #: them waits for their refs
    follow_on_finish: frozenset[str] = frozenset()
    #: foreach steps whose splits run in batches: their join takes each batch's result
    batched: frozenset[str] = frozenset()
    #: those of them whose splits go on to more steps in the same batch: those steps
    #: (:func:`chain_to_join`), whose task ids each fan-out reserves
    chains: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: foreach steps sized per split: their splits wait for their sizes
    sized: frozenset[str] = frozenset()


@dataclass
class _Join:
    expected: int
    arrivals: dict[tuple[int, ...], Parent] = field(default_factory=dict)
    count: int = 0    # inputs arrived (a batch of splits brings many)


class Walk:
    """The control flow of one run, from ``start`` to ``end``: each method takes what
    happened and returns the decisions that follow, in the order to carry them out
    (a task's followers come after it, depth first, as their task ids do)."""

    def __init__(self, graph: FlowGraph, run_id: str, routes: Routes | None = None,
                 reuse: Sequence[TaskReuse] = ()) -> None:
        self.graph = graph
        self.run_id = run_id
        self.routes = routes or Routes()
        self.reuse = list(reuse)   # asked in order: what one leaves, the next may take
        self.joins: dict[tuple[str, Frames], _Join] = {}
        self.next_task_id = 1
        #: (a chained step, its foreach's task id) -> the task id of its split 0
        self.reserved: dict[tuple[str, str], int] = {}

    # -- what the driver tells it ---------------------------------------------------

    def start(self) -> list[Decision]:
        return self._task("start", (), [])

    def waits_for(self, step: str) -> bool:
        """Whether what follows ``step`` waits for :meth:`finished` with its tasks' refs."""
        return self.graph[step].transition in (FOREACH, SWITCH) \
            or step in self.routes.follow_on_finish

    def finished(self, ref: TaskRef) -> list[Decision]:
        """A task of a step that :meth:`waits_for` finished with ``ref``."""
        return self._follow(ref.step, ref.frames, ref)

    def batch_finished(self, batch: SplitBatch, frames: Frames) -> list[Decision]:
        """A batch of splits finished; ``frames`` are those of its first split."""
        target = self.graph[batch.step].out_funcs[0]
        return self._arrive(target, frames, batch, batch.step, len(batch.task_ids))

    def sent_alone(self, specs: Sequence[TaskSpec]) -> list[Decision]:
        """Splits of a batched step now run one per Dask task: each goes to its join
        with its own task's result."""
        decisions: list[Decision] = []
        for spec in specs:
            if not self.waits_for(spec.step):  # else its ref follows it when it finishes
                decisions += self._follow(spec.step, spec.frames, self._key(spec))
        return decisions

    def splits(self, step: str, frames_list: Sequence[Frames],
               parent: TaskRef) -> list[Decision]:
        """The splits of a foreach into ``step``: new tasks, one per frames."""
        first = self.next_task_id
        self.next_task_id += len(frames_list)
        specs = [TaskSpec(step, str(first + index), frames)
                 for index, frames in enumerate(frames_list)]
        chain = self._reserve(step, frames_list[0][-1], parent) if frames_list else ()
        decisions, specs, _ = self._reused(step, specs, [(parent,)] * len(specs))
        if not specs:
            return decisions
        decisions.append(Run(step, tuple(specs), ((parent,),) * len(specs), fanout=True,
                             chain=chain))
        if step not in self.routes.batched and not self.waits_for(step):
            for spec in specs:
                decisions += self._follow(step, spec.frames, self._key(spec))
        return decisions

    # -- the walk ---------------------------------------------------------------------

    def _reserve(self, step: str, frame: ForeachFrame, parent: TaskRef) -> Chain:
        """The task ids of the steps that follow the splits of ``step`` in their batches
        (:attr:`Routes.chains`), one block per step, reserved once per foreach task: a
        split's followers get theirs by its index, run in its batch, alone or reused."""
        chain = []
        for later in self.routes.chains.get(step, ()):
            key = (later, parent.task_id)
            if key not in self.reserved:
                self.reserved[key] = self.next_task_id
                self.next_task_id += frame.num_splits
            chain.append((later, self.reserved[key]))
        return tuple(chain)

    def _task_id(self, step: str, frames: Frames) -> str:
        """The next task id, or the one reserved for this split of a chained step."""
        first = self.reserved.get((step, frames[-1].task_id)) if frames else None
        if first is not None:
            return str(first + frames[-1].index)
        self.next_task_id += 1
        return str(self.next_task_id - 1)

    def _task(self, step: str, frames: Frames, parents: list[Parent],
               iteration: int = 0) -> list[Decision]:
        spec = TaskSpec(step, self._task_id(step, frames), frames, iteration=iteration)
        decisions, left, _ = self._reused(step, [spec], [tuple(parents)])
        if not left:
            return decisions
        decisions.append(Run(step, (spec,), (tuple(parents),)))
        if not self.waits_for(step):
            decisions += self._follow(step, frames, self._key(spec))
        return decisions

    def _reused(self, step: str, specs: list[TaskSpec], parents: list[tuple[Parent, ...]]
                ) -> tuple[list[Decision], list[TaskSpec], list[tuple[Parent, ...]]]:
        """Take what :attr:`reuse` has for ``specs`` (each with its ``parents``, all of
        them finished tasks or batches), walk on from those; the rest are to run, with
        their parents."""
        if not all(isinstance(p, (TaskRef, SplitBatch))
                   for plist in {id(plist): plist for plist in parents}.values()
                   for p in plist):
            return [], specs, parents
        decisions: list[Decision] = []
        for reuse in self.reuse:
            if not specs:
                break
            refs = reuse.reuse(specs, parents)  # type: ignore[arg-type]
            left, left_parents = [], []
            taken: list[TaskRef] = []
            for spec, plist, ref in zip(specs, parents, refs):
                if ref is None:
                    left.append(spec)
                    left_parents.append(plist)
                else:
                    taken.append(ref)
            if taken and reuse.in_batches and goes_to_join(self.graph, step):
                decisions += self._reused_splits(step, taken, reuse.source)
            elif taken and self._chained_after(step, taken[0].frames):
                decisions.append(ReusedSplits(step, tuple(taken), reuse.source))
                decisions += self._chained(self.graph[step].out_funcs[0], taken)
            else:
                for ref in taken:
                    decisions.append(Reused(step, ref.task_id, ref, reuse.source))
                    decisions += self._follow(step, ref.frames, ref)
            specs, parents = left, left_parents
        return decisions, specs, parents

    def _chained_after(self, step: str, frames: Frames) -> bool:
        """Whether the step after ``step`` is a later step of a batched chain (its task
        ids reserved by split index): its tasks after reused ones are walked to together."""
        out = self.graph[step].out_funcs
        return bool(frames) and len(out) == 1 and \
            (out[0], frames[-1].task_id) in self.reserved

    def _chained(self, step: str, parents: list[TaskRef]) -> list[Decision]:
        """The tasks of ``step``, a batched chain's later step, after the reused tasks
        ``parents`` (one each, splits of one foreach): asked of :attr:`reuse` all at
        once, and those left to run sent as a batched fan-out, each with its parent."""
        specs = [TaskSpec(step, self._task_id(step, ref.frames), ref.frames)
                 for ref in parents]
        decisions, left, left_parents = self._reused(step, specs,
                                                     [(ref,) for ref in parents])
        if left:
            frame = left[0].frames[-1]
            chain = tuple((later, self.reserved[(later, frame.task_id)])
                          for later in chain_to_join(self.graph, step) or ())
            decisions.append(Run(step, tuple(left), tuple(left_parents), chain=chain,
                                 after_reused=True))
        return decisions

    def _reused_splits(self, step: str, refs: list[TaskRef],
                       source: str) -> list[Decision]:
        """Reused splits of ``step`` to its join: a :class:`SplitBatch` per chunk of
        consecutive splits of one foreach (a join orders a batch by its first split)."""
        decisions: list[Decision] = []
        target = self.graph[step].out_funcs[0]
        chunk: list[TaskRef] = []
        for ref in refs + [None]:  # type: ignore[list-item]
            if chunk and (ref is None or len(chunk) == REUSED_PER_OBJECT
                          or ref.frames[:-1] != chunk[-1].frames[:-1]
                          or ref.frames[-1].index != chunk[-1].frames[-1].index + 1):
                batch = SplitBatch(step, tuple(r.task_id for r in chunk),
                                   tuple(r.attempt for r in chunk), 0.0)
                decisions.append(ReusedSplits(step, tuple(chunk), source))
                decisions += self._arrive(target, chunk[0].frames, batch, step, len(chunk))
                chunk = []
            if ref is not None:
                chunk.append(ref)
        return decisions

    def _follow(self, step: str, frames: Frames, parent: Parent) -> list[Decision]:
        """What comes after a task of ``step``; a foreach or switch needs its ref."""
        node = self.graph[step]
        if node.transition in (FOREACH, SWITCH):
            assert isinstance(parent, TaskRef)
            return self._expand(step, frames, parent)
        decisions: list[Decision] = []
        for target in node.out_funcs:
            decisions += self._arrive(target, frames, parent, step)
        return decisions

    def _expand(self, step: str, frames: Frames, ref: TaskRef) -> list[Decision]:
        """A finished foreach or switch step: what follows, its ref as a value (a future
        would pin every split to the worker that holds it)."""
        node = self.graph[step]
        if node.transition == SWITCH:
            assert ref.next_step is not None
            if ref.next_step == step:  # a recursive switch: its step again, one pass on
                return self._task(step, frames, [ref], ref.iteration + 1)
            return self._arrive(ref.next_step, frames, ref, step)
        count = ref.num_splits or 0
        target = node.out_funcs[0]
        frames_list = tuple(frames + (ForeachFrame(step, ref.task_id, ref.attempt, i, count),)
                            for i in range(count))
        decisions: list[Decision] = [Expanded(step, target, count)]
        if target in self.routes.sized:
            return decisions + [SizeSplits(target, frames_list, ref)]
        return decisions + self.splits(target, frames_list, ref)

    def _arrive(self, target: str, frames: Frames, parent: Parent, source: str,
                count: int = 1) -> list[Decision]:
        """``parent`` reached ``target``; ``count`` inputs at once for a batch of splits,
        its slot being its first split's."""
        node = self.graph[target]
        if not node.is_join:
            return self._task(target, frames, [parent])
        split = self.graph[node.matching_split or ""]
        if split.transition == FOREACH:
            join_frames, slot, expected = frames[:-1], (frames[-1].index,), frames[-1].num_splits
        else:
            join_frames, expected = frames, len(split.out_funcs)
            slot = (node.in_funcs.index(source),)
        pending = self.joins.setdefault((target, join_frames), _Join(expected))
        pending.arrivals[slot] = parent
        pending.count += count
        if pending.count != pending.expected:
            return []
        del self.joins[(target, join_frames)]
        return self._task(target, join_frames, [pending.arrivals[k]
                                                for k in sorted(pending.arrivals)])

    def _key(self, spec: TaskSpec) -> TaskKey:
        return TaskKey(spec.step, spec.task_id, self.run_id)
