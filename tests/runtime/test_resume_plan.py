"""ResumePlan against a real store on disk: what it clones from batch objects and from
task folders, and how the clones are written (issue 31). No process, no cluster."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from daskflow.datastore import ArtifactStore
from daskflow.graph import FlowGraph
from daskflow.inputs import ForeachFrame
from daskflow.runtime.context import TaskRef, TaskSpec
from daskflow.runtime.resume import ResumePlan

pytestmark = pytest.mark.fast

sys.path.insert(0, str(Path(__file__).parent.parent / "flows"))
from batch_flow import BatchFlow  # noqa: E402


def split_entry(task_id: int, index: int, attempt: int = 0, status: str = "ok") -> dict:
    done = {"attempt": attempt, "status": status, "parents": ["start/1"], "host": "h",
            "started_at": 10.0 + index, "frames": [["start", "1", 0, index, 6]],
            "artifacts": {"out": [f"{index:040x}", "pickle", "int", 5],
                          "items": ["f" * 40, "pickle", "list", 99]}}
    return {"task_id": str(task_id), "attempt": attempt, "start": {"attempt": attempt},
            "done": done, "stdout": f"split {index}\n"}


@pytest.fixture
def origin(tmp_path):
    """An origin run: start (alone), splits 0-4 in two batch objects (split 1 failed
    once, then passed in the same batch), split 5 alone and failed, the join failed."""
    store = ArtifactStore(str(tmp_path), "BatchFlow")
    start = {"attempt": 0, "status": "ok", "frames": [], "num_splits": 6,
             "artifacts": {"items": ["f" * 40, "pickle", "list", 99]}}
    store.claim_attempt("1", "start", "1", {})
    store.write_done("1", "start", "1", 0, start)
    store.write_log("1", "start", "1", 0, "stdout", "started\n")
    store.write_foreach_items("1", "start", "1", 0, list(range(6)), "items")
    store.stored.write_batch("1", "work", [split_entry(2, 0), split_entry(3, 1, 0, "failed"),
                                           split_entry(3, 1, 1), split_entry(4, 2)])
    store.stored.write_batch("1", "work", [split_entry(5, 3), split_entry(6, 4)])
    store.claim_attempt("1", "work", "7", {})
    store.write_done("1", "work", "7", 0, {**split_entry(7, 5)["done"], "status": "failed"})
    return store


def test_clones_come_from_batch_objects_and_folders_and_are_written_as_objects(origin,
                                                                               tmp_path):
    plan = ResumePlan(origin, FlowGraph.from_class(BatchFlow), "1", "2", {})
    [start] = plan.reuse([TaskSpec("start", "1")], [()])
    assert start.num_splits == 6 and "items" in start.artifacts
    specs = [TaskSpec("work", str(2 + i), (ForeachFrame("start", "1", 0, i, 6),))
             for i in range(6)]
    refs = plan.reuse(specs, [(start,)] * len(specs))
    assert [ref is not None for ref in refs] == [True] * 5 + [False]   # 5 failed
    assert plan.reuse([TaskSpec("work", "8", specs[5].frames)], [(start,)]) == [None]

    reader = ArtifactStore(str(tmp_path), "BatchFlow")
    assert reader.read_log("2", "start", "1", 0, "stdout") == "started\n"
    assert reader.read_foreach_item("2", "start", "1", 0, 4) == 4   # its items, copied
    for index in range(5):
        task_id = str(2 + index)
        done = reader.read_done("2", "work", task_id, 0)
        origin_id = 3 if index == 1 else 2 + index
        assert done["clone_of"] == "/".join(["BatchFlow", "1", "work", str(origin_id)])
        assert (done["attempt"], done["status"], done["parents"]) == (0, "ok", ["start/1"])
        assert done["frames"] == [["start", "1", 0, index, 6]]
        assert done["artifacts"]["out"][0] == f"{index:040x}"
        assert done["artifacts"]["items"][0] == "f" * 40
        assert reader.read_start("2", "work", task_id, 0)["clone_of"] == done["clone_of"]
        assert reader.read_log("2", "work", task_id, 0, "stdout") == f"split {index}\n"
        assert reader.list_attempts("2", "work", task_id) == [0]
    folder = tmp_path / "BatchFlow" / "2" / "work"
    assert [p.name for p in folder.iterdir()] == ["_batches"]
    assert len(list((folder / "_batches").iterdir())) == 2   # one per origin object


def test_a_join_is_cloned_when_its_inputs_were_cloned_in_batches(origin):
    from daskflow.runtime.context import SplitBatch
    plan = ResumePlan(origin, FlowGraph.from_class(BatchFlow), "1", "2", {})
    [start] = plan.reuse([TaskSpec("start", "1")], [()])
    plan.reuse([TaskSpec("work", str(2 + i), (ForeachFrame("start", "1", 0, i, 6),))
                for i in range(5)], [(start,)] * 5)
    cloned = SplitBatch("work", ("2", "3", "4"), (0, 0, 0), 0.0)
    ran = SplitBatch("work", ("7",), (0,), 0.0)
    assert plan._is_clone(cloned) and not plan._is_clone(ran)
    assert plan._is_clone(start) and not plan._is_clone(TaskRef("work", "7", 0, {}, ()))
