"""pandas and numpy artifacts: Parquet and .npy with everything kept, pickle when not."""

from __future__ import annotations

import datetime
import decimal
import io
import os

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from daskflow.datastore import dataframes, serializers
from daskflow.exceptions import ArtifactError


def with_attrs(df: pd.DataFrame, **attrs) -> pd.DataFrame:
    df.attrs = attrs
    return df


def round_trip(store, value, name="x"):
    ref = store.put_artifact(value, name)
    return ref, store.get_artifact(ref, name)


def every_dtype(rows: int = 6) -> pd.DataFrame:
    half = rows // 2
    return pd.DataFrame({
        "cat": pd.Categorical(["a", "b"] * half, categories=["b", "a", "unused"], ordered=True),
        "cat_int": pd.Categorical([1, 2] * half, categories=[3, 2, 1]),
        "when": pd.date_range("2024-03-30", periods=rows, freq="h", tz="Europe/Paris"),
        "naive": pd.date_range("2024-01-01", periods=rows, freq="D"),
        "nullable": pd.array([1, None] * half, dtype="Int64"),
        "small": pd.array([1, None] * half, dtype="UInt8"),
        "flag": pd.array([True, None] * half, dtype="boolean"),
        "str": pd.array(["x", None] * half, dtype="str"),
        "string_python": pd.array(["x", None] * half, dtype="string[python]"),
        "string_arrow": pd.array(["x", None] * half, dtype="string[pyarrow]"),
        "object_str": pd.Series(["x", None] * half, dtype=object),
        "object_bytes": pd.Series([b"\x00", None] * half, dtype=object),
        "object_decimal": pd.Series([decimal.Decimal("1.10"), None] * half, dtype=object),
        "object_date": pd.Series([datetime.date(2024, 1, 1), None] * half, dtype=object),
        "f16": np.arange(rows, dtype=np.float16),
        "u64": np.arange(rows, dtype=np.uint64) + 2**63,
        "elapsed": pd.to_timedelta(range(rows), unit="s"),
        "month": pd.period_range("2024-01", periods=rows, freq="M"),
        "span": pd.interval_range(0, rows),
    })


@pytest.mark.parametrize("column", list(every_dtype().columns))
def test_each_dtype_round_trips_through_parquet(frame_store, column):
    df = every_dtype()[[column]]
    ref, back = round_trip(frame_store, df)
    assert ref.fmt == "parquet"
    pd.testing.assert_frame_equal(back, df, check_exact=True)
    assert back[column].dtype == df[column].dtype


def test_object_columns_keep_python_objects_and_none(frame_store):
    df = every_dtype()
    _, back = round_trip(frame_store, df)
    assert back["object_str"].tolist() == ["x", None] * 3
    assert back["object_bytes"].tolist()[:2] == [b"\x00", None]
    assert back["object_decimal"].tolist()[0] == decimal.Decimal("1.10")
    assert list(back["cat"].cat.categories) == ["b", "a", "unused"]
    assert back["cat"].cat.ordered


@pytest.mark.parametrize("index", [
    pd.RangeIndex(10, 16, 1, name="row"),
    pd.Index([5, 3, 3, 1, 0, 9], name="dupes"),
    pd.Index(list("abcdef"), dtype=object, name="obj"),
    pd.Index(list("abcdef"), dtype="str"),
    pd.date_range("2024-01-01", periods=6, tz="UTC", name="ts"),
    pd.CategoricalIndex(list("aabbcc"), name="c"),
    pd.MultiIndex.from_product([["a", "b"], [1, 2, 3]], names=["letter", "number"]),
    pd.MultiIndex.from_arrays([pd.Index(list("aabbcc"), dtype=object),
                               pd.date_range("2024", periods=6, tz="UTC")], names=["k", None]),
], ids=lambda i: type(i).__name__ + "-" + str(i.dtype if i.nlevels == 1 else i.nlevels))
def test_index_round_trips(frame_store, index):
    df = every_dtype().set_axis(index)
    ref, back = round_trip(frame_store, df)
    assert ref.fmt == "parquet"
    pd.testing.assert_frame_equal(back, df, check_exact=True)
    pd.testing.assert_index_equal(back.index, df.index, exact=True)


@pytest.mark.parametrize("columns", [
    pd.RangeIndex(3),
    pd.RangeIndex(10, 16, 2, name="r"),
    pd.Index([1, 2, 3]),
    pd.Index([0.5, 1.5, 2.5]),
    pd.Index(["a", "b", "c"], dtype=object, name="names"),
    pd.date_range("2024-01-01", periods=3),
    pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)], names=["top", "sub"]),
], ids=["range", "named-range", "int", "float", "object", "datetime", "multi"])
def test_non_string_column_labels_round_trip(frame_store, columns):
    df = pd.DataFrame(np.arange(6).reshape(2, 3), columns=columns)
    ref, back = round_trip(frame_store, df)
    assert ref.fmt == "parquet"
    pd.testing.assert_frame_equal(back, df, check_exact=True)
    pd.testing.assert_index_equal(back.columns, df.columns, exact=True)


@pytest.mark.parametrize("series", [
    pd.Series([1, None, 3], dtype="Int64", name="n"),
    pd.Series(["a", None], dtype=object, name=("multi", 1)),
    pd.Series([1.5, 2.5]),
    pd.Series(pd.Categorical(["x", "y"]), index=pd.Index(["i", "j"], name="k"), name=7),
    pd.Series(pd.date_range("2024", periods=3, tz="Asia/Tokyo"), name="ts"),
], ids=["Int64", "tuple-name", "unnamed", "categorical-int-name", "tz"])
def test_series_round_trip(frame_store, series):
    ref, back = round_trip(frame_store, series)
    assert ref.fmt == "parquet-series"
    pd.testing.assert_series_equal(back, series, check_exact=True)
    assert back.name == series.name and type(back.name) is type(series.name)


def test_attrs_are_kept(frame_store):
    df = pd.DataFrame({"x": [1]})
    df.attrs = {"source": "sensor-3", "version": 2}
    _, back = round_trip(frame_store, df)
    assert back.attrs == {"source": "sensor-3", "version": 2}


def test_many_row_groups_keep_categories_and_order(frame_store, monkeypatch):
    monkeypatch.setattr(dataframes, "CHUNK_BYTES", 1)  # 1024-row row groups
    df = every_dtype(5000).set_axis(pd.RangeIndex(0, 10000, 2, name="even"))
    ref, back = round_trip(frame_store, df)
    path = frame_store.blobs.path(ref.sha)
    assert pq.ParquetFile(path).metadata.num_row_groups == 5
    pd.testing.assert_frame_equal(back, df, check_exact=True)


def test_empty_frame_round_trips(frame_store):
    df = every_dtype().iloc[:0]
    ref, back = round_trip(frame_store, df)
    assert ref.fmt == "parquet"
    assert list(back.dtypes.astype(str)) == list(df.dtypes.astype(str))


def test_parquet_artifacts_are_content_addressed(frame_store):
    a = frame_store.put_artifact(every_dtype(), "a")
    b = frame_store.put_artifact(every_dtype(), "b")
    assert a.sha == b.sha
    assert a.size == os.path.getsize(frame_store.blobs.path(a.sha))


def test_parquet_artifacts_open_outside_daskflow(frame_store):
    df = every_dtype().set_axis(pd.Index(list("abcdef"), name="key"))
    ref = frame_store.put_artifact(df, "df")
    plain = pd.read_parquet(frame_store.blobs.path(ref.sha))
    assert list(plain.columns) == list(df.columns)
    assert plain.index.name == "key"
    assert plain["nullable"].dtype == "Int64"


@pytest.mark.parametrize("value, reason", [
    (pd.DataFrame({1: [1], "a": [2]}), "mixed column labels"),
    (pd.DataFrame([[1, 2]], columns=["a", "a"]), "duplicate labels"),
    (pd.DataFrame({"z": [1 + 2j]}), "complex numbers"),
    (pd.DataFrame({"lists": [[1], [2, 3]]}), "lists in an object column"),
    (pd.DataFrame({"dicts": [{"a": 1}, {"b": 2}]}), "dicts in an object column"),
    (pd.DataFrame({"mixed": [1, "a"]}), "mixed objects"),
    (pd.DataFrame({"ints": [1, None]}, dtype=object), "ints and None as objects"),
    (pd.DataFrame({"s": pd.arrays.SparseArray([0, 1])}), "sparse"),
    (pd.DataFrame({"c": pd.Categorical([pd.Timestamp("2024")])}), "datetime categories"),
    (pd.DataFrame({"x": [1, 2]}).set_axis(pd.Index([1, "a"], dtype=object)), "mixed index"),
    (pd.Series([1], name=np.int64(3)), "numpy scalar name"),
    (with_attrs(pd.DataFrame({"x": [1]}), when=datetime.date(2024, 1, 1)),
     "attrs that are not JSON"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_what_parquet_cannot_hold_falls_back_to_pickle(frame_store, value, reason):
    ref, back = round_trip(frame_store, value)
    assert ref.fmt == "pickle", reason
    if isinstance(value, pd.DataFrame):
        pd.testing.assert_frame_equal(back, value)
        assert back.attrs == value.attrs
    else:
        pd.testing.assert_series_equal(back, value)


def test_fallback_after_a_partial_parquet_write_leaves_a_clean_pickle(frame_store, monkeypatch):
    calls = {"n": 0}
    real = dataframes.plan_pandas

    def plan_then_fail_mid_write(value, preserve_index=None):
        plan = real(value, preserve_index)
        calls["n"] += 1
        bad = plan.frame.copy()
        bad.iloc[-1, 0] = object()  # the last row group cannot be converted
        return plan._replace(frame=bad)

    monkeypatch.setattr(dataframes, "CHUNK_BYTES", 1)
    monkeypatch.setattr(dataframes, "plan_pandas", plan_then_fail_mid_write)
    df = pd.DataFrame({"s": pd.Series(["x"] * 3000, dtype=object)})
    ref, back = round_trip(frame_store, df)
    assert calls["n"] == 1 and ref.fmt == "pickle"
    pd.testing.assert_frame_equal(back, df)
    with open(frame_store.blobs.path(ref.sha), "rb") as f:
        assert not f.read(4).startswith(b"PAR1")


def test_subclasses_are_pickled_whole(frame_store):
    class Tagged(pd.DataFrame):
        _metadata = ["tag"]

        @property
        def _constructor(self):
            return Tagged

    ref, back = round_trip(frame_store, Tagged({"x": [1, 2]}))
    assert ref.fmt == "pickle" and type(back).__name__ == "Tagged"


# -- numpy ---------------------------------------------------------------------------------

@pytest.mark.parametrize("array", [
    np.arange(12.0).reshape(3, 4),
    np.arange(12, dtype=np.int8).reshape(3, 4).T,          # not C-contiguous
    np.array(["a", "bc"]),                                 # fixed-width unicode
    np.array(["2024-01-01"], dtype="datetime64[ns]"),
    np.zeros(3, dtype=[("a", "i4"), ("b", "f8", (2,))]),   # structured
    np.array(3.5),                                         # 0-d
    np.empty((0, 5)),
], ids=["float", "transposed", "unicode", "datetime", "structured", "0d", "empty"])
def test_numpy_arrays_are_stored_as_npy_without_pickle(frame_store, array):
    ref, back = round_trip(frame_store, array)
    assert ref.fmt == "npy"
    assert type(back) is np.ndarray and back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    # Readable by anyone, and loading runs no pickle.
    plain = np.load(frame_store.blobs.path(ref.sha), allow_pickle=False)
    np.testing.assert_array_equal(plain, array)


@pytest.mark.parametrize("value", [
    np.array([1, "a", None], dtype=object),
    np.zeros(2, dtype=[("o", object)]),
    np.ma.masked_array([1, 2], mask=[0, 1]),
    np.arange(3).view(type("Units", (np.ndarray,), {})),
], ids=["object", "structured-object", "masked", "subclass"])
def test_numpy_values_npy_cannot_hold_are_pickled(frame_store, value):
    ref, back = round_trip(frame_store, value)
    assert ref.fmt == "pickle"
    assert type(back).__name__ == type(value).__name__
    np.testing.assert_array_equal(np.asarray(back), np.asarray(value))


def test_plain_values_stay_pickled_and_never_import_pandas(frame_store):
    ref, back = round_trip(frame_store, {"a": (1, 2)})
    assert ref.fmt == "pickle" and back == {"a": (1, 2)}
    fmt, data = serializers.dumps([1, 2])
    assert fmt == "pickle" and serializers.loads(fmt, data) == [1, 2]


# -- bad files -----------------------------------------------------------------------------

def test_corrupt_parquet_is_an_artifact_error_naming_name_and_path(frame_store):
    ref = frame_store.put_artifact(every_dtype(), "sales")
    path = frame_store.blobs.path(ref.sha)
    with open(path, "r+b") as f:
        f.seek(-12, os.SEEK_END)
        f.write(b"\0" * 12)
    with pytest.raises(ArtifactError) as info:
        frame_store.get_artifact(ref, "sales")
    assert "'sales'" in str(info.value) and path in str(info.value)


def test_truncated_npy_is_an_artifact_error(frame_store):
    ref = frame_store.put_artifact(np.arange(1000), "arr")
    path = frame_store.blobs.path(ref.sha)
    os.truncate(path, 200)
    with pytest.raises(ArtifactError, match=f"Artifact 'arr' at {path} cannot be loaded"):
        frame_store.get_artifact(ref, "arr")


def test_missing_parquet_is_an_artifact_error(frame_store):
    ref = frame_store.put_artifact(every_dtype(), "sales")
    os.remove(frame_store.blobs.path(ref.sha))
    with pytest.raises(ArtifactError, match="Artifact 'sales' is missing from the datastore"):
        frame_store.get_artifact(ref, "sales")


def test_files_written_by_pandas_itself_still_load():
    df = every_dtype()[["cat", "when", "nullable", "str"]]
    buf = io.BytesIO()
    df.to_parquet(buf)
    pd.testing.assert_frame_equal(serializers.loads("parquet", buf.getvalue()), df)


def test_fallback_leaves_no_temporary_files(frame_store, tmp_path):
    frame_store.put_artifact(pd.DataFrame({"z": [1j]}), "z")
    names = [f for _, _, files in os.walk(tmp_path) for f in files]
    assert not [n for n in names if ".tmp-" in n]
