"""Many tasks' DataFrame artifacts as one lazy dask DataFrame: ``inputs.frame(name)`` in a
join, ``run[step].frame(name)`` from the client."""

from __future__ import annotations

import os

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from daskflow import Flow
from daskflow.datastore.concat import concat_frames
from daskflow.exceptions import ArtifactError


def table(split: int, rows: int = 30) -> pd.DataFrame:
    i = np.arange(rows)
    return pd.DataFrame({
        "cat": pd.Categorical(np.array(["a", "b", "c"])[(i + split) % 3]),
        "when": pd.date_range("2024-03-30", periods=rows, freq="h", tz="Europe/Paris"),
        "nullable": pd.array(np.where(i % 4 == 0, None, i), dtype="Int64"),
        "note": pd.Series([f"s{split}"] * rows, dtype=object),
        "value": i * 0.5 + split,
    })


def test_pandas_and_dask_artifacts_become_one_lazy_frame(frame_store):
    frames = [table(0), table(1), table(2)]
    with dask.config.set({"dataframe.convert-string": False}):  # keep 'note' as object
        lazy = dd.from_pandas(frames[1], npartitions=3)
    refs = [("task a/1", frame_store.put_artifact(frames[0], "result")),
            ("task a/2", frame_store.put_artifact(lazy, "result")),
            ("task a/3", frame_store.put_artifact(frames[2], "result"))]
    assert [r.fmt for _, r in refs] == ["parquet", "dask-parquet", "parquet"]

    combined = concat_frames(frame_store.artifacts, refs, "result")

    assert isinstance(combined, dd.DataFrame) and combined.npartitions == 1 + 3 + 1
    got = combined.compute()
    want = pd.concat(frames)
    assert list(got.columns) == list(want.columns)
    assert got["note"].dtype == object and got["nullable"].dtype == "Int64"
    assert str(got["when"].dtype) == "datetime64[ns, Europe/Paris]" or \
        got["when"].dtype == want["when"].dtype
    assert got["cat"].dtype == "category" and set(got["cat"]) == {"a", "b", "c"}
    pd.testing.assert_frame_equal(got.reset_index(drop=True).astype({"cat": str}),
                                  want.reset_index(drop=True).astype({"cat": str}))
    # Only the columns used are read; the result is the same.
    assert combined["value"].sum().compute() == want["value"].sum()


def test_series_artifacts_combine_as_a_series(frame_store):
    a = pd.Series([1.0, 2.0], name="score")
    b = dd.from_pandas(pd.Series([3.0, 4.0, 5.0], name="score"), npartitions=2)
    refs = [("t1", frame_store.put_artifact(a, "s")), ("t2", frame_store.put_artifact(b, "s"))]
    combined = concat_frames(frame_store.artifacts, refs, "s")
    assert isinstance(combined, dd.Series) and combined.name == "score"
    assert combined.compute().tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_no_rows_are_read_until_computed(frame_store):
    refs = [(f"task a/{i}", frame_store.put_artifact(table(i), "result")) for i in range(3)]
    os.remove(frame_store.blobs.path(refs[1][1].sha))
    with pytest.raises(ArtifactError, match=r"^frame\('result'\), task a/1: Artifact 'result' "
                                            r"is missing .*Rerun"):
        concat_frames(frame_store.artifacts, refs, "result")  # its footer is needed for the schema

    refs = [(f"task a/{i}", frame_store.put_artifact(
        dd.from_pandas(table(i), npartitions=2), "result")) for i in range(3)]  # all alike
    combined = concat_frames(frame_store.artifacts, refs, "result")
    folder = frame_store.blobs.path(refs[2][1].sha)
    os.remove(os.path.join(folder, "part.000001.parquet"))  # only now: building read none
    assert combined.npartitions == 6
    with pytest.raises(ArtifactError,
                       match=r"Artifact 'result' of task a/2: Parquet file .*part.000001"
                             r".* is missing"):
        combined.compute()


@pytest.mark.parametrize("bad, why", [
    ([1, 2], r"is a list, not a pandas or dask DataFrame"),
    (pd.DataFrame([[1, 2]], columns=["a", "a"]),
     r"is a DataFrame that Parquet could not hold, so it was pickled"),
    (table(1).astype({"value": str}), r"'value' is str there but float64 in task a/0"),
    (table(1).drop(columns="note"), r"it lacks 'note'"),
    (table(1).assign(extra=1), r"has 'extra' that task a/0 lacks"),
    (table(1)["value"], r"lacks 'cat'"),
])
def test_refuses_what_is_not_the_same_table(frame_store, bad, why):
    refs = [("task a/0", frame_store.put_artifact(table(0), "result")),
            ("task a/1", frame_store.put_artifact(bad, "result"))]
    with pytest.raises(ArtifactError, match=r"^frame\('result'\): the artifact 'result' of "
                                            r"task a/1 .*" + why) as info:
        concat_frames(frame_store.artifacts, refs, "result")
    assert "\n" not in str(info.value)


# -- through a flow, as a user runs it ---------------------------------------------------

def test_join_reads_a_foreach_of_frames_lazily(run_flow):
    result = run_flow("join_frames.py", "run", "--kind", "mixed", "--splits", "5",
                      "--rows", "1000")
    assert result.returncode == 0, result.stderr
    assert "rows=5000 partitions=7" in result.stdout  # 3 pandas files + 2 x 2 dask files
    run = Flow("JoinFramesFlow").latest_run
    data = run.data
    assert data.frame_type == "DataFrame"
    assert data.x_total == 5 * sum((i % 100) * 0.5 for i in range(1000))
    assert data.by_k.to_dict() == {k: 5 * sum((i % 100) * 0.5 for i in range(1000)
                                               if i % 10 == k) for k in range(10)}

    from_client = run["make"].frame("result")
    assert from_client.npartitions == 7
    whole = from_client.compute()
    assert len(whole) == 5000 and sorted(set(whole["split"])) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert whole["split"].is_monotonic_increasing  # in task order


def test_join_refuses_inputs_of_another_schema(run_flow):
    result = run_flow("join_frames.py", "run", "--splits", "3", "--bad", "schema")
    assert result.returncode == 1
    assert "inputs.frame('result'): the artifact 'result' of input make/" in result.stderr
    assert "'x' is str there but float64 in input make/" in result.stderr
    run = Flow("JoinFramesFlow").latest_run
    with pytest.raises(ArtifactError, match=r"JoinFramesFlow/\d+/make\.frame\('result'\): "
                                            r"the artifact 'result' of task .*/make/\d+ does "
                                            r"not match"):
        run["make"].frame("result")


def test_join_memory_stays_bounded_while_loading_would_not(run_flow):
    """50 splits of 200,000 rows (24 bytes a row: 229 MiB in all): the join aggregates
    them through inputs.frame() with its process growing by a fraction of that; the
    control, loading every input whole, grows it by more than all of it."""
    splits, rows = 50, 200_000
    result = run_flow("join_frames.py", "run", "--splits", str(splits), "--rows", str(rows),
                      "--measure", "true", "--max-num-splits", str(splits), timeout=480)
    assert result.returncode == 0, result.stderr
    data = Flow("JoinFramesFlow").latest_run.data
    assert data.rows_total == splits * rows
    assert data.x_total == data.whole_x_total
    all_mib = splits * rows * 24 / 2**20
    assert data.eager_growth > all_mib, (data.lazy_growth, data.eager_growth)
    assert data.lazy_growth < all_mib / 2, (data.lazy_growth, data.eager_growth)
