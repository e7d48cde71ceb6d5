"""The datastore under faults: a full disk, orphaned temporary files, stray files, bad names."""

from __future__ import annotations

import errno
import io
import os
import re
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager

import dask.config
import pytest

from daskflow.datastore import ArtifactStore, blobs, files
from daskflow.exceptions import ConfigurationError, DatastoreWriteError, InvalidNameError

# -- a full disk ------------------------------------------------------------------------


class _FillingDisk:
    """Files opened for writing take ``room`` bytes in all, then fail as a full disk does
    (what fits is written first, so a partial file is really left for the store to remove)."""

    def __init__(self, room: int) -> None:
        self.room = room

    def wrap(self, f: io.BufferedIOBase) -> _FillingFile:
        return _FillingFile(f, self)


class _FillingFile(io.RawIOBase):
    def __init__(self, f: io.BufferedIOBase, disk: _FillingDisk) -> None:
        self._f = f
        self._disk = disk

    def write(self, data) -> int:
        data = memoryview(data).cast("B")
        fits = min(len(data), self._disk.room)
        self._f.write(data[:fits])
        self._disk.room -= fits
        if fits < len(data):
            self._f.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return fits

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._f.seekable()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def truncate(self, size=None) -> int:
        return self._f.truncate(size)

    def close(self) -> None:
        self._f.close()
        super().close()


def _fake_full_disk(monkeypatch, root: str, room: int) -> None:
    """The low-level writes of the store fail with ENOSPC once ``room`` bytes are used."""
    disk = _FillingDisk(room)
    real_open, real_fdopen = open, os.fdopen

    def filling_open(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        return disk.wrap(f) if "w" in mode and str(path).startswith(root) else f

    def filling_fdopen(fd, mode="r", *args, **kwargs):
        return disk.wrap(real_fdopen(fd, mode, *args, **kwargs))

    monkeypatch.setattr(files, "open", filling_open, raising=False)
    monkeypatch.setattr(blobs, "open", filling_open, raising=False)
    monkeypatch.setattr(files.os, "fdopen", filling_fdopen)


@contextmanager
def _tmpfs(folder, size: str):
    """A real tmpfs of ``size`` on ``folder``; skips where this process may not mount one
    (it needs root with CAP_SYS_ADMIN)."""
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                              str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the "
                    f"faked-ENOSPC cases cover the same writes")
    try:
        yield str(folder)
    finally:
        busy = subprocess.run(["umount", str(folder)], capture_output=True, text=True)
        if busy.returncode != 0:  # never leave it mounted; then say what held it
            subprocess.run(["umount", "-l", str(folder)], check=True)
            pytest.fail(f"a file on the full disk was left open: {busy.stderr.strip()}")


@pytest.fixture(params=["faked-ENOSPC", "tmpfs"])
def full_disk(request, tmp_path, monkeypatch):
    """A datastore root on a disk with 64 KiB free: a real tmpfs where this process may
    mount one, else writes that fail with a faked ENOSPC."""
    root = tmp_path / "disk"
    root.mkdir()
    if request.param == "faked-ENOSPC":
        _fake_full_disk(monkeypatch, str(root), 64 * 1024)
        yield str(root)
        return
    with _tmpfs(root, "64k"):
        yield str(root)


def _leftovers(root: str) -> list[str]:
    return [os.path.join(d, n) for d, dirs, names in os.walk(root) for n in names + dirs
            if files.TEMP_MARK in n]


BIG = "x" * 200_000  # more than the disk holds


@pytest.mark.parametrize("write", ["log", "run record", "done record", "artifact",
                                   "foreach items"])
def test_a_full_disk_is_one_clear_error_and_leaves_no_temporary_file(full_disk, write):
    store = ArtifactStore(full_disk, "SomeFlow")
    run_id = store.new_run_id()
    store.write_run(run_id, {"status": "running"})
    path, attempt = store.layout.task(run_id, "start", "1"), store.claim_attempt(
        run_id, "start", "1", {})
    target, action = {
        "log": (f"{path}/0.stdout",
                lambda: store.write_log(run_id, "start", "1", attempt, "stdout", BIG)),
        "run record": (f"{store.layout.run(run_id)}/_run.json",
                       lambda: store.write_run(run_id, {"status": "failed", "x": BIG})),
        "done record": (f"{path}/0.done.json",
                        lambda: store.write_done(run_id, "start", "1", attempt, {"x": BIG})),
        "artifact": (f"artifact 'big' to {store.flow_root}/_data",
                     lambda: store.put_artifact(os.urandom(200_000), "big")),
        "foreach items": (f"{path}/0.foreach",
                          lambda: store.write_foreach_items(run_id, "start", "1", attempt,
                                                            [BIG], "items")),
    }[write]
    with pytest.raises(DatastoreWriteError) as info:
        action()
    assert str(info.value).startswith(f"No space left on device while writing {target}: ")
    assert info.value.errno == errno.ENOSPC and isinstance(info.value, OSError)
    assert _leftovers(full_disk) == []
    assert store.read_run(run_id) == {"status": "running"}  # the last good record stands
    assert store.read_done(run_id, "start", "1", attempt) is None


_WRITE_A_DASK_FRAME = """
import os, sys
import dask, dask.dataframe as dd, pandas as pd
from daskflow.datastore import ArtifactStore
frame = pd.DataFrame({"text": [os.urandom(64).hex() for _ in range(4000)]})
store = ArtifactStore(sys.argv[1], "SomeFlow")
with dask.config.set(scheduler="sync"):  # no straggling write still holding its file
    store.put_artifact(dd.from_pandas(frame, npartitions=4), "events")
"""


def test_a_full_disk_under_a_dask_dataframe_is_the_same_clear_error(tmp_path):
    # In a child process: after this failure CPython 3.11.7's compiler reports
    # "AST constructor recursion depth mismatch" for the rest of the process.
    root = tmp_path / "disk"
    root.mkdir()
    with _tmpfs(root, "64k"):
        child = subprocess.run([sys.executable, "-c", _WRITE_A_DASK_FRAME, str(root)],
                               capture_output=True, text=True, timeout=120)
        last = child.stderr.strip().splitlines()[-1]
        assert re.match(r"daskflow.exceptions.DatastoreWriteError: No space left on device "
                        r"while writing artifact 'events' \(dask DataFrame\) to .*/_data/dd/",
                        last), child.stderr
        assert _leftovers(str(root)) == []
        assert os.listdir(f"{root}/SomeFlow/_data/dd") == []


@pytest.mark.fast
def test_a_claim_that_does_not_fit_is_no_claim(tmp_path, monkeypatch):
    root = str(tmp_path / "disk")
    store = ArtifactStore(root, "SomeFlow")
    _fake_full_disk(monkeypatch, root, 10)
    with pytest.raises(DatastoreWriteError, match="No space left on device while writing "):
        store.claim_attempt("1", "start", "1", {"payload": "x" * 100})
    assert store.list_attempts("1", "start", "1") == []


@pytest.mark.fast
def test_other_write_failures_name_the_path_and_the_cause(tmp_path):
    store = ArtifactStore(str(tmp_path / "root"), "SomeFlow")
    os.makedirs(store.flow_root)
    with open(store.layout.run("1"), "w") as f:  # a file where the run's folder belongs
        f.write("in the way")
    with pytest.raises(DatastoreWriteError, match=r"^File exists while writing .*/1/_run\.json: "
                                                  r"check the datastore"):
        store.write_run("1", {"status": "ok"})


# -- orphaned temporary files ---------------------------------------------------------------


def _touch(path: str, age: float, folder: bool = False) -> str:
    os.makedirs(path if folder else os.path.dirname(path), exist_ok=True)
    if not folder:
        with open(path, "wb") as f:
            f.write(b"partial")
    then = time.time() - age
    os.utime(path, (then, then))
    return path


@pytest.mark.fast
def test_orphaned_temporary_files_are_removed_once_old_enough(tmp_path):
    store = ArtifactStore(str(tmp_path / "root"), "SomeFlow")
    ref = store.put_artifact([1, 2, 3], "x")
    store.write_run("1", {"status": "running"})
    store.write_log("1", "start", "1", 0, "stdout", "hello\n")
    data, task = f"{store.flow_root}/_data", store.layout.task("1", "start", "1")
    hour = 3600
    old = [_touch(f"{data}/.tmp-{uuid.uuid4().hex}", 2 * hour),
           _touch(f"{store.layout.run('1')}/_run.json.tmp-1a2b3c4d", 2 * hour),
           _touch(f"{task}/0.stdout.tmp-5e6f7a8b", 2 * hour)]
    old_frame = f"{data}/dd/.tmp-{uuid.uuid4().hex}"
    _touch(f"{old_frame}/part.000000.parquet", 2 * hour)
    _touch(old_frame, 2 * hour, folder=True)
    fresh = [_touch(f"{data}/.tmp-{uuid.uuid4().hex}", 60),
             _touch(f"{task}/0.stderr.tmp-9c0d1e2f", 60)]
    busy_frame = f"{data}/dd/.tmp-{uuid.uuid4().hex}"  # a worker still adds partitions
    _touch(f"{busy_frame}/part.000001.parquet", 60)
    _touch(busy_frame, 2 * hour, folder=True)

    removed = store.remove_orphaned_temp_files()  # default: daskflow.datastore.orphan-age

    assert sorted(removed) == sorted(old + [old_frame])
    assert not any(os.path.exists(p) for p in removed)
    assert all(os.path.exists(p) for p in fresh + [busy_frame])
    assert store.get_artifact(ref) == [1, 2, 3]
    assert store.read_log("1", "start", "1", 0, "stdout") == "hello\n"
    assert store.remove_orphaned_temp_files(older_than=30) != []  # now the fresh ones too
    assert _leftovers(str(tmp_path)) == []


@pytest.mark.fast
def test_the_orphan_age_is_a_setting(tmp_path):
    assert dask.config.get("daskflow.datastore.orphan-age") == "1 hour"
    store = ArtifactStore(str(tmp_path / "root"), "SomeFlow")
    orphan = _touch(f"{store.flow_root}/_data/.tmp-{uuid.uuid4().hex}", 120)
    with dask.config.set({"daskflow.datastore.orphan-age": None}):
        assert store.remove_orphaned_temp_files() == []
    with dask.config.set({"daskflow.datastore.orphan-age": "soon"}):
        with pytest.raises(ConfigurationError, match="orphan-age is 'soon': give a duration"):
            store.remove_orphaned_temp_files()
    with dask.config.set({"daskflow.datastore.orphan-age": "1 minute"}):
        assert store.remove_orphaned_temp_files() == [orphan]
    memory = ArtifactStore(f"memory://daskflow-{uuid.uuid4().hex}", "SomeFlow")
    memory.put_artifact("x", "x")
    assert memory.remove_orphaned_temp_files(older_than=0) == []


# -- stray files in the store's folders ------------------------------------------------------


@pytest.mark.fast
@pytest.mark.parametrize("root", ["local", "memory"])
def test_listings_skip_what_is_not_the_stores(tmp_path, root):
    url = str(tmp_path / "root") if root == "local" else f"memory://df-{uuid.uuid4().hex}"
    store = ArtifactStore(url, "SomeFlow")
    store.write_run("17", {"status": "ok"})
    store.claim_attempt("17", "start", "1", {})
    store.claim_attempt("17", "start", "2", {})
    for folder in (store.flow_root, store.layout.run("17"), f"{store.layout.run('17')}/start",
                   store.layout.task("17", "start", "1")):
        store.files.write(f"{folder}/.DS_Store", b"\0\0\0\1Bud1")
        store.files.write(f"{folder}/notes.txt", b"mine")
    assert store.list_runs() == ["17"]
    assert store.list_steps("17") == ["start"]
    assert sorted(store.list_tasks("17", "start")) == ["1", "2"]
    assert store.list_attempts("17", "start", "1") == [0]


# -- names that would be paths outside the datastore ------------------------------------------


@pytest.mark.fast
@pytest.mark.parametrize("bad", ["../../tmp", "", "Some/Flow", "1Flow", "a-b"])
def test_a_flow_name_is_a_python_identifier(tmp_path, bad):
    with pytest.raises(InvalidNameError, match="is not a Python identifier"):
        ArtifactStore(str(tmp_path / "root"), bad)


@pytest.mark.fast
@pytest.mark.parametrize("bad", ["../../../outside/123", "..", "12a", "", "-1", "1 2", "١٢"])
def test_a_run_id_is_digits(tmp_path, bad):
    store = ArtifactStore(str(tmp_path / "root"), "SomeFlow")
    with pytest.raises(InvalidNameError, match="is not a daskflow run id: run ids are digits"):
        store.read_run(bad)
    with pytest.raises(InvalidNameError):
        store.write_run(bad, {})
    assert not os.path.exists(tmp_path / "root")  # nothing was written anywhere


@pytest.mark.fast
def test_step_names_and_task_ids_are_checked(tmp_path):
    store = ArtifactStore(str(tmp_path / "root"), "SomeFlow")
    with pytest.raises(InvalidNameError, match="Step name '..' is not a Python identifier"):
        store.list_tasks("1", "..")
    with pytest.raises(InvalidNameError, match="Task id '../2' is not a daskflow task id"):
        store.write_log("1", "start", "../2", 0, "stdout", "x")
