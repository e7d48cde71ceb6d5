"""parallel_map over Dask collections (bags, arrays, DataFrames), eager and lazy.

Partition functions log the process they run in: no partition is computed in the
caller, and each exactly once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dask.array as da
import dask.bag as db
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from daskflow import Flow
from daskflow.collections import (
    ParallelMapError,
    ParallelMapInputError,
    parallel_imap_unordered,
    parallel_map,
)


def _logging(log: Path) -> Any:
    """A partition function that notes the process computing it (and its first value)."""
    def note(part: Any) -> Any:
        first = part.iloc[0, 0] if isinstance(part, pd.DataFrame) else \
            np.asarray(list(part) if not hasattr(part, "ravel") else part).ravel()[0]
        with open(log, "a") as f:
            f.write(f"{int(first)} {os.getpid()}\n")
        return part
    return note


def _seen(log: Path) -> list[tuple[int, int]]:
    words = log.read_text().split()
    return [(int(words[i]), int(words[i + 1])) for i in range(0, len(words), 2)]


def test_bag_items_are_mapped_in_order_computed_on_the_workers(client: Any,
                                                               tmp_path: Path) -> None:
    log = tmp_path / "seen.log"
    bag = db.from_sequence(range(1000), partition_size=100).map_partitions(
        lambda items, note=_logging(log): note(list(items)))
    assert parallel_map(lambda x: x + 1, bag) == list(range(1, 1001))
    seen = _seen(log)
    assert sorted(first for first, _ in seen) == list(range(0, 1000, 100))  # each once
    assert os.getpid() not in {pid for _, pid in seen}
    assert sorted(parallel_imap_unordered(lambda x: -x, bag)) == sorted(-x for x in range(1000))


def test_whole_partitions_and_blocks(client: Any) -> None:
    bag = db.from_sequence(range(10), npartitions=3)
    assert parallel_map(len, bag, per="partition") == [4, 4, 2]
    arr = da.arange(40).reshape(10, 4).rechunk((4, 2))
    shapes = parallel_map(lambda block: block.shape, arr, per="block")
    assert shapes == _block_shapes(arr)  # C order of the block grid
    frame = dd.from_pandas(pd.DataFrame({"x": range(100)}), npartitions=4)
    assert parallel_map(lambda p: int(p["x"].sum()), frame, per="partition") == \
        [int(p["x"].sum()) for p in (frame.partitions[i].compute() for i in range(4))]
    series = frame["x"]
    assert parallel_map(lambda p: type(p).__name__, series, per="partition") == ["Series"] * 4


def _block_shapes(arr: Any) -> list[tuple[int, ...]]:
    import itertools
    return list(itertools.product(*arr.chunks))


def test_array_rows_follow_numpy(client: Any, tmp_path: Path) -> None:
    log = tmp_path / "seen.log"
    x = np.arange(60).reshape(20, 3)
    arr = da.from_array(x, chunks=(6, 2)).map_blocks(_logging(log), dtype=x.dtype)
    assert parallel_map(lambda row: row.tolist(), arr) == \
        parallel_map(lambda row: row.tolist(), x)
    seen = _seen(log)
    assert len(seen) == 8  # 4 bands of 2 blocks, each block once
    assert os.getpid() not in {pid for _, pid in seen}


def test_frame_partitions_not_computed_in_the_caller(client: Any, tmp_path: Path) -> None:
    log = tmp_path / "seen.log"
    pdf = pd.DataFrame({"x": range(40)})
    frame = dd.from_pandas(pdf, npartitions=4).map_partitions(_logging(log), meta=pdf.iloc[:0])
    assert parallel_map(len, frame, per="partition") == [10, 10, 10, 10]
    seen = _seen(log)
    assert sorted(first for first, _ in seen) == [0, 10, 20, 30]
    assert os.getpid() not in {pid for _, pid in seen}


def test_lazy_returns_a_bag_that_runs_only_when_computed(client: Any, tmp_path: Path) -> None:
    log = tmp_path / "seen.log"
    bag = db.from_sequence(range(100), partition_size=20).map_partitions(
        lambda items, note=_logging(log): note(list(items)))
    results = parallel_map(lambda x: x * 2, bag, lazy=True)
    assert isinstance(results, db.Bag) and results.npartitions == 5
    assert not log.exists()  # nothing ran yet
    assert results.filter(lambda x: x % 4 == 0).count().compute() == 50
    assert len(_seen(log)) == 5
    assert parallel_map(lambda x: x + 1, range(10), lazy=True).compute() == list(range(1, 11))
    assert parallel_map(str, [1, 2, 3], lazy=True).compute() == ["1", "2", "3"]
    arr = da.arange(12, chunks=5)
    assert parallel_map(int, arr, lazy=True).compute() == list(range(12))
    frame = dd.from_pandas(pd.DataFrame({"x": range(30)}), npartitions=3)
    assert parallel_map(len, frame, per="partition", lazy=True).compute() == [10, 10, 10]


def test_failures_name_the_item(client: Any) -> None:
    bag = db.from_sequence(range(10), npartitions=3)  # partitions of 4, 4 and 2 items
    with pytest.raises(ParallelMapError, match=r"on item 1 of bag partition 1 = 5: "
                                               r"division by zero") as caught:
        parallel_map(lambda x: 1 / (x - 5), bag)
    assert caught.value.index is None and caught.value.type_name == "ZeroDivisionError"
    with pytest.raises(ParallelMapError, match=r"on item 1 of bag partition 1 = 5"):
        parallel_map(lambda x: 1 / (x - 5), bag, lazy=True).compute()
    arr = da.arange(40).reshape(10, 4).rechunk((4, 2))
    with pytest.raises(ParallelMapError, match=r"on items\[5\]") as caught:
        parallel_map(lambda row: 1 / 0 if row[0] == 20 else 1, arr)
    assert caught.value.index == 5
    frame = dd.from_pandas(pd.DataFrame({"x": range(40)}), npartitions=4)
    with pytest.raises(ParallelMapError, match=r"on items\[2\]"):
        parallel_map(lambda p: 1 / 0 if p["x"].iloc[0] == 20 else 1, frame, per="partition")


@pytest.mark.parametrize("call,message", [
    (lambda f: parallel_map(len, f), "pass per='partition'"),
    (lambda f: parallel_map(len, f, per="rows"), "per='rows' is not one of"),
    (lambda f: parallel_map(len, [1, 2], per="partition"), "applies to dask collections"),
    (lambda f: parallel_map(len, db.from_sequence([1]), batch_size=2),
     "batch_size=2 does not apply to a Bag"),
])
def test_wrong_calls_get_one_line_errors(call: Any, message: str) -> None:
    frame = dd.from_pandas(pd.DataFrame({"x": range(4)}), npartitions=2)
    with pytest.raises(ParallelMapInputError, match=message) as caught:
        call(frame)
    assert "\n" not in str(caught.value)


def test_in_a_step_over_collections(run_flow: Any, workdir: Path) -> None:
    result = run_flow("collection_map.py", "run")
    assert result.returncode == 0, result.stderr
    data = Flow("CollectionMapFlow").latest_run["start"].task.data
    assert data.tripled == [3 * x for x in range(1000)]
    assert data.lazy_total == sum(3 * x for x in range(1000) if (3 * x) % 2 == 0)
    assert data.row_sums == [int(r.sum()) for r in np.arange(60).reshape(20, 3)]
    assert data.partition_sums == [sum(range(i, i + 20)) for i in range(0, 100, 20)]
    failed = run_flow("collection_map.py", "run", "--fail-at", "500")
    assert failed.returncode == 1
    assert "ParallelMapError" in failed.stderr and "item 500 is bad" in failed.stderr
