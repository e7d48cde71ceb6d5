"""The datastore's layout, records, inline refs and orphan sweep: fast, on a temporary folder.

Each test here starts no process and no cluster (``pytest -m fast``); they write real
files in a temporary folder and read them back through the store's layers.
"""

from __future__ import annotations

import doctest
import hashlib
import os

import dask.config
import pytest

from daskflow.datastore import ArtifactRef, ArtifactStore, layout
from daskflow.datastore.artifacts import byte_limit, inline_ref
from daskflow.datastore.layout import Layout
from daskflow.datastore.store import orphan_age
from daskflow.exceptions import ConfigurationError, InvalidNameError

pytestmark = pytest.mark.fast

SHA = "5a" + "0" * 38
CODE_SHA = "c" * 64


# -- every path, as docs/storage.md lists them ------------------------------------------


def test_every_kind_of_file_has_its_documented_path():
    paths = Layout("/base/", "SomeFlow")
    task = "/base/SomeFlow/17/train/3"
    assert {
        "flow": paths.flow,
        "blob": paths.blob(SHA),
        "dask folder": paths.blob("dd/0123abcd"),
        "manifest": paths.frame_file("dd/0123abcd", layout.MANIFEST),
        "partition": paths.frame_file("dd/0123abcd", layout.partition_file(12)),
        "code": paths.code(layout.code_key(CODE_SHA)),
        "run record": paths.run_record("17"),
        "report": paths.report("17"),
        "index": paths.index(),
        "comparison": paths.comparison("17", "18"),
        "step": paths.step("17", "train"),
        "batches": paths.batches("17", "train"),
        "batch object": paths.batch("17", "train", "3-9.ab12cd34.json"),
        "start": paths.start("17", "train", "3", 0),
        "stdout": paths.log("17", "train", "3", 1, "stdout"),
        "stderr": paths.log("17", "train", "3", 1, "stderr"),
        "foreach": paths.foreach("17", "train", "3", 2),
        "done": paths.done("17", "train", "3", 0),
        "performance": paths.task_file("17", "train", "3", layout.performance_file(0)),
        "card index": paths.task_file("17", "train", "3", layout.card_index_file(0)),
        "card page": paths.task_file("17", "train", "3", layout.card_page_file(0, 2)),
        "run-relative": paths.in_run("17", layout.in_run("train", "3", "0.performance.html")),
    } == {
        "flow": "/base/SomeFlow",
        "blob": f"/base/SomeFlow/_data/5a/{SHA}",
        "dask folder": "/base/SomeFlow/_data/dd/0123abcd",
        "manifest": "/base/SomeFlow/_data/dd/0123abcd/_daskflow.json",
        "partition": "/base/SomeFlow/_data/dd/0123abcd/part.000012.parquet",
        "code": f"/base/SomeFlow/_code/{CODE_SHA}.tar.gz",
        "run record": "/base/SomeFlow/17/_run.json",
        "report": "/base/SomeFlow/17/_report.html",
        "index": "/base/SomeFlow/_index.html",
        "comparison": "/base/SomeFlow/_compare/17-vs-18.html",
        "step": "/base/SomeFlow/17/train",
        "batches": "/base/SomeFlow/17/train/_batches",
        "batch object": "/base/SomeFlow/17/train/_batches/3-9.ab12cd34.json",
        "start": f"{task}/0.start.json",
        "stdout": f"{task}/1.stdout",
        "stderr": f"{task}/1.stderr",
        "foreach": f"{task}/2.foreach",
        "done": f"{task}/0.done.json",
        "performance": f"{task}/0.performance.html",
        "card index": f"{task}/0.cards.json",
        "card page": f"{task}/0.card-2.html",
        "run-relative": f"{task}/0.performance.html",
    }


def test_names_are_parsed_back():
    assert layout.attempt_of_start("12.start.json") == 12
    assert [layout.attempt_of_start(n) for n in ("12.done.json", "x.start.json",
                                                 "1.start.json.tmp-ab12cd34")] == [None] * 3
    name = layout.batch_object(["12", "4", "9"])
    assert name.startswith("4-12.") and name.endswith(".json")
    assert layout.batch_range(name) == (4, 12)
    assert layout.batch_range("4-12.json") == (4, 12)  # as older readers took it
    assert [layout.batch_range(n) for n in ("4-x.json", "a-12.1.json", f"{name}.tmp-1a2b",
                                            ".DS_Store")] == [None] * 4
    assert layout.new_dask_key().startswith("dd/") and layout.new_dask_key() != \
        layout.new_dask_key()


@pytest.mark.parametrize("build", [
    lambda p: p.run("../../outside"),
    lambda p: p.step("17", ".."),
    lambda p: p.task("17", "train", "3/../../4"),
    lambda p: p.task_file("17", "train", "3", "../../_run.json"),
    lambda p: p.blob("../../etc"),
    lambda p: p.blob("dd/../../x"),
    lambda p: p.blob("xx/abc"),
    lambda p: p.code("../_code/x.tar.gz"),
    lambda p: p.code("_code/../../x"),
    lambda p: p.batch("17", "train", "../../17/_run.json"),
    lambda p: p.in_run("17", "../16/train/3/0.stdout"),
    lambda p: p.in_run("17", "/etc/passwd"),
], ids=["run", "step", "task", "task file", "blob", "dask key", "other key", "code",
        "code traversal", "batch object", "run-relative", "absolute"])
def test_no_name_reaches_outside_its_place(build):
    with pytest.raises(InvalidNameError):
        build(Layout("/base", "SomeFlow"))


def test_the_layout_docstring_example_holds():
    from daskflow.datastore import layout as module
    assert doctest.testmod(module).failed == 0


# -- what the store writes lands where the layout says -----------------------------------


def _tree(root) -> set[str]:
    return {os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")
            for folder, _, names in os.walk(root) for name in names}


def test_the_store_writes_every_kind_of_file_where_the_layout_puts_it(tmp_path):
    store = ArtifactStore(str(tmp_path), "SomeFlow")
    run_id = store.new_run_id()
    store.write_run(run_id, {"status": "running"})
    store.runs.write_report(run_id, "<html></html>")
    ref = store.put_artifact(list(range(100)), "xs")
    key = store.blobs.put_code(CODE_SHA, b"archive")
    attempt = store.claim_attempt(run_id, "start", "1", {})
    store.write_log(run_id, "start", "1", attempt, "stdout", "hello\n")
    store.write_log(run_id, "start", "1", attempt, "stderr", "")  # nothing: empty
    store.write_foreach_items(run_id, "start", "1", attempt, ["a", "b"], "letters")
    relative = store.write_task_file(run_id, "start", "1", layout.performance_file(attempt),
                                     b"<html>")
    store.write_task_file(run_id, "start", "1", layout.card_page_file(attempt, 0), b"card")
    store.write_done(run_id, "start", "1", attempt, {"status": "ok"})
    batch = store.batched(run_id, "work", ["2", "3"])
    for task_id in ("2", "3"):
        batch.write_done(run_id, "work", task_id,
                         batch.claim_attempt(run_id, "work", task_id, {}), {"status": "ok"})
    batch.commit()

    batch_objects = os.listdir(tmp_path / "SomeFlow" / run_id / "work" / "_batches")
    assert len(batch_objects) == 1 and batch_objects[0].startswith("2-3.")
    r, t = run_id, f"{run_id}/start/1"
    assert _tree(tmp_path / "SomeFlow") == {
        f"_data/{ref.sha[:2]}/{ref.sha}", key, f"{r}/_run.json", f"{r}/_report.html",
        f"{t}/0.start.json", f"{t}/0.stdout", f"{t}/0.foreach", f"{t}/0.performance.html",
        f"{t}/0.card-0.html", f"{t}/0.done.json", "/".join([r, "work", "_batches", batch_objects[0]])}
    assert relative == "start/1/0.performance.html"  # what the task's record keeps
    assert store.runs.file_location(run_id, relative) == str(tmp_path / "SomeFlow" / t /
                                                              "0.performance.html")
    assert store.runs.stored_report(run_id) == store.runs.report_location(run_id)
    assert store.runs.stored_report(store.new_run_id()) is None
    assert store.blobs.read_code(key) == b"archive"
    assert store.blobs.code_url(key) == str(tmp_path / "SomeFlow" / key)


# -- task records: per file, and batched -------------------------------------------------


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(str(tmp_path / "root"), "SomeFlow")


def test_per_file_records_round_trip(store):
    first = store.claim_attempt("1", "train", "4", {"host": "h", "pid": 7})
    store.write_log("1", "train", "4", first, "stderr", "died\n")
    second = store.claim_attempt("1", "train", "4", {"host": "h", "pid": 8})
    store.write_log("1", "train", "4", second, "stdout", "ok\n")
    store.write_done("1", "train", "4", second, {"status": "ok", "artifacts": {}})

    assert (first, second) == (0, 1)
    assert store.list_steps("1") == ["train"] and store.list_tasks("1", "train") == ["4"]
    assert store.list_attempts("1", "train", "4") == [0, 1]
    assert store.read_start("1", "train", "4", 0) == {"host": "h", "pid": 7, "attempt": 0}
    assert store.read_done("1", "train", "4", 0) is None  # died: no done record
    assert store.read_done("1", "train", "4", 1) == {"status": "ok", "artifacts": {}}
    assert store.read_log("1", "train", "4", 0, "stderr") == "died\n"
    assert store.read_log("1", "train", "4", 1, "stderr") == ""
    assert store.stored.file_attempts("1", "train", "4") == {0, 1}
    with pytest.raises(FileNotFoundError):
        store.read_start("1", "train", "4", 2)


def test_batched_records_are_held_until_commit_then_read_as_files(store, tmp_path):
    batch = store.batched("1", "work", ["5", "6"])
    assert batch.defers_records and not store.defers_records
    for task_id in ("5", "6"):
        attempt = batch.claim_attempt("1", "work", task_id, {"started_at": 1.0})
        ref = batch.put_artifact(int(task_id), "n")  # small: inline in the record
        batch.write_log("1", "work", task_id, attempt, "stdout", f"split {task_id}\n")
        batch.write_done("1", "work", task_id, attempt,
                         {"status": "ok", "artifacts": {"n": ref.as_record()}})
    # held: the batch sees them, the datastore has nothing yet
    assert batch.read_done("1", "work", "5", 0)["status"] == "ok"
    assert batch.read_log("1", "work", "6", 0, "stdout") == "split 6\n"
    assert batch.list_attempts("1", "work", "5") == [0]
    assert not (tmp_path / "root").exists()
    batch.commit()

    reader = ArtifactStore(str(tmp_path / "root"), "SomeFlow")
    assert reader.list_tasks("1", "work") == ["5", "6"]
    assert reader.read_start("1", "work", "5", 0) == {"started_at": 1.0, "attempt": 0}
    done = reader.read_done("1", "work", "6", 0)
    assert reader.get_artifact(ArtifactRef(*done["artifacts"]["n"])) == 6
    assert reader.read_log("1", "work", "5", 0, "stdout") == "split 5\n"
    assert not os.path.exists(reader.layout.task("1", "work", "5"))  # no folder of its own
    # a retry that runs alone is numbered after the batch's attempt, in a folder of files
    assert reader.claim_attempt("1", "work", "5", {}) == 1
    assert reader.list_attempts("1", "work", "5") == [0, 1]
    # and a later batch of the same split numbers its attempt after both
    again = reader.batched("1", "work", ["5"])
    assert again.claim_attempt("1", "work", "5", {}) == 2


def test_a_batch_passes_other_steps_records_through(store):
    batch = store.batched("1", "work", ["5"])
    attempt = batch.claim_attempt("1", "start", "1", {})  # not the batch's step
    batch.write_done("1", "start", "1", attempt, {"status": "ok"})
    assert store.read_done("1", "start", "1", 0) == {"status": "ok"}  # written at once
    batch.commit()  # holds nothing: writes nothing
    assert not os.path.exists(store.layout.batches("1", "work"))


def test_both_kinds_of_records_are_one_interface(store):
    from daskflow.datastore import TaskRecords
    from daskflow.datastore.batch_records import BatchRecords

    assert isinstance(store.records, TaskRecords)
    assert isinstance(store.batched("1", "work", ["2"]).records, BatchRecords)
    assert issubclass(BatchRecords, TaskRecords)
    assert not TaskRecords.__abstractmethods__ - set(vars(BatchRecords))


# -- inline references -------------------------------------------------------------------


def test_small_values_travel_inline_and_big_ones_as_blobs(store):
    small = inline_ref({"a": [1, 2, 3]})
    assert small is not None and small.as_record() == list(small)
    assert small.sha == hashlib.sha1(__import__("base64").b64decode(small.inline)).hexdigest()
    assert store.get_artifact(small, "a") == {"a": [1, 2, 3]}
    assert inline_ref("x" * 5000) is None                 # over the default 1 KiB
    assert inline_ref(list(range(1000))) is None          # a long list is not even tried
    with dask.config.set({"daskflow.datastore.inline-limit": 0}):
        assert inline_ref(1) is None
    with dask.config.set({"daskflow.datastore.inline-limit": "64KiB"}):
        assert inline_ref("x" * 5000) is not None
    blob = store.put_artifact({"a": [1, 2, 3]}, "a")
    assert blob.inline is None and len(blob.as_record()) == 4  # records keep their shape
    assert store.blobs.exists(blob.sha)


def test_a_bad_inline_limit_is_a_clear_error():
    assert byte_limit("1KiB") == 1024 and byte_limit(None) == 0
    with pytest.raises(ConfigurationError, match="inline-limit is 'lots': give a size"):
        byte_limit("lots")


# -- the orphan sweep (what it removes: tests/datastore/test_store_faults.py) --------------


def test_the_orphan_age_setting():
    assert orphan_age() == 3600  # the shipped default, "1 hour"
    assert orphan_age(30) == 30 and orphan_age("2 minutes") == 120
    with dask.config.set({"daskflow.datastore.orphan-age": None}):
        assert orphan_age() is None
    with pytest.raises(ConfigurationError, match="orphan-age is 'soon': give a duration"):
        orphan_age("soon")


def test_the_probe_is_there_only_while_it_is_looked_for(tmp_path):
    from daskflow.datastore.files import probe

    with probe(str(tmp_path / "root")) as marker:
        assert os.path.basename(marker).startswith(layout.PROBE_MARK)
        assert os.path.dirname(marker) == str(tmp_path / "root")
        assert os.path.exists(marker)
    assert os.listdir(tmp_path / "root") == []
