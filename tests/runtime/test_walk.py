"""The graph walk, in-process: graph shapes given as data x checks every walk must pass.

Each shape is a flow graph written as data, with the number of tasks each step must
run.  :func:`walk_to_end` plays Dask: it runs what the walk submits (a task whose
parent is a :class:`TaskKey` only once that parent has finished), in several orders,
with batches of splits, with steps on clusters of their own, with splits sized per
split, and tells the walk what finished, until ``end``.  Every combination must pass
the same checks (Metaflow's ``test/core`` does this with flows x checks).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from daskflow.graph import FOREACH, LINEAR, SPLIT, SWITCH, FlowGraph, StepNode
from daskflow.steps import StepPlan
from daskflow.runtime import walk as walk_module
from daskflow.runtime.context import SplitBatch, TaskKey, TaskRef, TaskSpec, chained
from daskflow.runtime.fanout import batch_chains, may_batch
from daskflow.runtime.walk import Expanded, Reused, ReusedSplits, Routes, Run, SizeSplits, \
    Walk, chain_to_join

pytestmark = pytest.mark.fast

# -- shapes as data ---------------------------------------------------------------------
# step: "a b" (go on to a, or split to a and b), ("foreach", "a", width),
# ("switch", {"value": "step", ...}) (a switch whose case names its own step loops);
# a step named join* takes inputs.


@dataclass
class Shape:
    steps: dict[str, Any]
    counts: dict[str, int]                       # tasks each step runs
    choose: Any = None                           # switch: (step, frames, pass) -> case

    def graph(self, name: str) -> FlowGraph:
        nodes = {}
        for lineno, (step, how) in enumerate(self.steps.items(), 1):
            node = StepNode(step, lineno, "shape.py", is_join=step.startswith("join"))
            if isinstance(how, str):
                node.out_funcs = how.split()
                node.transition = SPLIT if len(node.out_funcs) > 1 else LINEAR
            elif how[0] == "foreach":
                node.transition, node.out_funcs, node.foreach_var = FOREACH, [how[1]], "items"
            else:
                node.transition, node.switch_cases = SWITCH, dict(how[1])
                node.out_funcs = list(dict.fromkeys(how[1].values()))
                node.condition_var = "case"
            nodes[step] = node
        nodes["end"].transition = "end"
        return FlowGraph(name, nodes, "shape.py")

    def width(self, step: str) -> int:
        return self.steps[step][2]


def _parity(step: str, frames: tuple, iteration: int) -> str:
    return "even" if frames[-1].index % 2 == 0 else "odd"


def _passes(step: str, frames: tuple, iteration: int) -> str:
    """A loop that runs 3 passes, or (inside a foreach) one more than its split's index."""
    wanted = frames[-1].index + 1 if frames else 3
    return "again" if iteration + 1 < wanted else "done"


SHAPES = {
    "linear": Shape({"start": "a", "a": "b", "b": "end", "end": ""},
                    {"start": 1, "a": 1, "b": 1, "end": 1}),
    "branch": Shape({"start": "a b c", "a": "join", "b": "join", "c": "join",
                     "join": "end", "end": ""},
                    {"start": 1, "a": 1, "b": 1, "c": 1, "join": 1, "end": 1}),
    "nested branch": Shape({"start": "a b", "a": "a1 a2", "a1": "join_a", "a2": "join_a",
                            "join_a": "join", "b": "join", "join": "end", "end": ""},
                           {"start": 1, "a": 1, "a1": 1, "a2": 1, "join_a": 1, "b": 1,
                            "join": 1, "end": 1}),
    "foreach": Shape({"start": ("foreach", "work", 5), "work": "join", "join": "end",
                      "end": ""}, {"start": 1, "work": 5, "join": 1, "end": 1}),
    "foreach chain": Shape({"start": ("foreach", "a", 4), "a": "b", "b": "join",
                            "join": "end", "end": ""},
                           {"start": 1, "a": 4, "b": 4, "join": 1, "end": 1}),
    "nested foreach": Shape({"start": ("foreach", "outer", 2),
                             "outer": ("foreach", "inner", 3), "inner": "join_inner",
                             "join_inner": "join_outer", "join_outer": "end", "end": ""},
                            {"start": 1, "outer": 2, "inner": 6, "join_inner": 2,
                             "join_outer": 1, "end": 1}),
    "branch in foreach": Shape({"start": ("foreach", "a", 3), "a": "b c", "b": "join_bc",
                                "c": "join_bc", "join_bc": "join", "join": "end",
                                "end": ""},
                               {"start": 1, "a": 3, "b": 3, "c": 3, "join_bc": 3,
                                "join": 1, "end": 1}),
    "switch": Shape({"start": ("switch", {"even": "x", "odd": "y"}), "x": "end",
                     "y": "end", "end": ""}, {"start": 1, "x": 1, "end": 1},
                    choose=lambda step, frames, iteration: "even"),
    "switch in foreach": Shape({"start": ("foreach", "classify", 5),
                                "classify": ("switch", {"even": "halve", "odd": "grow"}),
                                "halve": "measure", "grow": "measure", "measure": "join",
                                "join": "end", "end": ""},
                               {"start": 1, "classify": 5, "halve": 3, "grow": 2,
                                "measure": 5, "join": 1, "end": 1}, choose=_parity),
    # Metaflow's recursive switch: a step that chooses itself again runs one more pass
    "loop": Shape({"start": "loop", "loop": ("switch", {"again": "loop", "done": "end"}),
                   "end": ""}, {"start": 1, "loop": 3, "end": 1}, choose=_passes),
    "loop in foreach": Shape({"start": ("foreach", "loop", 3),
                              "loop": ("switch", {"again": "loop", "done": "after"}),
                              "after": "join", "join": "end", "end": ""},
                             {"start": 1, "loop": 6, "after": 3, "join": 1, "end": 1},
                             choose=_passes),
    "loop after a join": Shape({"start": "a b", "a": "join", "b": "join", "join": "loop",
                                "loop": ("switch", {"again": "loop", "done": "end"}),
                                "end": ""},
                               {"start": 1, "a": 1, "b": 1, "join": 1, "loop": 3, "end": 1},
                               choose=_passes),
}

# -- playing Dask -------------------------------------------------------------------------


@dataclass
class Walked:
    """What a walk submitted and reused, in order."""

    runs: list[tuple[TaskSpec, tuple[Any, ...]]] = field(default_factory=list)
    reused: list[Reused] = field(default_factory=list)
    reused_splits: list[ReusedSplits] = field(default_factory=list)
    expanded: list[Expanded] = field(default_factory=list)
    finished: list[TaskSpec] = field(default_factory=list)
    refs: dict[tuple[str, str], TaskRef] = field(default_factory=dict)

    def tasks(self, step: str) -> list[tuple[TaskSpec, tuple[Any, ...]]]:
        return [(spec, parents) for spec, parents in self.runs if spec.step == step]

    def positions(self) -> Counter:
        """(step, foreach indices, pass of a loop) of every task, run or reused."""
        done = [(s.step, s.frames, s.iteration) for s, _ in self.runs] + \
               [(r.step, r.ref.frames, r.ref.iteration) for r in self.reused]
        return Counter((step, tuple(f.index for f in frames), iteration)
                       for step, frames, iteration in done)


def finish(shape: Shape, spec: TaskSpec) -> TaskRef:
    """The ref a task of ``shape`` returns: its width for a foreach, its case for a switch."""
    how = shape.steps[spec.step]
    num_splits = next_step = None
    if isinstance(how, tuple) and how[0] == "foreach":
        num_splits = how[2]
    elif isinstance(how, tuple):
        next_step = how[1][shape.choose(spec.step, spec.frames, spec.iteration)]
    return TaskRef(spec.step, spec.task_id, 0, {}, spec.frames, num_splits, next_step,
                   spec.iteration)


def walk_to_end(shape: Shape, graph: FlowGraph, routes: Routes = Routes(), order: str = "fifo",
                reuse: Any = None, seed: int = 0) -> Walked:
    walk = Walk(graph, "9", routes, [reuse] if reuse is not None else [])
    walked = Walked()
    rng = random.Random(seed)
    # (spec, parents, batched: the chain of its batch or None)
    running: list[tuple[TaskSpec, tuple[Any, ...], Any]] = []
    done: set[str] = set()

    def take(decisions: list[Any]) -> None:
        for decision in decisions:
            if isinstance(decision, Run):
                batched = decision.after_reused or \
                    (decision.fanout and decision.step in routes.batched)
                for spec, parents in zip(decision.specs, decision.parents):
                    walked.runs.append((spec, parents))
                    running.append((spec, parents, decision.chain if batched else None))
            elif isinstance(decision, Reused):
                walked.reused.append(decision)
                walked.refs[(decision.step, decision.task_id)] = decision.ref
            elif isinstance(decision, ReusedSplits):  # on their way to the join as a batch
                walked.reused_splits.append(decision)
                for ref in decision.refs:
                    walked.reused.append(Reused(decision.step, ref.task_id, ref,
                                                decision.source))
                    walked.refs[(decision.step, ref.task_id)] = ref
            elif isinstance(decision, Expanded):
                walked.expanded.append(decision)
            else:  # sized per split: two sizes, even and odd splits
                assert isinstance(decision, SizeSplits)
                for parity in (0, 1):
                    group = [f for f in decision.frames if f[-1].index % 2 == parity]
                    take(walk.splits(decision.step, group, decision.parent))

    def ready(item: tuple[TaskSpec, tuple[Any, ...], Any]) -> bool:
        return all(str(p) in done for p in item[1] if isinstance(p, TaskKey))

    take(walk.start())
    while running:
        candidates = [item for item in running if ready(item)]
        assert candidates, f"stuck: nothing can run of {running}"
        spec, parents, batched = {"fifo": candidates[0], "lifo": candidates[-1],
                                  "random": rng.choice(candidates)}[order]
        if batched is not None:  # a batch of this split and the next waiting, if consecutive
            batch = [item for item in running if item[2] is not None
                     and item[0].step == spec.step and item[0].frames[:-1] == spec.frames[:-1]
                     and item[0].frames[-1].index - spec.frames[-1].index in (0, 1)]
            for item in batch:
                running.remove(item)
                tasks = chained(item[0], batched)  # each split's chain runs in the batch
                for before, task in zip(tasks, tasks[1:]):
                    walked.runs.append((task, (TaskKey(before.step, before.task_id, "9"),)))
                for task in tasks:
                    done.add(str(TaskKey(task.step, task.task_id, "9")))
                    walked.finished.append(task)
            ends = [chained(item[0], batched)[-1] for item in batch]
            result = SplitBatch(ends[0].step, tuple(t.task_id for t in ends),
                                (0,) * len(batch), 0.01)
            take(walk.batch_finished(result, spec.frames))
            continue
        running.remove((spec, parents, batched))
        done.add(str(TaskKey(spec.step, spec.task_id, "9")))
        walked.finished.append(spec)
        ref = finish(shape, spec)
        walked.refs[(spec.step, spec.task_id)] = ref
        if walk.waits_for(spec.step):
            take(walk.finished(ref))
    assert not walk.joins, f"joins left waiting: {walk.joins}"
    return walked


# -- the checks every walk passes -----------------------------------------------------------


def check_walk(shape: Shape, graph: FlowGraph, walked: Walked, routes: Routes) -> None:
    counts = Counter(spec.step for spec, _ in walked.runs) + \
        Counter(r.step for r in walked.reused)
    assert dict(counts) == shape.counts
    ids = [int(spec.task_id) for spec, _ in walked.runs] + \
        [int(r.task_id) for r in walked.reused]
    assert sorted(ids) == list(range(1, len(ids) + 1)), "task ids: each once, no gaps"
    last = walked.finished[-1] if walked.finished else walked.reused[-1]
    assert last.step == "end"
    frames = {(s.step, s.task_id): s.frames for s, _ in walked.runs}
    frames.update({(r.step, r.task_id): r.ref.frames for r in walked.reused})
    for spec, parents in walked.runs:
        assert len(spec.frames) == graph.foreach_depth(spec.step)
        for parent in parents:
            if isinstance(parent, TaskKey):  # its result goes through Dask: it never decides
                assert not (graph[parent.step].transition in (FOREACH, SWITCH)
                            or parent.step in routes.follow_on_finish)
                assert (parent.step, parent.task_id) in frames
            elif isinstance(parent, SplitBatch):  # a batch that ran, or reused splits
                reused = {ref.task_id for r in walked.reused_splits for ref in r.refs}
                ends = {routes.chains.get(s, (s,))[-1] for s in routes.batched}  # chains' last
                assert parent.step in ends or set(parent.task_ids) <= reused
        if graph[spec.step].is_join:
            check_join(graph, spec, parents, frames)


def check_join(graph: FlowGraph, spec: TaskSpec, parents: tuple[Any, ...],
               frames: dict[tuple[str, str], tuple]) -> None:
    node = graph[spec.step]
    split = graph[node.matching_split]
    if split.transition == FOREACH:  # every split of its foreach once, in index order
        inputs = []
        for parent in parents:
            task_ids = parent.task_ids if isinstance(parent, SplitBatch) else [parent.task_id]
            inputs += [frames[(parent.step, task_id)] for task_id in task_ids]
        assert [f[-1].index for f in inputs] == list(range(inputs[0][-1].num_splits))
        assert {f[:-1] for f in inputs} == {spec.frames}
    else:  # one input per branch, in the order the join lists them
        assert [p.step for p in parents] == node.in_funcs
        assert {frames[(p.step, p.task_id)] for p in parents} == {spec.frames}


def _batched(graph: FlowGraph, follow_on_finish: frozenset[str] = frozenset()) -> Routes:
    """Routes that batch every foreach (and its chain) that may be batched."""
    chains = batch_chains(graph, lambda s: may_batch(StepPlan(s, graph[s], graph), False,
                                                     False), follow_on_finish)
    return Routes(follow_on_finish=follow_on_finish, batched=frozenset(chains),
                  chains={s: c for s, c in chains.items() if c})


def _foreach_targets(graph: FlowGraph) -> frozenset[str]:
    return frozenset(n.out_funcs[0] for n in graph if n.transition == FOREACH)


ROUTES = {
    "default": lambda graph: Routes(),
    "batched": lambda graph: _batched(graph),
    "own clusters": lambda graph: Routes(follow_on_finish=frozenset(
        n.name for n in graph if n.name not in ("start", "end"))),
    "sized": lambda graph: Routes(follow_on_finish=_foreach_targets(graph),
                                  sized=_foreach_targets(graph)),
}


@pytest.mark.parametrize("order", ["fifo", "lifo", "random"])
@pytest.mark.parametrize("routes", sorted(ROUTES))
@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_shape_walks_to_end(name: str, routes: str, order: str) -> None:
    shape = SHAPES[name]
    graph = shape.graph(name.replace(" ", "_"))
    chosen = ROUTES[routes](graph)
    walked = walk_to_end(shape, graph, chosen, order)
    check_walk(shape, graph, walked, chosen)
    # where tasks run and in which order they finish never changes what runs
    assert walked.positions() == walk_to_end(shape, graph).positions()


# -- what one shape shows ---------------------------------------------------------------


def test_a_linear_stretch_and_branches_go_at_once_depth_first() -> None:
    graph = SHAPES["nested branch"].graph("nested")
    decisions = Walk(graph, "9").start()
    runs = [(d.step, d.specs[0].task_id, d.parents) for d in decisions]
    key = lambda step, task: TaskKey(step, task, "9")  # noqa: E731
    assert runs == [("start", "1", ((),)),
                    ("a", "2", ((key("start", "1"),),)),
                    ("a1", "3", ((key("a", "2"),),)),
                    ("a2", "4", ((key("a", "2"),),)),
                    ("join_a", "5", ((key("a1", "3"), key("a2", "4")),)),
                    ("b", "6", ((key("start", "1"),),)),
                    ("join", "7", ((key("join_a", "5"), key("b", "6")),)),
                    ("end", "8", ((key("join", "7"),),))]


def test_a_foreach_expands_when_it_finishes_with_its_ref_as_the_parent() -> None:
    shape = SHAPES["foreach"]
    walk = Walk(shape.graph("fe"), "9")
    [start] = walk.start()
    assert start.step == "start" and walk.waits_for("start")
    ref = finish(shape, start.specs[0])
    expanded, work, *rest = walk.finished(ref)
    assert expanded == Expanded("start", "work", 5)
    assert work.fanout and work.parent == ref and [s.task_id for s in work.specs] == \
        ["2", "3", "4", "5", "6"]
    assert [s.frames[-1].index for s in work.specs] == [0, 1, 2, 3, 4]
    # unbatched splits on the default cluster: the join and end go at once, on their keys
    join, end = rest
    assert join.step == "join" and [p.task_id for p in join.parents[0]] == \
        ["2", "3", "4", "5", "6"]
    assert end.parents == ((TaskKey("join", "7", "9"),),)


def test_batched_splits_reach_the_join_only_with_their_batches() -> None:
    shape = SHAPES["foreach"]
    walk = Walk(shape.graph("fe"), "9", Routes(batched=frozenset({"work"})))
    [start] = walk.start()
    _, work = walk.finished(finish(shape, start.specs[0]))
    first, second = work.specs[:3], work.specs[3:]
    assert walk.batch_finished(SplitBatch("work", ("2", "3", "4"), (0, 0, 0), 0.1),
                               first[0].frames) == []
    # two splits of the last batch come back one per Dask task (their worker died)
    again = walk.sent_alone(second)
    join, end = again
    batch, *alone = join.parents[0]
    assert isinstance(batch, SplitBatch) and alone == [TaskKey("work", "5", "9"),
                                                       TaskKey("work", "6", "9")]


def test_a_chained_fanout_reserves_its_followers_task_ids_by_split_index() -> None:
    shape = SHAPES["foreach chain"]   # start -foreach(4)-> a -> b -> join
    graph = shape.graph("chain")
    assert chain_to_join(graph, "a") == ("b",) and chain_to_join(graph, "b") == ()
    walk = Walk(graph, "9", Routes(batched=frozenset({"a"}), chains={"a": ("b",)}))
    [start] = walk.start()
    _, a = walk.finished(finish(shape, start.specs[0]))   # nothing follows a batched a
    assert [s.task_id for s in a.specs] == ["2", "3", "4", "5"] and a.chain == (("b", 6),)
    assert [t.task_id for t in chained(a.specs[1], a.chain)] == ["3", "7"]
    # splits 0-1 finish in a batch that brings b's tasks; 2-3 come back one per Dask task
    assert walk.batch_finished(SplitBatch("b", ("6", "7"), (0, 0), 0.1),
                               a.specs[0].frames) == []
    b2, b3, join, end = walk.sent_alone(a.specs[2:])
    assert [(r.step, r.specs[0].task_id, r.parents) for r in (b2, b3)] == \
        [("b", "8", ((TaskKey("a", "4", "9"),),)), ("b", "9", ((TaskKey("a", "5", "9"),),))]
    batch, *alone = join.parents[0]
    assert batch.task_ids == ("6", "7") and alone == [TaskKey("b", "8", "9"),
                                                      TaskKey("b", "9", "9")]
    assert (join.specs[0].task_id, end.specs[0].task_id) == ("10", "11")


def test_a_switch_follows_the_step_it_chose() -> None:
    graph = SHAPES["switch"].graph("sw")
    walk = Walk(graph, "9")
    [start] = walk.start()
    chose_y = TaskRef("start", "1", 0, {}, (), None, "y")
    [y, end] = walk.finished(chose_y)
    assert (y.step, y.parents, end.step) == ("y", ((chose_y,),), "end")


def test_a_recursive_switch_runs_its_step_again_one_pass_on() -> None:
    # Metaflow 2.19.39 numbers them so too: start 1, loop 2 3 4, end 5
    shape = SHAPES["loop"]
    walked = walk_to_end(shape, shape.graph("loop"))
    loops = walked.tasks("loop")
    assert [(s.task_id, s.iteration) for s, _ in loops] == [("2", 0), ("3", 1), ("4", 2)]
    assert [p.task_id for _, (p,) in loops] == ["1", "2", "3"]  # each pass after the last
    [(end, (parent,))] = walked.tasks("end")
    assert (end.task_id, parent.task_id, parent.iteration) == ("5", "4", 2)


def test_a_loop_inside_a_foreach_loops_each_split_on_its_own() -> None:
    shape = SHAPES["loop in foreach"]
    walked = walk_to_end(shape, shape.graph("loop_in_foreach"), order="random", seed=3)
    passes = Counter(s.frames[-1].index for s, _ in walked.tasks("loop"))
    assert passes == {0: 1, 1: 2, 2: 3}
    assert sorted((s.frames[-1].index, s.iteration) for s, _ in walked.tasks("loop")) == [
        (0, 0), (1, 0), (1, 1), (2, 0), (2, 1), (2, 2)]


@pytest.mark.parametrize("steps, words", [
    ({"start": ("switch", {"again": "start", "done": "end"}), "end": ""},
     "No step may go back to 'start'"),
    ({"start": "a", "a": "a", "end": ""}, "only a switch may loop"),
    ({"start": "a b", "a": "join", "b": "join",
      "join": ("switch", {"again": "join", "done": "end"}), "end": ""}, "a join cannot loop"),
    ({"start": "a", "a": "b", "b": ("switch", {"again": "a", "done": "end"}), "end": ""},
     "a -> b -> a"),
])
def test_only_a_switch_may_loop_and_only_to_its_own_step(steps, words) -> None:
    from daskflow.exceptions import FlowDefinitionError

    with pytest.raises(FlowDefinitionError, match=words):
        Shape(steps, {}).graph("bad")


def test_sized_splits_are_placed_group_by_group_once_their_sizes_are_known() -> None:
    shape = SHAPES["foreach"]
    walk = Walk(shape.graph("fe"), "9", Routes(sized=frozenset({"work"}),
                                               follow_on_finish=frozenset({"work"})))
    [start] = walk.start()
    ref = finish(shape, start.specs[0])
    expanded, sizing = walk.finished(ref)
    assert isinstance(sizing, SizeSplits) and len(sizing.frames) == 5
    [big] = walk.splits("work", sizing.frames[:2], ref)
    [small] = walk.splits("work", sizing.frames[2:], ref)
    assert [s.task_id for s in big.specs + small.specs] == ["2", "3", "4", "5", "6"]


# -- resume: tasks reused instead of run ----------------------------------------------


class Clones:
    """A :class:`~daskflow.runtime.walk.TaskReuse` as resume's: a task whose place the
    origin walk finished, outside ``excluded``, is reused if all its parents were."""

    source = "resume"
    in_batches = True

    def __init__(self, origin: Walked, excluded: set[str]) -> None:
        self.origin = {(ref.step, tuple(f.index for f in ref.frames), ref.iteration): ref
                       for ref in origin.refs.values()}
        self.excluded = excluded
        self.cloned: set[tuple[str, str]] = set()
        self.asked: list[tuple[str, int]] = []   # (step, specs) of each call

    def reuse(self, specs, parents):
        self.asked.append((specs[0].step, len(specs)))
        def cloned(parent):
            ids = parent.task_ids if isinstance(parent, SplitBatch) else [parent.task_id]
            return all((parent.step, task_id) in self.cloned for task_id in ids)

        refs = []
        for spec, own in zip(specs, parents, strict=True):
            hit = self.origin.get((spec.step, tuple(f.index for f in spec.frames),
                                   spec.iteration))
            if hit is None or spec.step in self.excluded or not all(map(cloned, own)):
                refs.append(None)
                continue
            refs.append(hit._replace(task_id=spec.task_id, frames=spec.frames))
            self.cloned.add((spec.step, spec.task_id))
        return refs


RESUMES = [("linear", {"b", "end"}), ("branch", {"c", "join", "end"}),
           ("foreach", {"join", "end"}), ("nested foreach", {"inner", "join_inner",
                                                             "join_outer", "end"}),
           ("switch in foreach", {"measure", "join", "end"}),
           ("loop", {"loop", "end"}), ("loop in foreach", {"after", "join", "end"})]


@pytest.mark.parametrize("name, rerun", RESUMES)
def test_resume_reuses_what_comes_before_its_step_and_runs_the_rest(name, rerun) -> None:
    shape = SHAPES[name]
    graph = shape.graph(name.replace(" ", "_"))
    origin = walk_to_end(shape, graph)
    resumed = walk_to_end(shape, graph, reuse=Clones(origin, rerun), order="random")
    check_walk(shape, graph, resumed, Routes())
    assert {r.step for r in resumed.reused} == set(shape.counts) - rerun
    assert {spec.step for spec, _ in resumed.runs} == rerun
    assert resumed.positions() == origin.positions()


def test_resume_in_the_middle_of_a_loop_clones_the_passes_before_it() -> None:
    # the origin failed at split 2's second pass: its passes before are cloned, as
    # Metaflow 2.19.39's resume clones them (tests/runtime/test_loops.py runs it)
    shape = SHAPES["loop in foreach"]
    graph = shape.graph("loop_in_foreach")
    origin = walk_to_end(shape, graph)

    def finished_before_the_failure(ref: TaskRef) -> bool:
        if ref.step in ("join", "end"):
            return False
        return not ref.frames or ref.frames[-1].index != 2 or \
            (ref.step == "loop" and ref.iteration == 0)

    origin.refs = {key: ref for key, ref in origin.refs.items()
                   if finished_before_the_failure(ref)}
    resumed = walk_to_end(shape, graph, reuse=Clones(origin, set()), order="random")
    check_walk(shape, graph, resumed, Routes())
    ran = sorted((s.step, s.frames[-1].index if s.frames else None, s.iteration)
                 for s, _ in resumed.runs)
    assert ran == [("after", 2, 0), ("end", None, 0), ("join", None, 0),
                   ("loop", 2, 1), ("loop", 2, 2)]


def test_resume_with_nothing_to_redo_reuses_end_too() -> None:
    shape = SHAPES["branch"]
    graph = shape.graph("branch")
    resumed = walk_to_end(shape, graph, reuse=Clones(walk_to_end(shape, graph), set()))
    assert resumed.runs == [] and resumed.reused[-1].step == "end"


def test_a_cloned_foreach_reaches_its_join_as_batches_of_consecutive_splits() -> None:
    """A wide foreach whose join failed: its clones go to the join as few SplitBatch
    values (chunks of REUSED_PER_OBJECT consecutive splits), the ones the origin did not
    finish run, and the join's inputs stay in order."""
    shape = Shape({"start": ("foreach", "work", 1300), "work": "join", "join": "end",
                   "end": ""}, {"start": 1, "work": 1300, "join": 1, "end": 1})
    graph = shape.graph("wide")
    origin = walk_to_end(shape, graph)
    origin.refs = {key: ref for key, ref in origin.refs.items()   # split 1100 failed
                   if key[0] == "start" or (key[0] == "work" and ref.frames[-1].index != 1100)}
    resumed = walk_to_end(shape, graph, reuse=Clones(origin, {"join", "end"}))
    check_walk(shape, graph, resumed, Routes())
    [(join, parents)] = resumed.tasks("join")
    sizes = [len(p.task_ids) if isinstance(p, SplitBatch) else p for p in parents]
    assert sizes[:2] == [1000, 100] and sizes[3:] == [199]
    assert isinstance(parents[2], TaskKey) and parents[2].task_id == "1102"  # it ran
    ids = [int(t) for p in parents for t in (p.task_ids if isinstance(p, SplitBatch)
                                            else [p.task_id])]
    assert ids == list(range(2, 1302))
    assert [len(r.refs) for r in resumed.reused_splits] == [1000, 100, 199]


def _chain(width: int, *steps: str) -> Shape:
    """``start -foreach(width)-> steps... -> join -> end``."""
    flow = {"start": ("foreach", steps[0], width), "join": "end", "end": ""}
    flow.update({step: after for step, after in zip(steps, [*steps[1:], "join"])})
    return Shape(flow, {"start": 1, **{step: width for step in steps}, "join": 1, "end": 1})


def test_a_cloned_batched_chain_clones_each_step_in_one_call_and_reaches_its_join_in_chunks(
        monkeypatch) -> None:
    """resume after the join of ``a -> b`` failed: ``b``'s clones are asked for all at once,
    each with its own parent (``a[i]``'s clone), and go to the join a chunk at a time (of
    100 here, a batch object's worth being 1,000)."""
    monkeypatch.setattr(walk_module, "REUSED_PER_OBJECT", 100)
    shape = _chain(210, "a", "b")
    graph = shape.graph("chain")
    routes = _batched(graph)
    assert routes.chains == {"a": ("b",)}
    origin = walk_to_end(shape, graph)   # refs by place (a batch keeps none here)
    clones = Clones(origin, {"join", "end"})
    resumed = walk_to_end(shape, graph, routes, reuse=clones)
    check_walk(shape, graph, resumed, routes)
    assert [spec.step for spec, _ in resumed.runs] == ["join", "end"]
    assert clones.asked == [("start", 1), ("a", 210), ("b", 210), ("join", 1)]
    assert [(r.step, len(r.refs)) for r in resumed.reused_splits] == \
        [("a", 210), ("b", 100), ("b", 100), ("b", 10)]
    [(_, parents)] = resumed.tasks("join")
    assert [(p.step, len(p.task_ids)) for p in parents] == [("b", 100), ("b", 100),
                                                            ("b", 10)]
    assert resumed.positions() == origin.positions()
    ids = {(r.step, r.ref.frames[-1].index): r.task_id for r in origin.reused} | \
        {(s.step, s.frames[-1].index): s.task_id for s, _ in origin.runs if s.frames}
    assert all(ids[(r.step, r.ref.frames[-1].index)] == r.task_id   # the origin's ids
               for r in resumed.reused if r.ref.frames)


@pytest.mark.parametrize("steps, rerun", [(("a", "b"), "b"), (("a", "b", "c"), "b"),
                                          (("a", "b", "c"), "c")])
def test_a_chain_resumed_from_a_later_step_runs_it_batched_after_the_clones(steps,
                                                                           rerun) -> None:
    """``resume b``: ``a`` is cloned, ``b`` (and what follows it in the chain) runs as a
    batched fan-out, each split with its ``a``'s clone as its parent."""
    shape = _chain(30, *steps)
    graph = shape.graph("chain")
    routes = _batched(graph)
    origin = walk_to_end(shape, graph)
    after = steps[steps.index(rerun):]
    clones = Clones(origin, {*after, "join", "end"})
    resumed = walk_to_end(shape, graph, routes, "random", reuse=clones)
    check_walk(shape, graph, resumed, routes)
    walk = Walk(graph, "9", routes, [Clones(origin, {*after, "join", "end"})])
    decisions = walk.finished(walk.start()[0].ref)
    [run] = [d for d in decisions if isinstance(d, Run)]
    assert run.after_reused and run.step == rerun and len(run.specs) == 30
    before = steps[steps.index(rerun) - 1]
    assert [plist for plist in run.parents] == \
        [(r,) for d in decisions if isinstance(d, ReusedSplits) and d.step == before
         for r in d.refs]
    assert [step for step, _ in run.chain] == list(after[1:])
    assert {spec.step for spec, _ in resumed.runs} == {*after, "join", "end"}
    assert resumed.positions() == origin.positions()


def test_a_chain_split_whose_second_step_failed_in_the_origin_runs_it_batched_alone(
        ) -> None:
    """The origin finished ``a`` everywhere and ``b`` but at split 5: ``b[5]`` runs (a
    batched fan-out of one, its ``a[5]``'s clone as parent), the other ``b`` clones reach
    the join in chunks of consecutive splits, and the join's inputs stay in order."""
    shape = _chain(12, "a", "b")
    graph = shape.graph("chain")
    routes = _batched(graph)
    origin = walk_to_end(shape, graph)
    origin.refs = {key: ref for key, ref in origin.refs.items()
                   if key[0] in ("start", "a") or (key[0] == "b" and ref.frames[-1].index != 5)}
    resumed = walk_to_end(shape, graph, routes, reuse=Clones(origin, {"join", "end"}))
    check_walk(shape, graph, resumed, routes)
    assert [(spec.step, spec.frames[-1].index if spec.frames else None)
            for spec, _ in resumed.runs] == [("b", 5), ("join", None), ("end", None)]
    [(_, (parent,))] = resumed.tasks("b")
    assert parent.step == "a" and parent.frames[-1].index == 5   # its clone's ref
    assert [(r.step, len(r.refs)) for r in resumed.reused_splits] == \
        [("a", 12), ("b", 5), ("b", 6)]
    [(_, parents)] = resumed.tasks("join")
    assert [len(p.task_ids) for p in parents] == [5, 1, 6]


def test_a_join_whose_inputs_were_cloned_in_batches_is_cloned_too() -> None:
    shape = SHAPES["nested foreach"]
    graph = shape.graph("nested_foreach")
    resumed = walk_to_end(shape, graph, reuse=Clones(walk_to_end(shape, graph), {"end"}))
    assert [spec.step for spec, _ in resumed.runs] == ["end"]
    # each inner foreach, and the join of each (one per outer split) to the outer join
    assert [len(r.refs) for r in resumed.reused_splits] == [3, 1, 3, 1]


def test_cloned_task_ids_are_kept_as_spans():
    from daskflow.runtime.resume import TaskIdSpans
    spans = TaskIdSpans()
    spans.add("work", range(2, 1002))
    spans.add("work", [1005, 1003, 1004, 7])
    spans.add("start", [1])
    assert spans.spans["work"][0] == (2, 1001)   # consecutive ids: one span
    assert all(spans.holds("work", t) for t in [2, 500, 1001, 1003, 1004, 1005, 7])
    assert not any(spans.holds("work", t) for t in [1, 1002, 1006, 0])
    assert spans.holds("start", 1) and not spans.holds("join", 1)


# -- the cache: tasks reused by what they read, whether their parents ran or not ------------


class Hits:
    """A :class:`~daskflow.runtime.walk.TaskReuse` as ``@cache``'s: every task is asked for
    (its parents finished, as refs or batches), and hits unless it is one of ``changed``
    or read what a task that ran in this walk made (a batch's splits ran)."""

    source = "cache"
    in_batches = False

    def __init__(self, shape: Shape, changed: set[tuple[str, tuple[int, ...]]]) -> None:
        self.shape = shape
        self.changed = changed
        self.asked: list[tuple[str, tuple[int, ...], int]] = []
        self.hits: set[tuple[str, str]] = set()

    def reuse(self, specs, parents):
        refs = []
        for spec, own in zip(specs, parents, strict=True):
            ran = any(isinstance(p, SplitBatch) or (p.step, p.task_id) not in self.hits
                      for p in own)
            place = (spec.step, tuple(f.index for f in spec.frames))
            self.asked.append((*place, spec.iteration))
            if ran or place in self.changed:
                refs.append(None)
                continue
            self.hits.add((spec.step, spec.task_id))
            refs.append(finish(self.shape, spec))
        return refs


CACHED = [("foreach", ("work", (2,)), {"work", "join", "end"}),
          ("foreach chain", ("b", (1,)), {"b", "join", "end"}),
          ("nested foreach", ("inner", (1, 0)), {"inner", "join_inner", "join_outer", "end"}),
          ("branch", ("b", ()), {"b", "join", "end"}),
          ("linear", ("a", ()), {"a", "b", "end"})]


@pytest.mark.parametrize("routes", ["default", "batched"])
@pytest.mark.parametrize("name, changed, rerun", CACHED)
def test_a_cached_walk_runs_what_changed_and_what_read_it_only(name, changed, rerun,
                                                               routes) -> None:
    """Each task is looked up once its parents finished: the steps before cached ones hand
    their refs to the walk (the driver puts them in ``follow_on_finish``)."""
    shape = SHAPES[name]
    graph = shape.graph(name.replace(" ", "_"))
    waits = frozenset(n.name for n in graph if n.out_funcs)
    chosen = _batched(graph, waits) if routes == "batched" else Routes(follow_on_finish=waits)
    hits = Hits(shape, {changed})
    walked = walk_to_end(shape, graph, chosen, "random", reuse=hits)
    check_walk(shape, graph, walked, chosen)
    assert Counter(hits.asked) == walked.positions()   # every task was looked up, once
    assert {spec.step for spec, _ in walked.runs} == rerun
    ran = [(spec.step, tuple(f.index for f in spec.frames)) for spec, _ in walked.runs]
    assert [place for place in ran if place[0] == changed[0]] == [changed]  # it alone
    assert all(r.source == "cache" for r in walked.reused)


def test_the_walk_imports_no_dask():
    import ast
    from pathlib import Path

    import daskflow.runtime.walk as walk_module

    tree = ast.parse(Path(walk_module.__file__).read_text())
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and not node.level]
    assert not [name for name in imported if name.split(".")[0] in ("dask", "distributed")]
