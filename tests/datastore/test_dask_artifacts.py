"""dask DataFrame artifacts: partitioned Parquet written by the workers, loaded lazily."""

from __future__ import annotations

import json
import logging
import os
import sys
import time

import cloudpickle
import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from daskflow.datastore import ArtifactStore, dataframes
from daskflow.exceptions import ArtifactError

# Workers run the helpers below without importing this file.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def sample_pandas(rows: int = 40) -> pd.DataFrame:
    half = rows // 2
    return pd.DataFrame({
        "cat": pd.Categorical(["a", "b"] * half, categories=["b", "a", "unused"]),
        "cat_int": pd.Categorical([1, 2] * half, categories=[3, 2, 1]),
        "when": pd.date_range("2024-03-30", periods=rows, freq="h", tz="Europe/Paris"),
        "nullable": pd.array([1, None] * half, dtype="Int64"),
        "text": pd.array(["x", None] * half, dtype="str"),
        "value": np.linspace(0, 1, rows),
    }, index=pd.Index(range(100, 100 + rows), name="id"))


def sample(rows: int = 40, npartitions: int = 4) -> dd.DataFrame:
    return dd.from_pandas(sample_pandas(rows), npartitions=npartitions)


def dd_folder(store: ArtifactStore) -> str:
    return f"{store.flow_root}/_data/dd"


def complete_folders(store: ArtifactStore) -> list[str]:
    try:
        return [n for n in os.listdir(dd_folder(store)) if not n.startswith(".")]
    except FileNotFoundError:
        return []


def assert_same(back: dd.DataFrame, ddf: dd.DataFrame) -> None:
    assert dict(back.dtypes) == dict(ddf.dtypes)
    assert back.npartitions == ddf.npartitions
    pd.testing.assert_frame_equal(back.compute(), ddf.compute(), check_exact=True)


# -- written from plain driver code ---------------------------------------------------------

def test_round_trip_without_a_cluster(frame_store):
    ddf = sample()
    with dask.config.set(scheduler="synchronous"):
        ref = frame_store.put_artifact(ddf, "events")
        assert ref.fmt == "dask-parquet" and ref.sha.startswith("dd/")
        assert ref.type_name == "DataFrame"
        folder = frame_store.blobs.path(ref.sha)
        assert sorted(os.listdir(folder)) == ["_daskflow.json"] + [
            f"part.{i:06d}.parquet" for i in range(4)]
        assert ref.size == sum(os.path.getsize(f"{folder}/{n}") for n in os.listdir(folder)
                               if n.endswith(".parquet"))
        back = frame_store.get_artifact(ref, "events")
        assert isinstance(back, dd.DataFrame)
        assert back.divisions == ddf.divisions  # known divisions come back
        assert list(back["cat"].dtype.categories) == ["b", "a", "unused"]
        assert_same(back, ddf)


def test_round_trip_from_the_driver_uses_the_default_client(frame_store, cluster_client):
    pids = set(cluster_client.run(os.getpid).values())
    ddf = sample().map_partitions(lambda p: p.assign(pid=os.getpid()),
                                  meta=sample_pandas(0).assign(pid=0))
    ref = frame_store.put_artifact(ddf, "events")
    back = frame_store.get_artifact(ref, "events")
    written_by = set(back["pid"].compute())
    assert written_by <= pids and os.getpid() not in written_by


def test_series_round_trip(frame_store, cluster_client):
    ddf = sample()
    for series in (ddf["nullable"], ddf["cat"].rename(None), ddf["value"].rename(("a", 1))):
        ref = frame_store.put_artifact(series, "s")
        back = frame_store.get_artifact(ref, "s")
        assert isinstance(back, dd.Series) and ref.type_name == "Series"
        assert back.name == series.name and back.dtype == series.dtype
        pd.testing.assert_series_equal(back.compute(), series.compute(), check_exact=True)


def test_unknown_categories_stay_categorical(frame_store, cluster_client):
    ddf = sample()
    ddf = ddf.assign(level=ddf["text"].fillna("none").astype("category"))
    assert not ddf["level"].cat.known
    back = frame_store.get_artifact(frame_store.put_artifact(ddf, "df"), "df")
    assert isinstance(back["level"].dtype, pd.CategoricalDtype)
    assert sorted(back["level"].compute().astype(str).unique()) == ["none", "x"]


def test_unknown_divisions_round_trip(frame_store, cluster_client):
    ddf = sample().clear_divisions()
    back = frame_store.get_artifact(frame_store.put_artifact(ddf, "df"), "df")
    assert not back.known_divisions
    assert_same(back, ddf)


def test_a_loaded_artifact_stored_unchanged_is_not_written_again(frame_store, cluster_client):
    ref = frame_store.put_artifact(sample(), "df")
    back = frame_store.get_artifact(ref, "df")
    assert frame_store.put_artifact(back, "df") == ref
    assert len(complete_folders(frame_store)) == 1
    changed = frame_store.put_artifact(back[back.value > 0.5], "df")
    assert changed.sha != ref.sha and len(complete_folders(frame_store)) == 2


# -- written from a task on a worker, as a step does ----------------------------------------

def _tag_worker(part: pd.DataFrame) -> pd.DataFrame:
    from distributed import get_worker
    time.sleep(0.2)  # long enough that both workers take partitions
    return part.assign(worker=get_worker().address)


def _store_on_worker(root: str, npartitions: int) -> tuple:
    from distributed import get_worker
    store = ArtifactStore(root, "FrameFlow")
    ddf = dd.from_pandas(pd.DataFrame({"x": np.arange(80)}), npartitions=npartitions)
    meta = pd.DataFrame({"x": pd.Series(dtype="int64"), "worker": pd.Series(dtype="str")})
    ref = store.put_artifact(ddf.map_partitions(_tag_worker, meta=meta), "df")
    loaded = store.get_artifact(ref, "df")
    total = int(loaded["x"].sum().compute())  # loaded on the worker, computed on the cluster
    return ref, get_worker().address, total


def test_a_task_on_a_worker_writes_with_the_whole_cluster(frame_store, cluster_client):
    root = frame_store.root_url
    ref, task_worker, total = cluster_client.submit(_store_on_worker, root, 8,
                                                    pure=False).result(timeout=120)
    assert total == sum(range(80))
    back = frame_store.get_artifact(ref, "df")
    assert back.npartitions == 8
    writers = set(back["worker"].compute())
    workers = set(cluster_client.scheduler_info()["workers"])
    assert writers <= workers
    assert len(writers) == 2, f"all partitions written by {writers}; task ran on {task_worker}"


def _store_after_get_client(root: str) -> tuple[int, int]:
    import contextlib

    import distributed
    from distributed import get_client

    get_client()  # as any earlier compute in the task would: sets scheduler=dask.distributed
    used = []
    real = distributed.worker_client

    @contextlib.contextmanager
    def counting_worker_client(*args, **kwargs):
        used.append(1)
        with real(*args, **kwargs) as client:
            yield client

    distributed.worker_client = counting_worker_client
    try:
        ref = ArtifactStore(root, "FrameFlow").put_artifact(sample(), "df")
    finally:
        distributed.worker_client = real
    return ref.size, len(used)


def test_a_task_secedes_while_the_cluster_writes(frame_store):
    """From a task, the write goes through worker_client (the task's thread is freed)."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL) as cluster, \
            Client(cluster, set_as_default=False) as client:
        size, seceded = client.submit(_store_after_get_client, frame_store.root_url,
                                      pure=False).result(timeout=90)
    assert size > 0 and seceded == 1 and len(complete_folders(frame_store)) == 1


def _fail_on_partition(part: pd.DataFrame) -> pd.DataFrame:
    if part.index.min() >= 120:
        raise ZeroDivisionError("partition 2 is bad")
    return part


def _store_failing_on_worker(root: str) -> str:
    store = ArtifactStore(root, "FrameFlow")
    bad = sample().map_partitions(_fail_on_partition, meta=sample_pandas(0))
    try:
        store.put_artifact(bad, "bad")
    except ArtifactError as exc:
        return str(exc)
    return "stored"


def test_a_failing_graph_on_a_worker_stores_nothing(frame_store, cluster_client):
    message = cluster_client.submit(_store_failing_on_worker, frame_store.root_url,
                                    pure=False).result(timeout=120)
    assert "Artifact 'bad' (dask DataFrame) could not be written" in message
    assert "ZeroDivisionError: partition 2 is bad" in message
    assert "Nothing was stored" in message
    assert complete_folders(frame_store) == []
    deadline = time.time() + 10  # partitions still running when it failed may finish late
    while os.listdir(dd_folder(frame_store)) and time.time() < deadline:
        time.sleep(0.2)
    assert complete_folders(frame_store) == []


def test_a_failing_graph_from_the_driver_stores_nothing(frame_store, cluster_client):
    bad = sample().map_partitions(_fail_on_partition, meta=sample_pandas(0))
    with pytest.raises(ArtifactError, match="partition 2 is bad") as info:
        frame_store.put_artifact(bad, "bad")
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert complete_folders(frame_store) == []


# -- what Parquet cannot hold ----------------------------------------------------------------

def test_non_string_column_labels_round_trip(frame_store, cluster_client):
    ddf = dd.from_pandas(pd.DataFrame({0: [1, 2], 1: [2, 3]}), npartitions=2)
    back = frame_store.get_artifact(frame_store.put_artifact(ddf, "wide"), "wide")
    assert list(back.columns) == [0, 1]
    pd.testing.assert_frame_equal(back.compute(), ddf.compute(), check_exact=True)


def test_object_columns_of_strings_stay_objects(frame_store, cluster_client):
    pdf = pd.DataFrame({"name": pd.Series(["a", None, "c", "d"], dtype=object)})
    with dask.config.set({"dataframe.convert-string": False}):
        ddf = dd.from_pandas(pdf, npartitions=2)
        back = frame_store.get_artifact(frame_store.put_artifact(ddf, "df"), "df")
    assert back["name"].dtype == object
    assert back.compute()["name"].tolist() == ["a", None, "c", "d"]


def test_object_columns_of_python_values_round_trip(frame_store, cluster_client):
    import decimal
    pdf = pd.DataFrame({"price": pd.Series([decimal.Decimal("1.10")] * 4, dtype=object),
                        "raw": pd.Series([b"\x00", None] * 2, dtype=object)})
    ddf = dd.from_pandas(pdf, npartitions=2)
    back = frame_store.get_artifact(frame_store.put_artifact(ddf, "df"), "df")
    assert dict(back.dtypes) == dict(ddf.dtypes)
    pd.testing.assert_frame_equal(back.compute(), ddf.compute(), check_exact=True)


def test_a_column_parquet_cannot_hold_is_named_before_anything_runs(frame_store):
    ddf = dd.from_pandas(pd.DataFrame({"ok": [1, 2], "z": [1j, 2j]}), npartitions=1)
    with pytest.raises(ArtifactError, match=r"Artifact 'df'.*column 'z' of dtype complex128"):
        frame_store.put_artifact(ddf, "df")
    assert complete_folders(frame_store) == []


def test_mixed_objects_found_while_writing_name_the_column(frame_store, cluster_client):
    pdf = pd.DataFrame({"ok": range(4), "mixed": pd.Series(["a", "b", 3, "d"], dtype=object)})
    with dask.config.set({"dataframe.convert-string": False}):
        ddf = dd.from_pandas(pdf, npartitions=2)
    with pytest.raises(ArtifactError, match=r"Artifact 'df'.*column 'mixed' of dtype object") \
            as info:
        frame_store.put_artifact(ddf, "df")
    assert "Nothing was stored. Parquet holds one type per column" in str(info.value)
    assert complete_folders(frame_store) == []


# -- lazy loading and bad files ---------------------------------------------------------------

def test_loading_reads_no_rows(frame_store, cluster_client):
    ref = frame_store.put_artifact(sample(), "events")
    folder = frame_store.blobs.path(ref.sha)
    back = frame_store.get_artifact(ref, "events")
    for name in os.listdir(folder):
        if name.endswith(".parquet"):
            os.remove(f"{folder}/{name}")
    # Everything but the rows is known without the files ...
    assert list(back.columns) == list(sample().columns)
    assert back.npartitions == 4 and back.known_divisions
    assert dict(back.dtypes) == dict(sample().dtypes)
    # ... and the rows are read only when computed.
    with pytest.raises(ArtifactError,
                       match=r"Artifact 'events': Parquet file .*part.00000[0-3]\.parquet "
                             "is missing"):
        back.compute()


def test_only_the_columns_used_are_read(frame_store, cluster_client, monkeypatch):
    ref = frame_store.put_artifact(sample(), "events")
    back = frame_store.get_artifact(ref, "events")
    seen = []
    real = dataframes.read_pandas_file

    def spy(url, **kwargs):
        seen.append(kwargs.get("columns"))
        return real(url, **kwargs)

    monkeypatch.setattr(dataframes, "read_pandas_file", spy)
    with dask.config.set(scheduler="synchronous"):  # in this process, where the spy is
        total = back["value"].sum().compute()
    assert total == pytest.approx(sample_pandas()["value"].sum())
    assert seen == [["value"]] * 4


def test_a_file_deleted_after_loading_fails_at_compute_naming_it(frame_store, cluster_client):
    ref = frame_store.put_artifact(sample(), "events")
    back = frame_store.get_artifact(ref, "events")
    victim = f"{frame_store.blobs.path(ref.sha)}/part.000002.parquet"
    os.remove(victim)
    with pytest.raises(ArtifactError, match=f"Artifact 'events': Parquet file {victim} is missing"):
        back.compute()
    assert len(back.loc[:119].compute()) == 20  # the other files still read


def test_a_missing_partition_file_is_an_artifact_error(frame_store):
    ref = frame_store.put_artifact(sample(), "events")
    victim = f"{frame_store.blobs.path(ref.sha)}/part.000003.parquet"
    os.remove(victim)
    with pytest.raises(ArtifactError, match=f"Artifact 'events' .*missing 1 of its 4 Parquet "
                                            f"files, e.g. {victim}"):
        frame_store.get_artifact(ref, "events")


def test_a_folder_without_its_manifest_is_incomplete(frame_store):
    ref = frame_store.put_artifact(sample(), "events")
    marker = f"{frame_store.blobs.path(ref.sha)}/{dataframes.MANIFEST}"
    os.remove(marker)
    with pytest.raises(ArtifactError, match=f"Artifact 'events' .*missing or incomplete: "
                                            f"{marker} does not exist"):
        frame_store.get_artifact(ref, "events")


def test_a_corrupt_partition_file_is_an_artifact_error(frame_store, cluster_client):
    ref = frame_store.put_artifact(sample(), "events")
    victim = f"{frame_store.blobs.path(ref.sha)}/part.000001.parquet"
    with open(victim, "r+b") as f:
        f.seek(-8, os.SEEK_END)
        f.write(b"garbage!")
    back = frame_store.get_artifact(ref, "events")
    with pytest.raises(ArtifactError, match=f"Artifact 'events': Parquet file {victim} cannot "
                                            f"be read"):
        back.compute()


def test_a_corrupt_manifest_is_an_artifact_error(frame_store):
    ref = frame_store.put_artifact(sample(), "events")
    marker = f"{frame_store.blobs.path(ref.sha)}/{dataframes.MANIFEST}"
    with open(marker, "w") as f:
        f.write("{not json")
    with pytest.raises(ArtifactError, match="Artifact 'events'.*manifest .* is corrupt"):
        frame_store.get_artifact(ref, "events")


def test_the_files_open_outside_daskflow(frame_store):
    pdf = sample_pandas()
    ref = frame_store.put_artifact(dd.from_pandas(pdf, npartitions=3), "events")
    folder = frame_store.blobs.path(ref.sha)
    plain = pd.read_parquet(folder)  # pyarrow skips _daskflow.json
    assert len(plain) == len(pdf) and plain.index.name == "id"
    with open(f"{folder}/{dataframes.MANIFEST}") as f:
        manifest = json.load(f)
    assert manifest["files"] == [f"part.{i:06d}.parquet" for i in range(3)]


# -- an object store (fsspec memory://): no rename, the manifest marks completion -----------

def test_object_store_round_trip_and_failure(tmp_path):
    import uuid
    store = ArtifactStore(f"memory://daskflow-{uuid.uuid4().hex}", "FrameFlow")
    with dask.config.set(scheduler="synchronous"):
        ref = store.put_artifact(sample(), "events")
        folder = store.blobs.path(ref.sha)
        names = sorted(p.rstrip("/").rsplit("/", 1)[-1]
                       for p in store.files.fs.ls(folder, detail=False))
        assert names == ["_daskflow.json"] + [f"part.{i:06d}.parquet" for i in range(4)]
        assert_same(store.get_artifact(ref, "events"), sample())
        bad = sample().map_partitions(_fail_on_partition, meta=sample_pandas(0))
        with pytest.raises(ArtifactError, match="partition 2 is bad"):
            store.put_artifact(bad, "bad")
    folders = store.files.fs.ls(f"{store.flow_root}/_data/dd", detail=False)
    assert [f.rstrip("/").rsplit("/", 1)[-1] for f in folders] == [ref.sha.split("/")[1]]
