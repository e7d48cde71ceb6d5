"""A flow with DataFrame artifacts, run as a user runs it, read back with the client."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from daskflow import Flow
from daskflow.exceptions import ArtifactError


def test_dataframe_artifacts_through_a_flow(run_flow, workdir):
    result = run_flow("dataframe_flow.py", "run", "--rows", "2000")
    assert result.returncode == 0, result.stderr
    assert "groups=4 rows=3" in result.stdout
    run = Flow("DataFrameFlow").latest_run
    assert run.successful
    start, transform = run["start"].task, run["transform"].task

    assert start["pdf"].format == "parquet"
    assert start["events"].format == "dask-parquet"
    assert start["matrix"].format == "npy"
    assert transform["df"].format == "parquet"
    assert transform["by_group"].format == "parquet-series"
    assert transform["enriched"].format == "dask-parquet"

    # pandas: index and every dtype as they were.
    df = transform.data.df
    assert isinstance(df.index, pd.MultiIndex) and list(df.index.names) == ["hemi", "k"]
    assert list(df["city"].cat.categories) == ["Lima", "Oslo", "Rome"]
    assert str(df["when"].dtype) == "datetime64[us, Europe/Oslo]"
    assert df["visits"].dtype == "Int64" and df["visits2"].tolist() == [6, pd.NA, 10]
    assert df["name"].dtype == "str" and df["note"].dtype == object
    assert df["note"].tolist() == ["x", None, "z"]
    np.testing.assert_array_equal(start.data.matrix, np.arange(12.0).reshape(3, 4))

    # dask: lazy in the step and in the client; unchanged, it is not written twice.
    assert transform.data.events_type == "dask.dataframe.dask_expr._collection.DataFrame"
    assert transform["events"].sha == start["events"].sha
    by_group = transform.data.by_group
    assert by_group.to_dict() == {g: float(sum(i * 0.25 for i in range(2000) if i % 4 == k))
                                  for k, g in enumerate("abcd")}
    enriched = transform.data.enriched
    assert type(enriched).__name__ == "DataFrame" and enriched.npartitions == 4
    assert enriched.known_divisions and enriched.index.name == "event_id"
    assert dict(enriched.dtypes.astype(str)) == {"group": "category", "amount": "float64",
                                                 "user": "Int64", "double": "float64"}
    computed = enriched.compute()
    assert len(computed) == 2000 - 41 and computed["double"].max() == 1999 * 0.5

    # Reading task.data.enriched read no rows: a file removed now fails only at compute.
    lazy = run["transform"].task.data.enriched
    folder = transform["enriched"].path
    os.remove(os.path.join(folder, "part.000003.parquet"))
    with pytest.raises(ArtifactError, match="Artifact 'enriched': Parquet file .*part.000003"):
        lazy.compute()


def test_big_dataframe_example_at_ci_size(workdir):
    import subprocess
    import sys
    from pathlib import Path

    example = Path(__file__).parents[2] / "examples" / "big_dataframe.py"
    result = subprocess.run(
        [sys.executable, str(example), "run", "--rows", "300000", "--partition_rows", "50000",
         "--users", "5000"], cwd=workdir, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    run = Flow("BigDataFrameFlow").latest_run
    generate, aggregate = run["generate"].task, run["aggregate"].task
    assert generate["events"].format == "dask-parquet"
    assert len(os.listdir(generate["events"].path)) == 6 + 1  # 6 partitions + manifest
    summary = run.data.summary
    assert summary["events"].sum() == 300_000
    assert set(summary["kind"]) == {"view", "click", "cart", "purchase"}
    assert aggregate["events"].sha == generate["events"].sha  # read, not rewritten
    events = generate.data.events
    assert events.npartitions == 6 and events.known_divisions
    assert abs(float(events["amount"].sum().compute()) - run.data.total_spend) < 0.01 * 300_000
    user_totals = run.data.user_totals
    purchases = events[events["kind"] == "purchase"]
    assert abs(float(user_totals["spend"].sum().compute())
               - float(purchases["amount"].sum().compute())) < 1e-6 * 300_000
