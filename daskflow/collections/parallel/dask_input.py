"""A Dask collection as parallel_map's input: one task per partition, computed on a worker.

``parallel_map(func, bag)`` maps the bag's items; ``per="partition"`` hands ``func``
each partition whole (a list for a bag, a pandas object for a DataFrame); a dask Array
gives its rows along axis 0, as a numpy array does, or each block with
``per="block"``.  The caller computes nothing: each partition's own tasks
(:mod:`daskflow.collections.graph_parts`) travel pickled, as a list's items do, and the
worker that runs the partition's task computes them before applying ``func``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from ..graph_parts import ARRAY, BAG, FRAME, GraphPart, partition_count, split_graph
from .errors import ParallelMapInputError
from .pickling import dumps

PER = ("item", "partition", "block")


class DaskPiece(NamedTuple):
    """A task's payload: a partition's tasks, and whether ``func`` takes it whole."""

    part: GraphPart
    whole: bool


def check_per(per: str | None, kind: str | None) -> str:
    """``per`` for a collection of ``kind`` (None: not a collection), or a clear error."""
    if per is not None and per not in PER:
        raise ParallelMapInputError(
            f"parallel_map: per={per!r} is not one of {PER}.")
    if kind is None:
        if per not in (None, "item"):
            raise ParallelMapInputError(
                f"parallel_map: per={per!r} applies to dask collections (a bag, an array, "
                f"a DataFrame); other inputs are mapped item by item: leave per out.")
        return "item"
    if kind == FRAME and per in (None, "item"):
        raise ParallelMapInputError(
            "parallel_map over a dask DataFrame or Series maps its partitions: pass "
            "per='partition' (func gets each pandas partition; iterating a DataFrame "
            "would give its column labels).")
    return per or "item"


def length_of(value: Any, kind: str, per: str) -> int | None:
    """How many items ``func`` gets; None for a bag's items (not known before computing)."""
    if per != "item":
        return partition_count(value, kind, "block")
    if kind == ARRAY:
        return int(value.shape[0]) if value.ndim else 0
    return None


def pieces(value: Any, kind: str, per: str) -> tuple[Iterator[tuple[int, int | None,
                                                                     int | None, bytes]],
                                                     dict[Any, Any]]:
    """(number, start, count, payload) per partition, and the tasks they share.

    ``start`` is the input index of the partition's first item: known for an array's
    rows and for whole partitions, None for a bag's items; so is ``count``.
    """
    if kind == ARRAY and value.ndim == 0:
        raise ParallelMapInputError("parallel_map needs an array with at least one axis.")
    split = split_graph(value, "block" if per != "item" else "band")
    whole = per != "item"

    def each() -> Iterator[tuple[int, int | None, int | None, bytes]]:
        start = 0
        for part in split.parts:
            if whole:
                yield part.number, part.number, 1, dumps(DaskPiece(part, True))
            elif kind == BAG:
                yield part.number, None, None, dumps(DaskPiece(part, False))
            else:
                rows = part.rows or 0
                yield part.number, start, rows, dumps(DaskPiece(part, False))
                start += rows

    return each(), split.shared
