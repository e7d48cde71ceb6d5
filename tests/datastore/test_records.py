"""The datastore's records: atomic, content-addressed, attempt-numbered."""

from __future__ import annotations

import os

import pytest

from daskflow.datastore import ArtifactStore
from daskflow.exceptions import ArtifactError

pytestmark = pytest.mark.fast  # no process, no cluster: files in a temporary folder


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(str(tmp_path / "root"), "SomeFlow")


def test_same_value_is_stored_once(store, tmp_path):
    first = store.put_artifact({"a": [1, 2, 3]}, "x")
    second = store.put_artifact({"a": [1, 2, 3]}, "y")
    assert first.sha == second.sha
    blobs = [f for _, _, files in os.walk(tmp_path / "root" / "SomeFlow" / "_data")
             for f in files]
    assert len(blobs) == 1
    assert store.get_artifact(first) == {"a": [1, 2, 3]}


def test_writes_leave_no_temporary_files(store, tmp_path):
    store.put_artifact(list(range(1000)), "x")
    store.write_run("1", {"status": "running"})
    names = [f for _, _, files in os.walk(tmp_path) for f in files]
    assert not [n for n in names if ".tmp-" in n]


def test_unpicklable_artifact_names_the_artifact(store):
    import threading
    with pytest.raises(ArtifactError, match="Artifact 'lock' \\(lock\\) cannot be stored"):
        store.put_artifact(threading.Lock(), "lock")


def test_corrupt_and_missing_artifacts_are_clear_errors(store):
    ref = store.put_artifact([1, 2], "numbers")
    path = store.blobs.path(ref.sha)
    with open(path, "wb") as f:
        f.write(b"not a pickle")
    with pytest.raises(ArtifactError, match=f"Artifact 'numbers' at {path} cannot be loaded"):
        store.get_artifact(ref, "numbers")
    os.remove(path)
    with pytest.raises(ArtifactError, match="Artifact 'numbers' is missing"):
        store.get_artifact(ref, "numbers")


def test_attempts_are_claimed_in_order(store):
    assert store.claim_attempt("1", "train", "3", {}) == 0
    assert store.claim_attempt("1", "train", "3", {}) == 1
    assert store.list_attempts("1", "train", "3") == [0, 1]


def test_a_settled_runs_task_folder_is_listed_once_for_its_attempts_and_its_files(
        store, monkeypatch):
    listed = []
    real = store.stored.files.listdir
    monkeypatch.setattr(store.stored.files, "listdir",
                        lambda path: listed.append(path) or real(path))
    assert store.claim_attempt("1", "train", "3", {}) == 0
    # a run that goes on: each look lists the folder, a new attempt is seen
    assert store.list_attempts("1", "train", "3") == [0]
    assert store.claim_attempt("1", "train", "3", {}) == 1
    assert store.list_attempts("1", "train", "3") == [0, 1]
    looks = len(listed)
    # an ended run (the report, a finished run's reader): one listing serves both
    store.stored.settle("1")
    assert store.list_attempts("1", "train", "3") == [0, 1]
    assert {"0.start.json", "1.start.json"} <= store.stored.task_file_names("1", "train", "3")
    assert store.list_attempts("1", "train", "3") == [0, 1]
    assert len(listed) == looks + 1
    # another task, and the same task of another run, are listed for themselves
    assert store.claim_attempt("2", "train", "3", {}) == 0
    assert store.list_attempts("2", "train", "3") == [0]
    assert store.stored.task_file_names("1", "train", "4") == set()


@pytest.mark.parametrize("where", ["folder", "memory"])
def test_a_first_claim_takes_attempt_0_once_and_never_over_another(where, tmp_path):
    """A task whose attempts are all in its own folder claims attempt 0 with no listing;
    a second claim of it (the task run again) finds it taken and the listing way then
    claims the next; a batched view has no first claim."""
    root = str(tmp_path / "root") if where == "folder" else f"memory://first-{tmp_path.name}"
    store = ArtifactStore(root, "SomeFlow")
    record = {"pid": 1}
    assert store.claim_first("1", "end", "9", record) and record["attempt"] == 0
    assert not store.claim_first("1", "end", "9", {"pid": 2})
    assert store.read_start("1", "end", "9", 0)["pid"] == 1   # the first claim's, kept
    assert store.claim_attempt("1", "end", "9", {"pid": 2}) == 1
    assert store.list_attempts("1", "end", "9") == [0, 1]
    assert not store.batched("1", "work", ["4"]).claim_first("1", "work", "4", {})
    # two claims with the same fields are two claims (a token of each claim's own)
    assert [store.claim_attempt("1", "end", "5", {"pid": 9}) for _ in range(3)] == [0, 1, 2]
    assert store.read_start("1", "end", "5", 1) == {"pid": 9, "attempt": 1}


def test_foreach_items_are_read_one_by_one(store):
    items = [{"i": i, "payload": "x" * i} for i in range(50)]
    store.write_foreach_items("1", "start", "1", 0, items, "items")
    assert store.read_foreach_item("1", "start", "1", 0, 37) == items[37]
    assert store.read_foreach_item("1", "start", "1", 0, 0) == items[0]
    with pytest.raises(IndexError):
        store.read_foreach_item("1", "start", "1", 0, 50)


def test_run_ids_are_unique_and_ordered(store):
    ids = [store.new_run_id() for _ in range(20)]
    assert len(set(ids)) == 20
    assert ids == sorted(ids, key=int)


def test_any_fsspec_url_works(tmp_path):
    memory = ArtifactStore("memory://daskflow-test", "SomeFlow")
    ref = memory.put_artifact("hello", "x")
    assert memory.get_artifact(ref) == "hello"
    run_id = memory.new_run_id()
    memory.write_run(run_id, {"status": "ok"})
    assert memory.read_run(run_id) == {"status": "ok"}
    assert memory.list_runs() == [run_id]
