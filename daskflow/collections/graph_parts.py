"""A Dask collection cut into its partitions' own task graphs, computed where they land.

A foreach split over a ``dask.bag`` or ``dask.array``, and a ``parallel_map`` task over
a bag, an array or a DataFrame, each needs one partition, computed on the worker that
runs it, never in the process that fans out.  :func:`split_graph` optimises the
collection's graph once and cuts it, without computing anything, into one
:class:`GraphPart` per partition holding only the tasks that partition needs; tasks
that several partitions need (an input they share) go into one shared graph, kept once.
:meth:`GraphPart.compute` runs a part with Dask's synchronous scheduler in the calling
thread.

What a partition is:

- a ``dask.bag.Bag``: a partition, computed as the list of its items;
- a ``dask.array.Array``: with ``per="band"``, the blocks along axis 0 (a chunk of rows
  over the whole width; an array chunked along other axes too has its blocks of each
  band joined into one numpy array); with ``per="block"``, every block on its own, in
  C order of the block grid (``arr.to_delayed().ravel()``);
- a dask ``DataFrame`` or ``Series``: a partition, as pandas.

>>> import dask.bag as db
>>> parts = split_graph(db.from_sequence(range(6), npartitions=3))
>>> [part.compute(parts.shared) for part in parts.parts]
[[0, 1], [2, 3], [4, 5]]
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any, NamedTuple

BAG, ARRAY, FRAME = "bag", "array", "frame"


class GraphPart(NamedTuple):
    """One partition's tasks (``graph``) and the key or nested keys it computes."""

    kind: str           # BAG, ARRAY or FRAME: how the computed keys become the value
    number: int
    graph: dict[Any, Any]
    keys: Any
    rows: int | None    # rows of an array band (its length along axis 0); else None

    def compute(self, shared: dict[Any, Any] | None = None) -> Any:
        """The partition's value, computed here with Dask's synchronous scheduler."""
        from dask.local import get_sync

        graph = {**shared, **self.graph} if shared else self.graph
        value = get_sync(graph, self.keys)
        if self.kind == BAG:
            return value if isinstance(value, list) else list(value)
        if self.kind == ARRAY and isinstance(self.keys, list):
            from dask.array.core import concatenate3
            return concatenate3([value])  # the band's blocks, side by side
        return value


class SplitGraph(NamedTuple):
    """The parts of one collection, and the tasks several of them need."""

    parts: list[GraphPart]
    shared: dict[Any, Any]


def collection_kind(value: Any) -> str | None:
    """BAG, ARRAY or FRAME for a dask collection of those kinds, else None.

    Looks only at modules already imported, so a plain value costs nothing.
    """
    if "dask" not in sys.modules:
        return None
    bag = sys.modules.get("dask.bag")
    if bag is not None and isinstance(value, bag.Bag):
        return BAG
    array = sys.modules.get("dask.array")
    if array is not None and isinstance(value, array.Array):
        return ARRAY
    frame = sys.modules.get("dask.dataframe")
    if frame is not None and isinstance(value, (frame.DataFrame, frame.Series)):
        return FRAME
    return None


def partition_count(value: Any, kind: str, per: str = "band") -> int:
    """How many parts :func:`split_graph` makes, without building any graph."""
    if kind == ARRAY:
        if not value.ndim:
            return 0
        if per == "block":
            count = 1
            for n in value.numblocks:
                count *= n
            return count
        return int(value.numblocks[0])
    return int(value.npartitions)


def split_graph(value: Any, per: str = "band") -> SplitGraph:
    """Cut ``value`` (a bag, array or DataFrame) into per-partition graphs; computes nothing.

    ``per`` matters for arrays only: ``"band"`` (blocks along axis 0) or ``"block"``.
    """
    kind = collection_kind(value)
    if kind is None:
        raise TypeError(f"not a dask collection: {type(value).__name__}")
    # to_delayed, not dask.optimize: it optimises a DataFrame's expression the way
    # compute() does (dask.optimize of one gave frames for a Series' partitions).
    delayed = value.to_delayed(optimize_graph=True)
    rows: list[int | None]
    if kind == ARRAY:
        cells = list(delayed.ravel())
        grid = _key_grid(delayed)
        if per == "block":
            keys: list[Any] = [cell.key for cell in cells]
            rows = [None] * len(keys)
        else:
            keys = grid
            rows = list(value.chunks[0])
    else:
        cells = list(delayed)
        keys = [cell.key for cell in cells]
        rows = [None] * len(keys)
    graph: dict[Any, Any] = {}
    seen_graphs: set[int] = set()
    for cell in cells:  # the cells of one collection share one graph
        cell_graph = cell.__dask_graph__()
        if id(cell_graph) not in seen_graphs:
            seen_graphs.add(id(cell_graph))
            graph.update(cell_graph)
    reach = [_reachable(graph, part_keys) for part_keys in keys]
    owners: dict[Any, int] = {}
    for number, needed in enumerate(reach):
        for key in needed:
            owners[key] = number if owners.get(key, number) == number else -1
    shared = {key: graph[key] for key, owner in owners.items() if owner == -1}
    parts = [GraphPart(kind, number, {key: graph[key] for key in needed if owners[key] != -1},
                       part_keys, rows[number])
             for number, (needed, part_keys) in enumerate(zip(reach, keys))]
    return SplitGraph(parts, shared)


def _key_grid(delayed: Any) -> list[Any]:
    """An array's ``to_delayed()`` grid as nested lists of keys, axis 0 outermost: the
    bands.  A 1-d array's band is one key; an n-d one's nests n-1 deep."""
    if delayed.ndim == 1:
        return [cell.key for cell in delayed]
    return [_key_grid(row) if row.ndim > 1 else [cell.key for cell in row] for row in delayed]


def _flat_keys(keys: Any) -> Iterator[Any]:
    if isinstance(keys, list):
        for key in keys:
            yield from _flat_keys(key)
    else:
        yield keys


def _reachable(graph: dict[Any, Any], keys: Any) -> set[Any]:
    """The keys that computing ``keys`` needs (themselves included)."""
    from dask.core import get_dependencies

    seen: set[Any] = set()
    stack = list(_flat_keys(keys))
    while stack:
        key = stack.pop()
        if key in seen:
            continue
        seen.add(key)
        stack.extend(dep for dep in get_dependencies(graph, key) if dep not in seen)
    return seen
