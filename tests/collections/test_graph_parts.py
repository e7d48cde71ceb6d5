"""Cutting a Dask collection into per-partition graphs: nothing computed, shared tasks once."""

from __future__ import annotations

import itertools
from typing import Any

import dask
import dask.array as da
import dask.bag as db
import numpy as np
import pytest

from daskflow.collections.graph_parts import split_graph


def test_shared_tasks_are_kept_once_and_nothing_is_computed_while_cutting() -> None:
    calls: list[str] = []

    def load() -> list[int]:
        calls.append("load")
        return list(range(10))

    source = dask.delayed(load)()
    bag = db.from_delayed([dask.delayed(lambda xs, i: xs[i::3])(source, i) for i in range(3)])
    split = split_graph(bag)
    assert calls == []
    assert len(split.shared) == 1  # the load task, which all three partitions need
    assert all(key not in part.graph for part in split.parts for key in split.shared)
    assert [part.compute(split.shared) for part in split.parts] == \
        [list(range(i, 10, 3)) for i in range(3)]


@pytest.mark.parametrize("shape,chunks", [((10,), (3,)), ((7, 5), (3, 2)),
                                          ((6, 4, 3), (4, 3, 2))])
def test_array_bands_and_blocks(shape: tuple[int, ...], chunks: tuple[int, ...]) -> None:
    x = np.arange(int(np.prod(shape))).reshape(shape)
    arr = da.from_array(x, chunks=chunks)
    bands = split_graph(arr)
    got = [part.compute(bands.shared) for part in bands.parts]
    assert [len(b) for b in got] == list(arr.chunks[0])
    assert [part.rows for part in bands.parts] == list(arr.chunks[0])
    np.testing.assert_array_equal(np.concatenate(got), x)
    blocks = split_graph(arr, "block")
    expected: list[Any] = [block.compute() for block in arr.to_delayed().ravel()]
    assert len(blocks.parts) == len(list(itertools.product(*arr.chunks)))
    for part, want in zip(blocks.parts, expected):
        np.testing.assert_array_equal(part.compute(blocks.shared), want)
