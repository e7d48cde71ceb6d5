"""Batches of short splits on the driver's side, in-process: which fan-outs are batched,
how big each batch is, how many are in flight, what a failed batch leads to."""

from __future__ import annotations

import dask.config
import pytest

from daskflow import causes
from daskflow.clusters.deaths import Death
from daskflow.exceptions import TaskFailed
from daskflow.graph import FlowGraph
from daskflow.inputs import ForeachFrame
from daskflow.runtime.context import TaskRef, TaskSpec
from daskflow.runtime.fanout import FIXED_SHARE, BatchSizer, Fanout, batch_chains, \
    in_batches, journal_state, may_batch
from daskflow.steps import StepPlan

from .test_walk import SHAPES

pytestmark = pytest.mark.fast


def plan(graph: FlowGraph, name: str, **kwargs) -> StepPlan:
    return StepPlan(name, graph[name], graph, **kwargs)


def batchable(graph: FlowGraph, step: str, own_cluster: bool = False, gang: bool = False,
              **plan_options) -> bool:
    """Whether the splits of ``step`` are batched, the step as given, every other plain."""
    def may(name: str) -> bool:
        if name != step:
            return may_batch(plan(graph, name), False, False)
        return may_batch(plan(graph, name, **plan_options), own_cluster, gang)
    return step in batch_chains(graph, may)


def test_only_splits_going_to_their_join_on_the_default_cluster_are_batched(flow_graph):
    graph = flow_graph("foreach.py")
    assert batchable(graph, "work", own_cluster=False, gang=False)
    assert not batchable(graph, "work", own_cluster=True, gang=False)
    assert not batchable(graph, "work", own_cluster=False, gang=True)
    assert not batchable(graph, "work", timeout=5.0)
    assert not batchable(graph, "work", may_grow=True)  # may move
    with dask.config.set({"daskflow.run.batching": False}):
        assert not batchable(graph, "work")
    nested = flow_graph("nested_foreach.py")
    assert batchable(nested, "inner")
    assert not batchable(nested, "outer")   # itself a foreach
    switches = flow_graph("switch_in_foreach.py")
    for name in ("classify", "halve", "big"):  # a switch; not to the join; not a split
        assert not batchable(switches, name)
    branches = flow_graph("lineage.py")
    assert batchable(branches, "work")
    assert not batchable(branches, "other_more")  # a branch


def test_a_chain_of_steps_up_to_the_join_is_batched_whole_or_not_at_all(flow_graph):
    graph = flow_graph("chain_flow.py")   # start -foreach-> double -> plus_one -> join
    plain = lambda name: may_batch(plan(graph, name), False, False)  # noqa: E731
    assert batch_chains(graph, plain) == {"double": ("plus_one",)}
    # a step of the chain that may not be batched leaves the whole chain unbatched
    for unfit in ({"own_cluster": True}, {"gang": True}):
        assert not batchable(graph, "double", **unfit)
    for options in ({"timeout": 5.0}, {"may_grow": True}):
        assert batch_chains(graph, lambda name: may_batch(
            plan(graph, name, **(options if name == "plus_one" else {})), False,
            False)) == {}
    # plus_one looked up in a cache: double's followers wait for its ref
    assert batch_chains(graph, plain, waits=frozenset({"double"})) == {}
    assert batch_chains(graph, plain, waits=frozenset({"plus_one"})) == \
        {"double": ("plus_one",)}   # the join looked up: the chain's last hands a batch
    with dask.config.set({"daskflow.run.batching": False}):
        assert batch_chains(graph, plain) == {}
    # what follows a split is no line to its join: a branch, a switch, a nested foreach
    # (and a loop), each from the walk's shapes: only the plain foreach in them is batched
    for name, batched in (("branch in foreach", {}), ("switch in foreach", {}),
                          ("loop in foreach", {}), ("nested foreach", {"inner": ()}),
                          ("foreach chain", {"a": ("b",)})):
        shape = SHAPES[name].graph(name.replace(" ", "_"))
        assert batch_chains(shape, lambda step: True) == batched, name


def test_only_steps_never_batched_claim_their_attempts_in_their_own_folders(flow_graph):
    """The steps in batches (a batched foreach and the steps its splits go on to) may have
    attempts in batch objects; a task of any other step has all of its in its folder,
    so its claim looks nowhere else (TaskSpec.own_folder)."""
    graph = flow_graph("chain_flow.py")   # start -foreach-> double -> plus_one -> join
    chains = batch_chains(graph, lambda name: may_batch(plan(graph, name), False, False))
    assert in_batches(chains) == {"double", "plus_one"}
    assert in_batches(batch_chains(flow_graph("foreach.py"), lambda name: True)) == {"work"}
    with dask.config.set({"daskflow.run.batching": False}):
        assert in_batches(batch_chains(graph, lambda name: True)) == frozenset()


def test_batches_grow_while_splits_are_short_and_shrink_to_a_share_at_the_end():
    sizer = BatchSizer(target=0.15, workers=2, most=1000)
    assert sizer.next_size(10_000) == 2                  # what a split costs is not known yet
    sizer.measured(splits=2, seconds=0.002)
    assert sizer.next_size(10_000) == 8                  # at most fourfold per batch
    for _ in range(5):
        sizer.measured(splits=sizer.size, seconds=0.001 * sizer.size)
    assert sizer.next_size(10_000) == 150                # what fits the target
    assert sizer.next_size(400) == 100                   # an even share per worker at the end
    assert sizer.next_size(100) == 37                    # but a quarter target's worth at least
    assert sizer.next_size(20) == 20
    assert sizer.next_size(1) == 1
    assert sizer.in_flight() == 4


def test_a_split_alone_does_not_keep_batches_of_one():
    """A batch of one split also writes its own records (slow on an object store): its
    time is no measure of the split, so the next batch tries two again."""
    sizer = BatchSizer(target=0.15, workers=2, most=1000)
    sizer.measured(splits=2, seconds=0.2)
    assert sizer.next_size(10_000) == 1
    sizer.measured(splits=1, seconds=0.1)
    assert sizer.next_size(10_000) == 2
    sizer.measured(splits=1, seconds=0.2)                # as long as the target: alone
    assert sizer.next_size(10_000) == 1


def test_batches_grow_until_their_own_cost_is_a_small_share_of_them():
    """A batch's look and write (requests on an object store) count in its goal: where
    they take long, batches grow past the target; where they are quick, the target stays."""
    store = BatchSizer(target=0.15, workers=2, most=10_000)
    disk = BatchSizer(target=0.15, workers=2, most=10_000)
    for _ in range(8):
        store.measured(splits=store.size, seconds=0.001 * store.size, fixed=0.02)
        disk.measured(splits=disk.size, seconds=0.001 * disk.size, fixed=0.001)
    assert disk.goal == 0.15 and disk.next_size(100_000) == 150
    assert store.goal == pytest.approx(0.02 / FIXED_SHARE)
    assert store.next_size(100_000) == int(store.goal / 0.001)
    assert store.next_size(4_000) >= store.goal / 4 / 0.001   # the end's share: a quarter


def test_on_a_slow_store_splits_longer_than_the_target_still_share_a_batch():
    """Where a batch's own requests take long (an object store answering slowly), a split
    of a second is short beside the goal: batched, and its records written with the
    others'; a split as long as half the goal runs alone."""
    store = BatchSizer(target=0.15, workers=8, most=1000)
    store.measured(splits=2, seconds=2.0, fixed=0.5)          # the goal: 50 s
    assert store.next_size(2_000) == 8                        # fourfold, no more
    store.measured(splits=1, seconds=1.0)                     # alone: a bound, not a measure
    assert store.next_size(2_000) == 8
    store.measured(splits=8, seconds=8 * 60.0)                # each as long as the goal
    assert store.next_size(2_000) == 1
    disk = BatchSizer(target=0.15, workers=8, most=1000)
    disk.measured(splits=2, seconds=2.0, fixed=0.001)
    assert disk.next_size(2_000) == 1


def test_splits_as_long_as_half_the_target_run_alone():
    sizer = BatchSizer(target=0.15, workers=4, most=1000)
    sizer.measured(splits=2, seconds=0.2)
    assert sizer.next_size(10_000) == 1
    capped = BatchSizer(target=10.0, workers=1, most=3)
    capped.measured(splits=2, seconds=0.0)
    assert capped.next_size(100) == 3                    # daskflow.run.batch-max


def specs(indices: list[int], width: int = 20) -> list[TaskSpec]:
    return [TaskSpec("work", str(i + 2), (ForeachFrame("start", "1", 0, i, width),))
            for i in indices]


PARENT = TaskRef("start", "1", 0, {}, (), 20)


def test_a_fanout_keeps_enough_batches_in_flight_and_no_more():
    fanout = Fanout("work", PARENT, specs(list(range(20))), BatchSizer(0.15, 1, 100))
    assert fanout.name == "fanout-2"
    first = fanout.next_batches()
    assert [[s.task_id for s in b] for b in first] == [["2", "3"], ["4", "5"]]
    assert fanout.next_batches() == []                   # two in flight for one worker
    fanout.finished(splits=2, seconds=0.0002)
    [bigger] = fanout.next_batches()
    assert len(bigger) == 8 and not fanout.done


def test_a_batch_holds_consecutive_splits_only():
    # splits reused on resume leave holes: the join orders a batch by its first index
    fanout = Fanout("work", PARENT, specs([0, 1, 2, 5, 6, 9]), BatchSizer(0.15, 8, 100))
    fanout.sizer.size = 10
    batches = fanout.next_batches()
    assert [[s.frames[-1].index for s in b] for b in batches] == [[0], [1], [2], [5], [6], [9]]
    fanout = Fanout("work", PARENT, specs([0, 1, 2, 5, 6, 9]), BatchSizer(0.15, 1, 100))
    fanout.sizer.size = 10
    fanout.sizer.workers = 1
    assert [[s.frames[-1].index for s in b] for b in fanout.next_batches()] == \
        [[0, 1, 2], [5, 6]]


def test_a_batch_that_failed_otherwise_runs_again_split_by_split_a_failed_split_fails():
    fanout = Fanout("work", PARENT, specs([0, 1, 2]), BatchSizer(0.15, 1, 100))
    one, two = fanout.next_batches()
    assert fanout.returned(one, OSError("Worker tcp://127.0.0.1:4001 lost")) is True
    failed = TaskFailed("/".join(["F", "1", "work", "4"]), "ValueError", "no", "")
    assert fanout.returned(two, failed) is False
    assert fanout.done
    cancelled = Fanout("work", PARENT, specs([0]), BatchSizer(0.15, 1, 100))
    [batch] = cancelled.next_batches()
    assert cancelled.returned(batch, None) is False      # cancelled: the run is ending


KILLED = Death(causes.WORKER_LOST, "it was killed by signal 9 (SIGKILL)")


def started(task_id: str, attempt: int = 0) -> tuple[str, dict]:
    return ("s", {"task_id": task_id, "attempt": attempt,
                  "start": {"started_at": 1.0, "pid": 4242, "frames": [], "parents": []}})


def ended(task_id: str, attempt: int = 0, status: str = "ok") -> tuple[str, dict]:
    return ("e", {"task_id": task_id, "attempt": attempt, "start": {},
                  "done": {"status": status, "attempt": attempt}})


def test_a_journal_says_what_ended_and_what_was_running():
    notes = [started("2"), ended("2"), started("3"), ended("3", status="failed"),
             started("3", 1)]
    entries, running = journal_state(notes)
    assert [(e["task_id"], e["attempt"]) for e in entries] == [("2", 0), ("3", 0)]
    assert (running["task_id"], running["attempt"]) == ("3", 1)
    assert journal_state([started("2"), ended("2")])[1] is None


def test_a_batch_lost_with_its_worker_keeps_what_it_finished_and_counts_the_running_split():
    fanout = Fanout("work", PARENT, specs(list(range(20))), BatchSizer(0.15, 1, 100))
    fanout.sizer.size = 4
    batch = fanout.next_batches()[0]
    assert [s.task_id for s in batch] == ["2", "3", "4", "5"]
    notes = [started("2"), ended("2"), started("3"), ended("3"), started("4")]
    loss = fanout.lost(batch, notes, KILLED)
    assert loss.finished.task_ids == ("2", "3") and loss.finished.attempts == (0, 0)
    assert loss.dead["task_id"] == "4" and loss.dead["done"]["cause"] == causes.WORKER_LOST
    assert "(pid 4242) running it died during attempt 0: it was killed by signal 9" in \
        loss.dead["done"]["error"]["message"]
    assert [(e["task_id"], e["attempt"]) for e in loss.entries["work"]] == \
        [("2", 0), ("3", 0), ("4", 0)]
    assert loss.alone == []
    # the running split and those not started are batched again, first
    assert [s.task_id for s in fanout.pending][:2] == ["4", "5"]
    again = fanout.next_batches()[0]
    assert again[0].task_id == "4" and fanout.key(again, "17") != fanout.key(again, "17")


def test_a_chain_batch_lost_with_its_worker_counts_the_step_that_was_running():
    # each split runs work then more: more's task ids start at 22 (split i: 22 + i)
    fanout = Fanout("work", PARENT, specs(list(range(20))), BatchSizer(0.15, 1, 100),
                    chain=(("more", 22),))
    fanout.sizer.size = 4
    batch = fanout.next_batches()[0]
    assert fanout.tasks(batch) == [("work", ["2", "3", "4", "5"]),
                                   ("more", ["22", "23", "24", "25"])]
    of = lambda step, note: (note[0], {**note[1], "step": step})  # noqa: E731
    notes = [of("work", started("2")), of("work", ended("2")), of("more", started("22")),
             of("more", ended("22")), of("work", started("3")), of("work", ended("3")),
             of("more", started("23"))]
    loss = fanout.lost(batch, notes, KILLED)
    # split 0 finished whole; split 1 finished work, and died in more
    assert (loss.finished.step, loss.finished.task_ids) == ("more", ("22",))
    assert loss.dead["task_id"] == "23" and loss.dead is loss.entries["more"][-1]
    assert {step: [e["task_id"] for e in entries] for step, entries in loss.entries.items()} \
        == {"work": ["2", "3"], "more": ["22", "23"]}
    assert all("step" not in e for entries in loss.entries.values() for e in entries)
    assert loss.entries["more"][-1]["done"]["cause"] == causes.WORKER_LOST
    # split 1 goes again from its first step: its work's stored result stands there
    assert [s.task_id for s in fanout.pending][:3] == ["3", "4", "5"]


def test_a_batch_with_nothing_uncommitted_is_batched_again_whole():
    fanout = Fanout("work", PARENT, specs([0, 1]), BatchSizer(0.15, 1, 100))
    [batch, _] = fanout.next_batches()
    loss = fanout.lost(batch, [], KILLED)  # the nanny said it ended, no journal: not started
    assert loss.entries == {} and loss.finished is None and loss.dead is None
    assert [s.task_id for s in fanout.pending] == ["2"]


def test_a_batch_nothing_is_known_of_runs_again_split_by_split():
    fanout = Fanout("work", PARENT, specs([0, 1, 2, 3]), BatchSizer(0.15, 1, 100))
    fanout.sizer.size = 2
    batch, other = fanout.next_batches()
    loss = fanout.lost(batch, None, KILLED)  # the nanny died too: no journal, no exit code
    assert [s.task_id for s in loss.alone] == ["2", "3"]
    assert [s.task_id for s in fanout.pending] == ["5"]  # never in this batch: as it was


def test_the_dead_entry_of_a_batch_keeps_what_reached_its_descriptors(tmp_path):
    import socket

    from daskflow.runtime.attempts import keep_dead_output
    spool = str(tmp_path / "scratch-1")   # a batch thread's scratch files, as named
    (tmp_path / "scratch-1.fd2").write_text("Fatal Python error: Segmentation fault\n"
                                            "  File \"flow.py\", line 9 in work\n")
    (tmp_path / "scratch-1.fd1").write_text("made it this far\n")
    here = {"spool": spool, "host": socket.gethostname(), "pid": None}  # its process gone
    entry = {"task_id": "4", "attempt": 0, "start": here}
    keep_dead_output(entry)
    assert entry["stdout"] == "made it this far\n"
    assert entry["stderr"].endswith(" in work\nTask failed with a segmentation fault.\n")
    elsewhere = {"task_id": "5", "attempt": 0, "start": {**here, "host": "another-host"}}
    keep_dead_output(elsewhere)   # its spool is on another host: Metaflow's ending only
    assert elsewhere["stderr"] == "Task failed.\n" and "stdout" not in elsewhere


def test_splits_after_reused_ones_carry_their_own_parents_in_batches_and_alone():
    """``resume work`` of ``start -> double -> work``: each split of ``work`` has its
    ``double``'s clone as its parent, in its batch and when sent again one by one."""
    doubles = {spec.task_id: TaskRef("double", str(100 + int(spec.task_id)), 0, {},
                                     spec.frames) for spec in specs(list(range(6)))}
    fanout = Fanout("work", None, specs(list(range(6))), BatchSizer(0.15, 1, 100),
                    each=doubles)
    fanout.sizer.size = 3
    batch, _ = fanout.next_batches()
    assert [[p.task_id for p in plist] for plist in fanout.parents(batch)] == \
        [["102"], ["103"], ["104"]]
    loss = fanout.lost(batch, None, KILLED)   # nothing known: one Dask task a split
    assert fanout.parents(loss.alone) == [[doubles["2"]], [doubles["3"]], [doubles["4"]]]
    plain = Fanout("work", PARENT, specs([0, 1]), BatchSizer(0.15, 1, 100))
    assert plain.parents(specs([0, 1])) == [[PARENT], [PARENT]]
