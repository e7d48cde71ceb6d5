"""Batch objects: the records of many splits in one object, read as per-task files."""

from __future__ import annotations

import os

import pytest

from daskflow.datastore import ArtifactRef, ArtifactStore
from daskflow.runtime.context import SplitBatch
from daskflow.runtime.join_inputs import JoinInputs

pytestmark = pytest.mark.fast  # no process, no cluster: files in a temporary folder


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(str(tmp_path / "root"), "SomeFlow")


def blobs(tmp_path):
    return [f for _, _, files in os.walk(tmp_path / "root" / "SomeFlow" / "_data")
            for f in files]


def write_batch(store, task_ids, step="work", run="1"):
    """Commit records the way a batch of splits does."""
    records = store.batched(run, step, task_ids)
    for task_id in task_ids:
        attempt = records.claim_attempt(run, step, task_id, {"started_at": 1.0})
        ref = records.put_artifact(int(task_id) * 2, "out")
        records.write_log(run, step, task_id, attempt, "stdout", f"hello {task_id}\n")
        records.write_done(run, step, task_id, attempt, {
            "attempt": attempt, "status": "ok", "frames": [["start", "1", 0, int(task_id), 9]],
            "artifacts": {"out": ref.as_record()}})
    return records.commit()


def test_batched_tasks_read_as_per_task_files(store, tmp_path):
    write_batch(store, ["2", "3", "4"])
    assert not blobs(tmp_path)  # small values travel inline in the records
    assert sorted(store.list_tasks("1", "work"), key=int) == ["2", "3", "4"]
    assert store.list_attempts("1", "work", "3") == [0]
    assert store.read_log("1", "work", "3", 0, "stdout") == "hello 3\n"
    assert store.read_log("1", "work", "3", 0, "stderr") == ""
    assert store.read_start("1", "work", "3", 0)["started_at"] == 1.0
    done = store.read_done("1", "work", "3", 0)
    assert done["status"] == "ok"
    from daskflow.datastore import ArtifactRef
    assert store.get_artifact(ArtifactRef(*done["artifacts"]["out"])) == 6
    assert store.read_done("1", "work", "3", 1) is None
    # a later attempt that ran alone is a per-task file, numbered after the batch's
    assert store.claim_attempt("1", "work", "3", {}) == 1
    assert store.list_attempts("1", "work", "3") == [0, 1]
    # a reader that indexed the step before another batch was written still finds it
    reader = ArtifactStore(str(tmp_path / "root"), "SomeFlow")
    assert reader.list_attempts("1", "work", "2") == [0]
    write_batch(store, ["5", "6"])
    assert reader.read_log("1", "work", "6", 0, "stdout") == "hello 6\n"


def test_old_layout_runs_still_read(store):
    """Runs stored before batches: one folder of files per task."""
    attempt = store.claim_attempt("1", "work", "7", {"started_at": 2.0})
    store.write_log("1", "work", "7", attempt, "stdout", "old\n")
    ref = store.put_artifact(5, "out")
    store.write_done("1", "work", "7", attempt, {"status": "ok",
                                                 "artifacts": {"out": ref.as_record()}})
    assert store.list_tasks("1", "work") == ["7"]
    assert store.list_attempts("1", "work", "7") == [0]
    assert store.read_log("1", "work", "7", 0, "stdout") == "old\n"
    assert store.read_done("1", "work", "7", 0)["artifacts"]["out"] == ref.as_record()
    assert len(ref.as_record()) == 4  # blob refs keep today's record shape


def test_inline_only_below_the_limit(store, tmp_path):
    small = store.put_artifact({"a": 1}, "small", inline=True)
    big = store.put_artifact("x" * 5000, "big", inline=True)
    assert small.inline is not None and big.inline is None
    assert blobs(tmp_path) == [big.sha]
    assert store.get_artifact(small) == {"a": 1}
    assert store.put_artifact({"a": 1}, "plain").inline is None  # only when asked


def test_a_join_reads_batched_inputs_in_bulk(store):
    for first in range(0, 1000, 100):
        write_batch(store, [str(i) for i in range(first + 1, first + 101)])
    reader = ArtifactStore(store.root_url, "SomeFlow")
    reads = []
    original = reader.files.read
    reader.files.read = lambda path: reads.append(path) or original(path)
    parents = [SplitBatch("work", tuple(str(i) for i in range(f + 1, f + 101)),
                          (0,) * 100, 0.0) for f in range(0, 1000, 100)]
    inputs = JoinInputs(reader, "1", {}, parents)
    assert len(inputs) == 1000 and not reads  # nothing read until used
    assert sum(view.out for view in inputs) == sum(2 * i for i in range(1, 1001))
    assert len(reads) == 10  # one read per batch object, not one per split
    assert inputs[-1].out == 2000 and inputs[0]._df_task_id == "1"


def test_a_join_takes_the_records_a_batch_handed_over_and_reads_no_object(store):
    """A batch's commit returns its splits' done records packed (what ``execute_batch``
    hands to its join with its result): the join reads none of the batch objects."""
    packed = [write_batch(store, [str(i) for i in range(f + 1, f + 101)])
              for f in range(0, 300, 100)]
    reader = ArtifactStore(store.root_url, "SomeFlow")
    reads = []
    original = reader.files.read
    reader.files.read = lambda path: reads.append(path) or original(path)
    parents = [SplitBatch("work", tuple(str(i) for i in range(f + 1, f + 101)),
                          (0,) * 100, 0.0, 0.0, results)
               for f, results in zip(range(0, 300, 100), packed)]
    inputs = JoinInputs(reader, "1", {}, parents)
    assert sum(view.out for view in inputs) == sum(2 * i for i in range(1, 301))
    assert inputs[150].out == 302 and reads == []
    # a batch whose records the driver did not keep (past its budget): its object is read
    parents[1] = parents[1]._replace(results=None)
    assert sum(view.out for view in JoinInputs(reader, "1", {}, parents)) == \
        sum(2 * i for i in range(1, 301))
    assert len(reads) == 1


def test_a_split_that_ran_alone_hands_its_record_to_the_join(store):
    """A batch of one split runs as a task of its own (its own files); its ref goes to the
    join packed as a batch's records do, so the join reads none of its files."""
    from daskflow.datastore import pack_results
    from daskflow.inputs import ForeachFrame
    from daskflow.runtime.context import TaskRef

    ref = TaskRef("work", "7", 1, {"out": store.put_artifact(b"x" * 5000, "out"),
                                   "small": store.put_artifact(3, "small")},
                  (ForeachFrame("start", "1", 0, 6, 9),), num_splits=None)
    record = ref.as_record()
    assert TaskRef.from_record("work", "7", record, {}) == ref
    results = pack_results([{"task_id": "7", "attempt": 1, "done": record}])
    reader = ArtifactStore(store.root_url, "SomeFlow")
    reads = []
    original = reader.files.read
    reader.files.read = lambda path: reads.append(path) or original(path)
    [view] = JoinInputs(reader, "1", {}, [SplitBatch("work", ("7",), (1,), 0.0, 0.0, results)])
    assert (view.small, view.index, reads) == (3, 6, [])
    assert view.out == b"x" * 5000


def test_readers_in_threads_share_one_index_and_each_gets_its_own_record(store):
    """The run report's pool, resume's and the client's read-ahead read one step in
    threads: the index they share loads each object once, and every task's record is
    its own (an object's entries decoded against another's common part would not be)."""
    from concurrent.futures import ThreadPoolExecutor
    for first in range(1, 2000, 50):
        write_batch(store, [str(i) for i in range(first, first + 50)])
    reader = ArtifactStore(store.root_url, "SomeFlow")
    reads = []
    original = reader.files.read
    reader.files.read = lambda path: reads.append(path) or original(path)

    def out(task_id: int) -> int:
        [attempt] = reader.list_attempts("1", "work", str(task_id))
        done = reader.read_done("1", "work", str(task_id), attempt)
        return reader.get_artifact(ArtifactRef(*done["artifacts"]["out"]), "out")

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(out, range(1, 2000))) == [2 * i for i in range(1, 2000)]
    assert len(reads) == len(set(reads)) == 40   # each object read once


def test_a_batch_object_keeps_what_the_fast_codec_refuses(monkeypatch):
    """Batch objects are coded by orjson where it is installed (a stock worker may lack
    it): what it refuses is written by json, and both read back the same."""
    from daskflow.datastore import batches
    entries = [{"task_id": str(i), "attempt": 0,
                "done": {"status": "ok", "big": 2 ** 70, "ratio": float("nan"),
                         "when": batches, 3: "int key"}} for i in range(3)]
    coded = batches.encode(entries)
    monkeypatch.setattr(batches, "orjson", None)
    plain = batches.encode(entries)
    for raw in (coded, plain):
        back = batches._loads(raw)["entries"]
        assert [e["task_id"] for e in back] == ["0", "1", "2"]
        done = batches.whole(back[0]["done"], batches._loads(raw)["common"].get("done"))
        assert done["big"] == 2 ** 70 and done["ratio"] != done["ratio"]  # NaN
        assert done["when"] == str(batches) and done["3"] == "int key"


def test_each_thread_packs_with_its_own_packer():
    """``packed`` keeps one msgpack packer a thread: threads packing at once each get
    their own value's bytes."""
    from concurrent.futures import ThreadPoolExecutor

    import msgpack

    from daskflow.datastore.batches import packed
    values = [(i, {"task_id": str(i), "done": {"x": "y" * (i % 50)}}) for i in range(4000)]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(packed, values))
    assert got == [msgpack.packb(v) for v in values]


def test_a_step_read_whole_reads_its_objects_together_and_again_what_failed(store, monkeypatch):
    """The run report reads a wide step's batch objects a few at a time, concurrently on
    an object store (``read_many``); one that read fails is read again alone."""
    from daskflow.datastore import batches

    monkeypatch.setattr(batches, "READ_TOGETHER", 2)
    for first in range(2, 12, 2):
        write_batch(store, [str(first), str(first + 1)])
    files = store.stored.step_batches("1", "work").files
    asked = []
    read_many = files.read_many

    def flaky(paths):
        asked.append(len(paths))
        found = read_many(paths)
        found.pop(sorted(found)[0])  # as fsspec's cat(on_error="omit") leaves one out
        return found

    monkeypatch.setattr(files, "read_many", flaky)
    tasks = [task_id for task_id, _ in store.stored.batched_tasks("1", "work", set())]
    assert sorted(tasks, key=int) == [str(n) for n in range(2, 12)]
    assert asked == [2, 2, 1]
