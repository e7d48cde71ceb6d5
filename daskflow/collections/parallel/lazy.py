"""``parallel_map(func, items, lazy=True)``: a ``dask.bag.Bag`` of the results, not a list.

Nothing runs when it is called: the bag has one partition per partition of the map
(the same partitions ``parallel_map`` would send as futures), so the results can feed
further Dask work (``.filter``, ``.to_dataframe``, ``.to_textfiles``, another map) and
be computed once, on whichever scheduler computes the bag.

- A Dask collection keeps its own graph: each partition of the bag takes one of its
  partitions (a DataFrame's, a bag's, an array's band or block) as its input task, so
  Dask computes it on the worker that maps it, and tasks they share run once.
- Any other input is cut as ``parallel_map`` cuts it (a ``range`` into ranges, a list
  into pickled slices) when the bag is built; a generator is read then, whole.

The function is pickled once, into one task of the graph that every partition reads.
A failure raises :class:`~.errors.ParallelMapError` from ``compute()``, naming the item.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any

from ..graph_parts import ARRAY, BAG, collection_kind
from .partitions import Input
from .pickling import pickle_func
from .worker import run_lazy_partition, run_partition


def lazy_bag(func: Callable[[Any], Any], data: Input, batch_size: int | None) -> Any:
    """The results of mapping ``func`` over ``data`` as a lazy ``dask.bag.Bag``."""
    import dask
    import dask.bag as db

    token = uuid.uuid4().hex
    name = getattr(func, "__name__", "func").replace("<", "").replace(">", "") or "func"
    pickled = dask.delayed(pickle_func(func), name=f"parallel_map-func-{name}-{token}")
    if data.kind == "dask":
        parts = [dask.delayed(run_lazy_partition, pure=False)(
            number, start, value, whole, token=token, pickled_func=pickled)
            for number, start, value, whole in _inputs(data.source, data.per)]
    else:
        parts = [dask.delayed(run_partition, pure=False)(
            part.start, part.payload, token=token, pickled_func=pickled, as_bytes=False)
            for part in data.partitions(batch_size, _threads())]
    if not parts:
        return db.from_sequence([], npartitions=1)
    return db.from_delayed(parts)


def _inputs(value: Any, per: str) -> list[tuple[int, int | None, Any, bool]]:
    """(number, start, partition as a dask object, whole) for each partition of ``value``."""
    kind = collection_kind(value)
    if per != "item":
        cells = value.to_delayed()
        cells = list(cells.ravel()) if kind == ARRAY else list(cells)
        return [(i, i, cell, True) for i, cell in enumerate(cells)]
    if kind == BAG:
        return [(i, None, cell, False) for i, cell in enumerate(value.to_delayed())]
    out, start = [], 0  # an array's rows: its bands along axis 0, each one numpy array
    for i, rows in enumerate(value.chunks[0]):
        out.append((i, start, value.blocks[i], False))
        start += rows
    return out


def _threads() -> int:
    """Worker threads to size the partitions for: the current client's, else this host's."""
    try:
        from distributed import default_client
        return max(1, sum(default_client().nthreads().values()))
    except (ImportError, ValueError):
        return os.cpu_count() or 1
