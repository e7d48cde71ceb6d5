"""The cache index (@cache) and the foreach items' digests, on files in a temporary folder."""

from __future__ import annotations

import json

import pytest

from daskflow.datastore import ArtifactRef, ArtifactStore
from daskflow.datastore.cache_index import decode, encode
from daskflow.datastore.layout import batch_range
from daskflow.datastore.serializers import DASK_PARQUET
from daskflow.exceptions import InvalidNameError

pytestmark = pytest.mark.fast  # no process, no cluster

CODE = "ab" * 32


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(str(tmp_path / "root"), "SomeFlow")


def entry(key: str, run: str = "1", reads=("a:x",)) -> dict:
    return {"key": key, "reads": reads, "items": "", "run": run, "task": key, "attempt": 0,
            "own": {}, "num_splits": None, "next_step": None}


def test_entries_round_trip_with_the_names_read_kept_once_per_object():
    entries = [entry("1", reads=("a:x", "p:alpha")), entry("2", reads=("a:x", "p:alpha")),
               entry("3", reads=())]
    data = encode(entries)
    assert json.loads(data)["reads"] == [["a:x", "p:alpha"], []]
    assert decode(data) == [{**e, "reads": tuple(e["reads"])} for e in entries]
    assert decode(json.dumps({"version": 99, "entries": [{}]}).encode()) == []


def test_each_writer_adds_objects_of_its_own_and_a_reader_reads_each_once(store, tmp_path):
    other = ArtifactStore(str(tmp_path / "root"), "SomeFlow")   # another run, at once
    store.cache.add("work", CODE, [entry("1")])
    other.cache.add("work", CODE, [entry("2"), entry("3")])
    assert sorted(e["key"] for e in store.cache.entries("work", CODE)) == ["1", "2", "3"]
    folder = tmp_path / "root" / "SomeFlow" / "_cache" / "work" / CODE
    assert len(list(folder.iterdir())) == 2
    reads = []
    store.files.read_many = lambda paths, read=store.files.read_many: \
        reads.append(len(paths)) or read(paths)
    other.cache.add("work", CODE, [entry("4")])
    assert len(store.cache.entries("work", CODE)) == 4
    assert reads == [1]             # only the new object was read
    assert store.cache.entries("work", "cd" * 32) == []
    assert store.cache.entries("end", CODE) == []


def test_an_unreadable_object_serves_nothing_and_breaks_nothing(store, tmp_path):
    store.cache.add("work", CODE, [entry("1")])
    folder = tmp_path / "root" / "SomeFlow" / "_cache" / "work" / CODE
    (folder / "12-abc.json").write_text("{not json")
    (folder / "notes.txt").write_text("a stray file")
    assert [e["key"] for e in store.cache.entries("work", CODE)] == ["1"]


def test_a_batch_writes_its_entries_after_its_records_as_one_object(store, tmp_path):
    batch = store.batched("1", "work", ["2", "3"])
    for task in ("2", "3"):
        attempt = batch.claim_attempt("1", "work", task, {})
        batch.write_done("1", "work", task, attempt, {"attempt": attempt, "status": "ok"})
        batch.cache.add("work", CODE, [entry(task)])
    assert store.cache.entries("work", CODE) == []      # held until the batch commits
    batch.commit()
    assert [e["key"] for e in store.cache.entries("work", CODE)] == ["2", "3"]
    folder = tmp_path / "root" / "SomeFlow" / "_cache" / "work" / CODE
    assert len(list(folder.iterdir())) == 1


def test_the_layout_takes_only_names_it_makes(store):
    with pytest.raises(InvalidNameError):
        store.layout.cache_folder("work", "../../etc")
    with pytest.raises(InvalidNameError):
        store.layout.cache_folder("../x", CODE)
    with pytest.raises(InvalidNameError):
        store.layout.cache_object("work", CODE, "x.json")


def test_foreach_item_digests_are_kept_after_the_items_for_cached_splits(store):
    items = ["a", {"b": 1}, "a"]
    store.write_foreach_items("1", "start", "1", 0, items, "v", digests=True)
    digests = store.foreach.digests("1", "start", "1", 0)
    assert len(digests) == 3 and digests[0] == digests[2] != digests[1]
    assert [store.read_foreach_item("1", "start", "1", 0, i) for i in range(3)] == items
    assert list(store.iter_foreach_items("1", "start", "1", 0)) == items
    store.write_foreach_items("1", "start", "2", 0, items, "v")
    assert store.foreach.digests("1", "start", "2", 0) is None     # written without them
    assert store.foreach.digests("1", "start", "3", 0) is None     # no such file
    assert list(store.iter_foreach_items("1", "start", "2", 0)) == items


def test_missing_artifacts_are_found_without_reading_them(store):
    kept = store.put_artifact(list(range(100)), "kept")
    gone = store.put_artifact("x" * 5000, "gone")
    inline = store.put_artifact(3, "small", inline=True)
    store.files.fs.rm(store.blobs.path(gone.sha))
    assert store.artifacts.missing([kept, gone, inline]) == [gone]
    frame = ArtifactRef("dd/" + "0" * 32, DASK_PARQUET, "DataFrame", 1)
    assert store.artifacts.missing([frame]) == [frame]   # no manifest: not there


def test_reused_tasks_are_recorded_together_and_read_as_any_task(store, tmp_path):
    def origin(i: int) -> str:  # the task it came from, in run 1
        return "/".join(["SomeFlow", "1", "work", str(i)])
    tasks = [{"task_id": str(i), "attempt": 0,
              "start": {"attempt": 0, "origin_pathspec": origin(i)},
              "done": {"attempt": 0, "status": "ok", "origin_pathspec": origin(i)}}
             for i in range(2, 2503)]
    store.write_reused("2", "work", tasks)
    folder = tmp_path / "root" / "SomeFlow" / "2" / "work" / "_batches"
    assert len(list(folder.iterdir())) == 3               # a thousand to an object
    reader = ArtifactStore(str(tmp_path / "root"), "SomeFlow")
    assert len(reader.list_tasks("2", "work")) == 2501
    assert reader.read_done("2", "work", "1999", 0)["origin_pathspec"] == origin(1999)


def test_a_split_that_ran_between_reused_ones_is_read_without_reading_theirs(store, tmp_path):
    """One changed item of a thousand: the reused splits' objects stop on each side of
    the one that ran, so its record (which its join reads) is found in its own object."""
    tasks = [{"task_id": str(i), "attempt": 0, "start": {"attempt": 0},
              "done": {"attempt": 0, "status": "ok"}}
             for i in [*range(1001, 1, -1)] if i != 9]   # in any order
    store.write_reused("2", "work", tasks)
    store.stored.write_batch("2", "work", [{"task_id": "9", "attempt": 0,
                                             "start": {"attempt": 0},
                                             "done": {"attempt": 0, "status": "ran"}}])
    folder = tmp_path / "root" / "SomeFlow" / "2" / "work" / "_batches"
    ranges = sorted(batch_range(p.name) for p in folder.iterdir())
    assert ranges == [(2, 8), (9, 9), (10, 1001)]
    reader = ArtifactStore(str(tmp_path / "root"), "SomeFlow")
    assert reader.read_done("2", "work", "9", 0)["status"] == "ran"
    assert len(reader.list_tasks("2", "work")) == 1000


def test_a_split_reads_its_own_items_digest_alone(store):
    items = [{"i": i} for i in range(50)]
    store.write_foreach_items("1", "start", "1", 0, items, "v", digests=True)
    whole = store.foreach.digests("1", "start", "1", 0)
    assert [store.foreach.digest("1", "start", "1", 0, i) for i in range(50)] == whole
    assert store.foreach.digest("1", "start", "1", 0, 50) is None
    store.write_foreach_items("1", "start", "2", 0, items, "v")
    assert store.foreach.digest("1", "start", "2", 0, 3) is None
    assert store.foreach.digest("1", "start", "9", 0, 3) is None


def test_digests_and_the_index_on_an_object_store():
    """memory:// is an fsspec filesystem as s3:// is: whole objects, no local paths."""
    import uuid
    store = ArtifactStore(f"memory://cache-{uuid.uuid4().hex}", "SomeFlow")
    store.write_foreach_items("1", "start", "1", 0, ["a", "b"], "v", digests=True)
    whole = store.foreach.digests("1", "start", "1", 0)
    assert len(whole) == 2 and store.foreach.digest("1", "start", "1", 0, 1) == whole[1]
    store.cache.add("work", CODE, [entry("1")])
    store.cache.add("work", CODE, [entry("2")])
    assert sorted(e["key"] for e in store.cache.entries("work", CODE)) == ["1", "2"]
    kept = store.put_artifact("x" * 5000, "kept")
    assert store.artifacts.missing([kept]) == []
