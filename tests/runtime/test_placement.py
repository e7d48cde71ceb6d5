"""Step clusters decided in-process: which tasks wait for what, which clusters start,
get tasks and close (``StepClusters``; ``ClusterPool`` starts them for real elsewhere)."""

from __future__ import annotations

import pytest

from daskflow.clusters import ResourceRequest
from daskflow.graph import FlowGraph
from daskflow.inputs import ForeachFrame
from daskflow.runtime.context import TaskKey, TaskRef, TaskSpec
from daskflow.runtime.placement import (
    DEFAULT,
    CloseCluster,
    SendTo,
    StartCluster,
    StepClusters,
)
from daskflow.runtime.plan import Placement

pytestmark = pytest.mark.fast

GIB = 2**30
BIG = Placement("local", ResourceRequest(cpu=1, memory=2 * GIB))
SMALL = Placement("local", ResourceRequest(cpu=1, memory=GIB))


PLACEMENTS = {"big": BIG, "big_again": BIG, "work": SMALL}


@pytest.fixture
def graph(flow_graph) -> FlowGraph:
    """start -> big -> big_again -foreach-> work -> join -> end"""
    return flow_graph("resources_flow.py")


def spec(step: str, task_id: str, index: int | None = None) -> TaskSpec:
    frames = () if index is None else (ForeachFrame("big_again", "5", 0, index, 3),)
    return TaskSpec(step, task_id, frames)


def ref(step: str, task_id: str) -> TaskRef:
    return TaskRef(step, task_id, 0, {}, ())


def test_a_task_waits_for_its_parents_ref_then_for_its_cluster(graph):
    clusters = StepClusters(graph, PLACEMENTS)
    parent = TaskKey("start", "1", "7")
    assert clusters.place("big", [spec("big", "2")], [[parent]], BIG) == []
    assert clusters.waits_on("start-1-7")
    [start] = clusters.parent_finished("start-1-7", ref("start", "1"))
    key = f"big:{BIG!r}"
    assert start == StartCluster(key, BIG, 1, "big")
    assert not clusters.waits_on("start-1-7")
    [send] = clusters.cluster_up(key)
    assert send == SendTo(key, "big", [spec("big", "2")], [[ref("start", "1")]])
    [close] = clusters.finished("big", "2")
    assert close == CloseCluster(key) and clusters.up == set()


def test_tasks_for_a_cluster_that_is_up_go_at_once(graph):
    clusters = StepClusters(graph, PLACEMENTS)
    [start] = clusters.place("big", [spec("big", "2")], [[ref("start", "1")]], BIG)
    clusters.cluster_up(start.key)
    [send] = clusters.place("big", [spec("big", "3")], [[ref("start", "1")]], BIG)
    assert send == SendTo(start.key, "big", [spec("big", "3")], [[ref("start", "1")]])
    # without reuse, the next step of the same size starts a cluster of its own
    [other] = clusters.place("big_again", [spec("big_again", "4")], [[ref("big", "2")]], BIG)
    assert isinstance(other, StartCluster) and other.key == f"big_again:{BIG!r}"


def test_adjacent_steps_of_one_size_share_a_cluster_kept_between_them(graph):
    clusters = StepClusters(graph, PLACEMENTS, reuse=True)
    [start] = clusters.place("big", [spec("big", "2")], [[ref("start", "1")]], BIG)
    assert start.key == repr(BIG)
    clusters.cluster_up(start.key)
    # the driver walks on from a finished task before it tells this owner it finished
    [send] = clusters.place("big_again", [spec("big_again", "3")], [[ref("big", "2")]], BIG)
    assert send.cluster == repr(BIG)
    assert clusters.finished("big", "2") == []
    assert clusters.finished("big_again", "3") == [CloseCluster(repr(BIG))]


def test_a_cluster_is_kept_while_the_step_before_its_next_user_runs(graph):
    clusters = StepClusters(graph, PLACEMENTS, reuse=True)
    [start] = clusters.place("big", [spec("big", "2")], [[ref("start", "1")]], BIG)
    clusters.cluster_up(start.key)
    clusters.sent("start", ["9"], DEFAULT)      # an unfinished step right before big
    assert clusters.finished("big", "2") == []
    assert clusters.finished("start", "9") == [CloseCluster(repr(BIG))]


def test_splits_share_one_cluster_a_worker_each_up_to_max_workers(graph):
    clusters = StepClusters(graph, PLACEMENTS, max_workers=2)
    splits = [spec("work", str(i + 6), i) for i in range(3)]
    [start] = clusters.place("work", splits, [[ref("big_again", "5")]] * 3, SMALL)
    assert start.workers == 2
    clusters.cluster_up(start.key)
    assert clusters.finished("work", "6") == [] and clusters.finished("work", "7") == []
    assert clusters.finished("work", "8") == [CloseCluster(start.key)]


def test_splits_sized_per_split_get_a_cluster_per_size_closed_after_its_last(graph):
    clusters = StepClusters(graph, PLACEMENTS)
    [big] = clusters.place("work", [spec("work", "6", 0)], [[ref("big_again", "5")]], BIG)
    [small] = clusters.place("work", [spec("work", "7", 1), spec("work", "8", 2)],
                             [[ref("big_again", "5")]] * 2, SMALL)
    assert big.key != small.key
    clusters.cluster_up(big.key)
    clusters.cluster_up(small.key)
    assert clusters.finished("work", "7") == []
    assert clusters.finished("work", "6") == [CloseCluster(big.key)]
    assert clusters.finished("work", "8") == [CloseCluster(small.key)]


def test_a_gang_gets_a_cluster_of_its_own_a_worker_per_node(graph):
    clusters = StepClusters(graph, PLACEMENTS, gangs=frozenset({"work"}), reuse=True)
    nodes = [spec("work", str(i + 6), i) for i in range(3)]
    [start] = clusters.place("work", nodes, [[ref("big_again", "5")]] * 3, SMALL)
    assert (start.key, start.workers) == ("gang:work", 3)


def test_the_tasks_waiting_for_a_cluster_that_failed_are_told(graph):
    clusters = StepClusters(graph, PLACEMENTS)
    [start] = clusters.place("big", [spec("big", "2")], [[ref("start", "1")]], BIG)
    [waiting] = clusters.cluster_failed(start.key)
    assert (waiting.step, waiting.specs[0].task_id) == ("big", "2")
    assert clusters.cluster_failed(start.key) == []


def test_tasks_on_the_default_cluster_keep_no_step_cluster_up(graph):
    clusters = StepClusters(graph, PLACEMENTS)
    [start] = clusters.place("big_again", [spec("big_again", "3")], [[ref("big", "2")]], BIG)
    clusters.cluster_up(start.key)
    clusters.sent("start", ["4"], DEFAULT)
    assert clusters.finished("big_again", "3") == [CloseCluster(start.key)]
    assert clusters.finished("start", "4") == []
