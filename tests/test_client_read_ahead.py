"""The client reading a step's tasks one after another on an object store: what it read of
one task (its record, an artifact) is read for the next tasks ahead, in threads, in the
direction the reads go; values are the same, each read is made once, a task asked for one
attempt reads for itself, and a local folder reads in the caller's thread."""

from __future__ import annotations

import threading
import uuid

import dask.config
import pytest

from daskflow import Step, Task
from daskflow.datastore import ArtifactStore

pytestmark = pytest.mark.fast  # no process, no cluster: fsspec's in-memory store

N = 60


def stored_step(root: str) -> None:
    """A run whose step ``each`` ran N tasks alone (a folder each), two attempts of task 5."""
    store = ArtifactStore(root, "ReadFlow")
    store.write_run("1", {"status": "success", "tags": [], "user": "someone"})
    for i in range(1, N + 1):
        for attempt in range(2 if i == 5 else 1):
            claimed = store.claim_attempt("1", "each", str(i), {"started_at": 1.0})
            refs = {"out": store.put_artifact(b"o" * 3000 + str(i).encode(), "out").as_record(),
                    "other": store.put_artifact(b"t" * 3000 + str(i).encode(), "o").as_record()}
            store.write_done("1", "each", str(i), claimed, {
                "attempt": claimed, "status": "ok", "artifacts": refs,
                "frames": [["start", "0", 0, i - 1, N]]})


class Reads:
    """Which thread read what, on every store the client makes for ``root``."""

    def __init__(self, monkeypatch) -> None:
        self.by: list[tuple[str, str]] = []
        lock = threading.Lock()
        for method in ("list_attempts", "read_done", "get_artifact"):
            original = getattr(ArtifactStore, method)

            def wrapped(store, *args, _original=original, _method=method):
                with lock:
                    self.by.append((_method, threading.current_thread().name))
                return _original(store, *args)
            monkeypatch.setattr(ArtifactStore, method, wrapped)

    def count(self, method: str, ahead: bool | None = None) -> int:
        return sum(1 for m, t in self.by if m == method and (
            ahead is None or t.startswith("daskflow-client-read-ahead") == ahead))


@pytest.fixture
def root() -> str:
    root = f"memory://client-ahead-{uuid.uuid4().hex[:8]}"
    stored_step(root)
    return root


def value(i: int) -> bytes:
    return b"o" * 3000 + str(i).encode()


def test_a_steps_tasks_read_one_after_another_are_read_ahead(root, monkeypatch) -> None:
    reads = Reads(monkeypatch)
    step = Step("ReadFlow/1/each", _namespace_check=False, _root=root)
    assert sum(len(t.data.out) for t in step) == sum(len(value(i)) for i in range(1, N + 1))
    assert reads.count("get_artifact") == N              # each value read once
    assert reads.count("get_artifact", ahead=True) >= N - 8
    assert reads.count("read_done", ahead=True) >= N - 8  # the records too
    assert reads.count("read_done") <= N + 8
    for _ in range(5):  # more steps read: still the process's 8 threads, not 8 a step
        assert len([t for t in Step("ReadFlow/1/each", _namespace_check=False, _root=root)]) == N
    assert len([t for t in threading.enumerate()
                if t.name.startswith("daskflow-client-read-ahead")]) <= 8


def test_sorted_by_index_then_read_in_that_order(root, monkeypatch) -> None:
    reads = Reads(monkeypatch)
    step = Step("ReadFlow/1/each", _namespace_check=False, _root=root)
    tasks = sorted(step, key=lambda t: t.index)            # down the ids, then up
    assert [t.data.out for t in tasks] == [value(i) for i in range(1, N + 1)]
    assert [t.current_attempt for t in tasks][3:6] == [0, 1, 0]
    assert reads.count("get_artifact", ahead=True) >= N - 16
    assert reads.count("get_artifact") <= N + 8


def test_one_attempt_asked_for_and_a_local_folder_read_in_the_callers_thread(
        root, monkeypatch, tmp_path) -> None:
    reads = Reads(monkeypatch)
    assert Task("ReadFlow/1/each/5", attempt=0, _namespace_check=False,
                _root=root).data.out == value(5)
    local = str(tmp_path / "root")
    stored_step(local)
    with dask.config.set({"daskflow.datastore.read-ahead": 0}):
        step = Step("ReadFlow/1/each", _namespace_check=False, _root=root)
        assert [t.data.out for t in step][-1] == value(1)
    step = Step("ReadFlow/1/each", _namespace_check=False, _root=local)
    assert [t.data.out for t in step][0] == value(N)
    assert reads.count("get_artifact", ahead=True) == 0
    assert reads.count("read_done", ahead=True) == 0


def test_an_artifact_stored_bigger_than_the_bound_is_not_read_ahead(root, monkeypatch) -> None:
    from daskflow.datastore import store as store_module
    monkeypatch.setattr(store_module, "READ_AHEAD_LARGEST", 1000)  # each value is 3 KB
    reads = Reads(monkeypatch)
    step = Step("ReadFlow/1/each", _namespace_check=False, _root=root)
    assert [t.data.out for t in step] == [value(i) for i in range(N, 0, -1)]
    assert reads.count("get_artifact", ahead=True) == 0 and reads.count("get_artifact") == N
    assert reads.count("read_done", ahead=True) >= N - 8   # records are still read ahead


def test_an_artifact_read_ahead_uses_the_record_its_task_already_took(root, monkeypatch):
    """The caller can run ahead of the read-ahead threads (a loaded machine): a task's
    record it took is what that task's artifact read ahead uses, not a second read."""
    from daskflow.client_read_ahead import step_reads
    store = ArtifactStore(root, "ReadFlow")
    reads = step_reads(store, "1", "each", lambda: [str(i) for i in range(1, N + 1)])
    attempts, done = reads.latest("7")           # the caller takes task 7's record
    assert attempts == [0] and done["status"] == "ok"
    counted = Reads(monkeypatch)
    with reads._lock:                           # its record read ahead is gone by now
        reads._ahead.pop(("record", "7", ""), None)
    assert reads._read_artifact("7", "out") == value(7)  # what an ahead thread runs
    # this thread's reads: the read-ahead threads may still be reading the next tasks
    assert counted.count("read_done", ahead=False) == 0 and \
        counted.count("list_attempts", ahead=False) == 0
