"""daskflow.collections.dataframes: read_dataset, partitions, load_partition."""

from __future__ import annotations

import pickle
import sys

import cloudpickle
import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from daskflow.collections.dataframes import (
    DatasetError,
    Partition,
    cluster_client,
    load_partition,
    partitions,
    read_dataset,
)
from daskflow.datastore import dataframes

cloudpickle.register_pickle_by_value(sys.modules[__name__])

# dd.read_parquet in dask 2026.8 calls DataFrame.set_index/reset_index(inplace=True), which
# pandas 3.1 deprecates: dask's warning to fix, not ours (users never see DeprecationWarnings
# raised inside dask).
pytestmark = pytest.mark.filterwarnings(
    "ignore:The inplace keyword in DataFrame:DeprecationWarning")


def table(rows: int, start: int = 0) -> pd.DataFrame:
    ids = np.arange(start, start + rows)
    return pd.DataFrame({"id": ids, "group": pd.Series(ids % 3).map({0: "a", 1: "b", 2: "c"}),
                         "amount": ids * 0.5})


@pytest.fixture
def parquet_folder(tmp_path):
    folder = tmp_path / "events"
    folder.mkdir()
    for i in range(5):
        table(100, start=100 * i).to_parquet(folder / f"part-{i}.parquet", index=False,
                                             row_group_size=25)
    (folder / "_SUCCESS").write_text("")
    return folder


@pytest.fixture
def csv_files(tmp_path):
    for i in range(3):
        table(10, start=10 * i).to_csv(tmp_path / f"day-{i}.csv", index=False)
    return tmp_path


# -- read_dataset ---------------------------------------------------------------------------

def test_read_dataset_guesses_the_format(parquet_folder, csv_files, tmp_path):
    with dask.config.set(scheduler="synchronous"):
        assert len(read_dataset(str(parquet_folder))) == 500
        assert len(read_dataset(str(parquet_folder / "*.parquet"))) == 500
        assert read_dataset(str(csv_files / "*.csv"))["amount"].sum().compute() == \
            table(30)["amount"].sum()
        table(4).to_csv(tmp_path / "x.tsv", sep="\t", index=False)
        assert list(read_dataset(str(tmp_path / "x.tsv")).columns) == ["id", "group", "amount"]
        table(4).to_json(tmp_path / "x.jsonl", orient="records", lines=True)
        assert len(read_dataset(str(tmp_path / "x.jsonl"))) == 4


def test_read_dataset_says_what_it_cannot_read(tmp_path):
    (tmp_path / "notes.bin").write_bytes(b"?")
    with pytest.raises(DatasetError, match="Cannot tell the format of .*notes.bin.*format="):
        read_dataset(str(tmp_path / "notes.bin"))
    with pytest.raises(DatasetError, match="Unknown dataset format 'xlsx'"):
        read_dataset(str(tmp_path / "notes.bin"), format="xlsx")


def test_cluster_client_outside_a_cluster_is_a_clear_error():
    # Before any test here starts the module's cluster (whose client would be the default).
    with pytest.raises(DatasetError, match="found no Dask cluster"):
        with cluster_client():
            pass


def _count_on_worker(path: str) -> tuple[int, str]:
    from distributed import get_worker
    ddf = read_dataset(path)
    with cluster_client() as client:
        total = client.compute(ddf["id"].count()).result()
    return int(total), get_worker().address


def test_read_dataset_computes_on_the_step_cluster(parquet_folder, cluster_client):
    total, worker = cluster_client.submit(_count_on_worker, str(parquet_folder),
                                          pure=False).result(timeout=120)
    assert total == 500 and worker in cluster_client.scheduler_info()["workers"]


# -- partitions ------------------------------------------------------------------------------

def test_partitions_of_a_folder_are_its_files(parquet_folder):
    parts = partitions(str(parquet_folder))
    assert [p.paths[0].rsplit("/", 1)[-1] for p in parts] == [f"part-{i}.parquet"
                                                             for i in range(5)]
    assert all(p.row_groups == (None,) and p.format == "parquet" for p in parts)
    got = pd.concat([load_partition(p) for p in parts], ignore_index=True)
    pd.testing.assert_frame_equal(got, table(500))


def test_partitions_fit_max_parts(parquet_folder):
    parts = partitions(str(parquet_folder), max_parts=2)
    assert [len(p.paths) for p in parts] == [3, 2]
    assert sum(len(load_partition(p)) for p in parts) == 500


def test_partitions_by_row_group_carry_row_counts(parquet_folder):
    parts = partitions(str(parquet_folder), split_row_groups=True)
    assert len(parts) == 20 and {p.rows for p in parts} == {25}
    grouped = partitions(str(parquet_folder), split_row_groups=True, max_parts=3)
    assert [p.rows for p in grouped] == [175, 175, 150]
    assert grouped[1].row_groups == ((3,), (0, 1, 2, 3), (0, 1))
    got = pd.concat([load_partition(p) for p in grouped], ignore_index=True)
    pd.testing.assert_frame_equal(got, table(500))
    assert list(load_partition(grouped[0], columns=["amount"]).columns) == ["amount"]


def test_partitions_are_small_foreach_items(parquet_folder):
    parts = partitions(str(parquet_folder), split_row_groups=True)
    assert all(isinstance(p, Partition) for p in parts)
    assert max(len(pickle.dumps(p)) for p in parts) < 1000
    assert "Partition(parquet:" in repr(parts[0])


def test_partitions_of_csv_files(csv_files):
    parts = partitions(str(csv_files / "*.csv"))
    assert len(parts) == 3 and parts[0].format == "csv"
    assert load_partition(parts[2])["id"].tolist() == list(range(20, 30))


def test_partitions_of_read_dataset_keep_its_options(tmp_path):
    for i in range(2):
        table(5, 5 * i).to_csv(tmp_path / f"p{i}.txt", sep=";", index=False)
    ddf = read_dataset(str(tmp_path / "*.txt"), format="csv", sep=";")
    parts = partitions(ddf)
    assert len(parts) == 2 and load_partition(parts[1])["id"].tolist() == list(range(5, 10))


def test_partitions_of_a_dask_artifact_match_its_partitions(frame_store):
    pdf = table(60).assign(group=lambda d: d["group"].astype("category")).set_index("id")
    ddf = dd.from_pandas(pdf, npartitions=4)
    with dask.config.set(scheduler="synchronous"):
        back = frame_store.get_artifact(frame_store.put_artifact(ddf, "df"), "df")
        parts = partitions(back)
        assert len(parts) == 4 and parts[0].artifact is not None
        for i, part in enumerate(parts):
            pd.testing.assert_frame_equal(load_partition(part), back.partitions[i].compute(),
                                          check_exact=True)
        series = frame_store.get_artifact(frame_store.put_artifact(ddf["amount"], "s"), "s")
        piece = load_partition(partitions(series)[2])
        pd.testing.assert_series_equal(piece, series.partitions[2].compute())


def test_partitions_of_a_pandas_artifact_keep_row_labels(frame_store, monkeypatch):
    monkeypatch.setattr(dataframes, "CHUNK_BYTES", 1)  # 1024-row row groups
    df = table(3000).set_axis(pd.RangeIndex(10, 6010, 2))
    ref = frame_store.put_artifact(df, "df")
    parts = partitions(frame_store.blobs.path(ref.sha), format="parquet", split_row_groups=True)
    assert [p.rows for p in parts] == [1024, 1024, 952]
    pd.testing.assert_frame_equal(load_partition(parts[1]), df.iloc[1024:2048],
                                  check_index_type=False)


def test_partitions_of_a_computed_dask_frame_is_a_clear_error():
    ddf = dd.from_pandas(table(10), npartitions=2)
    with pytest.raises(DatasetError, match="store it first \\(self.df = ddf\\)"):
        partitions(ddf)


def test_partitions_of_nothing_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="no parquet files found"):
        partitions(str(tmp_path / "*.parquet"))
