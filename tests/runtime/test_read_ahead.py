"""A join over a wide foreach on an object store reads its next inputs ahead: what it read
from one input is loaded for the next ones in threads, the values are the same, a read that
fails ahead is read again by the join, and nothing runs on once the join stops."""

from __future__ import annotations

import threading
import uuid

import dask.config
import pytest

from daskflow.datastore import ArtifactStore
from daskflow.runtime.context import SplitBatch
from daskflow.runtime.join_inputs import JoinInputs

pytestmark = pytest.mark.fast  # no process, no cluster: fsspec's in-memory store

VALUE = b"x" * 4000  # over the inline limit: each split's value is a blob of its own


def value_of(i: int) -> bytes:
    return VALUE + str(i).encode()


def stored_batches(root: str, count: int, per_batch: int = 50) -> list[SplitBatch]:
    store = ArtifactStore(root, "SomeFlow")
    parents = []
    for first in range(0, count, per_batch):
        task_ids = [str(i) for i in range(first, first + per_batch)]
        records = store.batched("1", "work", task_ids)
        for task_id in task_ids:
            attempt = records.claim_attempt("1", "work", task_id, {"started_at": 1.0})
            refs = {"out": records.put_artifact(value_of(int(task_id)), "out").as_record(),
                    "other": records.put_artifact(VALUE * 2, "other").as_record()}
            records.write_done("1", "work", task_id, attempt, {
                "attempt": attempt, "status": "ok", "artifacts": refs,
                "frames": [["start", "1", 0, int(task_id), count]]})
        parents.append(SplitBatch("work", tuple(task_ids), (0,) * per_batch, 0.0, 0.0,
                                  records.commit()))
    return parents


class Reads:
    """Which thread read which artifact of which input, on a reader's store."""

    def __init__(self, store: ArtifactStore, fail_ahead: int = 0) -> None:
        self.by: list[tuple[str, str]] = []
        self.fail_ahead = fail_ahead
        original = store.get_artifact

        def get_artifact(ref, name):
            thread = threading.current_thread().name
            if thread.startswith("daskflow-read-ahead") and self.fail_ahead:
                self.fail_ahead -= 1
                raise OSError("503 SlowDown")
            self.by.append((name, thread))
            return original(ref, name)

        store.get_artifact = get_artifact

    def ahead(self, name: str) -> int:
        return sum(1 for n, t in self.by if n == name and t.startswith("daskflow-read-ahead"))


@pytest.fixture
def root() -> str:
    return f"memory://read-ahead-{uuid.uuid4().hex[:8]}"


def test_what_the_join_read_from_an_input_is_read_ahead_for_the_next(root) -> None:
    parents = stored_batches(root, 200)
    reader = ArtifactStore(root, "SomeFlow")
    reads = Reads(reader)
    inputs = JoinInputs(reader, "1", {}, parents)
    assert [view.out for view in inputs] == [value_of(i) for i in range(200)]
    assert reads.ahead("out") >= 190       # all but the first inputs' were read ahead
    assert reads.ahead("other") == 0       # never read by the join: never read ahead
    assert len(reads.by) == 200            # each read once


def test_a_read_that_fails_ahead_is_read_again_by_the_join(root) -> None:
    parents = stored_batches(root, 100)
    reader = ArtifactStore(root, "SomeFlow")
    reads = Reads(reader, fail_ahead=5)
    assert [view.out for view in JoinInputs(reader, "1", {}, parents)] == \
        [value_of(i) for i in range(100)]
    assert reads.fail_ahead == 0 and len(reads.by) == 100


def test_a_join_that_stops_early_leaves_no_reader_behind(root) -> None:
    parents = stored_batches(root, 100)
    reader = ArtifactStore(root, "SomeFlow")
    for view in JoinInputs(reader, "1", {}, parents):
        if view.out == value_of(10):
            break
    assert not [t for t in threading.enumerate() if t.name.startswith("daskflow-read-ahead")]


def test_a_local_folder_or_read_ahead_0_reads_in_the_join_itself(root, tmp_path) -> None:
    for where, settings in ((str(tmp_path / "root"), {}),
                            (root, {"daskflow.datastore.read-ahead": 0})):
        parents = stored_batches(where, 100)
        reader = ArtifactStore(where, "SomeFlow")
        reads = Reads(reader)
        with dask.config.set(settings):
            assert sum(len(v.out) for v in JoinInputs(reader, "1", {}, parents)) == \
                sum(len(value_of(i)) for i in range(100))
        assert reads.ahead("out") == 0 and len(reads.by) == 100


def test_an_artifact_stored_bigger_than_the_bound_is_not_read_ahead(root, monkeypatch) -> None:
    from daskflow.datastore import store as store_module
    monkeypatch.setattr(store_module, "READ_AHEAD_LARGEST", 1000)  # every value here is 4 KB
    parents = stored_batches(root, 50)
    reader = ArtifactStore(root, "SomeFlow")
    reads = Reads(reader)
    assert [view.out for view in JoinInputs(reader, "1", {}, parents)] == \
        [value_of(i) for i in range(50)]
    assert reads.ahead("out") == 0 and len(reads.by) == 50


def test_a_value_inline_in_its_record_is_not_read_ahead(root) -> None:
    """A trivial split's value travels in its record: there is nothing to read ahead, and
    a thread per input would cost the join more than it saves."""
    store = ArtifactStore(root, "SomeFlow")
    task_ids = [str(i) for i in range(100)]
    records = store.batched("1", "work", task_ids)
    for task_id in task_ids:
        attempt = records.claim_attempt("1", "work", task_id, {"started_at": 1.0})
        ref = records.put_artifact(int(task_id) * 2, "out")
        assert ref.inline is not None
        records.write_done("1", "work", task_id, attempt, {
            "attempt": attempt, "status": "ok", "artifacts": {"out": ref.as_record()},
            "frames": [["start", "1", 0, int(task_id), 100]]})
    parents = [SplitBatch("work", tuple(task_ids), (0,) * 100, 0.0, 0.0, records.commit())]
    reader = ArtifactStore(root, "SomeFlow")
    reads = Reads(reader)
    assert sum(view.out for view in JoinInputs(reader, "1", {}, parents)) == 9900
    assert reads.ahead("out") == 0 and len(reads.by) == 100


def test_the_setting_is_a_whole_number_of_inputs(root, tmp_path) -> None:
    from daskflow.exceptions import ConfigurationError
    store = ArtifactStore(root, "SomeFlow")
    assert store.read_ahead == 8 and ArtifactStore(str(tmp_path), "SomeFlow").read_ahead == 0
    for bad in ("lots", -1, 2.5):
        with dask.config.set({"daskflow.datastore.read-ahead": bad}), \
                pytest.raises(ConfigurationError, match="read-ahead is .*whole number"):
            store.read_ahead
    with dask.config.set({"daskflow.datastore.read-ahead": "3"}):
        assert store.read_ahead == 3
