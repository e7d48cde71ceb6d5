"""On the caller's side: cutting the input into partitions, lazily.

A ``range`` is cut into ``range`` slices (a few bytes; the workers build the
items); a list, tuple or array into slices pickled one at a time; a set, dict
or other sized collection is read in slices; any other iterable (generators
included) is read one partition at a time, its length unknown; a Dask collection
(``dask_input``) goes one partition per task, each computed on its worker.

Sizes come from ``daskflow.parallel-map`` in dask.config: at least
``partitions-per-thread`` partitions per worker thread and ``min-partitions``
in all (unless there are fewer items); a partition costs the scheduler about a
millisecond, so this keeps it small next to any real work while leaving
enough partitions to balance the load.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import (
    Generator,
    Iterable,
    Iterator,
    Mapping,
    MappingView,
    Sequence,
    Set,
    Sized,
)
from dataclasses import dataclass
from typing import Any, cast

from ... import config
from ..graph_parts import collection_kind
from .dask_input import check_per, length_of, pieces
from .errors import ParallelMapInputError
from .pickling import pickle_items


@dataclass(frozen=True)
class Partition:
    number: int
    start: int | None   # index of its first item in the input (None: a bag's, not known)
    count: int | None   # None: a bag partition's, not known before it is computed
    payload: Any        # a range, the pickled list of its items, or a pickled DaskPiece


@dataclass
class Input:
    """The iterable, and what is known of it before any work starts."""

    length: int | None      # None: unknown (a generator longer than the lookahead, a bag)
    kind: str               # "range" | "slice" | "iter" (known length) | "stream" | "dask"
    source: Any             # the range / sequence / iterator / dask collection
    head: list[Any]         # items already read from a stream
    per: str = "item"       # a dask collection's: "item", "partition" or "block"
    shared: dict[Any, Any] | None = None  # tasks several partitions of a collection need

    @classmethod
    def of(cls, iterable: Iterable[Any], per: str | None = None) -> Input:
        kind = collection_kind(iterable)
        per = check_per(per, kind)
        if kind is not None:
            return cls(length_of(iterable, kind, per), "dask", iterable, [], per)
        if isinstance(iterable, range):
            return cls(len(iterable), "range", iterable, [])
        if isinstance(iterable, (list, tuple)) or _is_array(iterable):
            return cls(len(cast(Sized, iterable)), "slice", iterable, [])
        if isinstance(iterable, (Sequence, Set, Mapping, MappingView)):
            # These promise that iterating gives len() items (a DataFrame does not).
            return cls(len(iterable), "iter", iterable, [])
        try:
            it = iter(iterable)
        except TypeError:
            raise ParallelMapInputError(
                f"parallel_map needs an iterable of items (a list, range, generator, ...), "
                f"got {type(iterable).__name__}.") from None
        lookahead = _lookahead()
        head = list(itertools.islice(it, lookahead))
        if len(head) < lookahead:
            return cls(len(head), "slice", head, [])
        return cls(None, "stream", it, head)

    def partitions(self, size: int | None,
                   threads: int) -> Generator[Partition, None, None]:
        """Partitions of ``size`` items (None: sized for ``threads`` worker threads)."""
        if self.kind == "dask":  # its own partitions; the shared tasks are known after
            each, self.shared = pieces(self.source, collection_kind(self.source) or "",
                                       self.per)
            for number, start, count, payload in each:
                yield Partition(number, start, count, payload)
            return
        if self.length is None:
            yield from self._stream(size, threads)
            return
        size = size or auto_size(self.length, threads)
        if self.kind == "iter":
            yield from self._read(size)
            return
        for number, start in enumerate(range(0, self.length, size)):
            count = min(size, self.length - start)
            chunk = self.source[start:start + count]
            if self.kind == "range":  # a few bytes: the worker makes the items
                yield Partition(number, start, count, chunk)
            else:
                yield Partition(number, start, count, pickle_items(chunk, start))

    def _read(self, size: int) -> Iterator[Partition]:
        items = iter(self.source)
        for number in itertools.count():
            chunk = list(itertools.islice(items, size))
            if not chunk:
                return
            yield Partition(number, number * size, len(chunk),
                            pickle_items(chunk, number * size))

    def _stream(self, size: int | None, threads: int) -> Iterator[Partition]:
        # Unknown length: partitions grow with what has been seen, so a long stream
        # makes O(threads * log(n)) partitions while a short one still spreads out.
        first = size or auto_size(_lookahead(), threads)
        per_thread = int(config.get("parallel-map.partitions-per-thread"))
        items = itertools.chain(self.head, self.source)
        self.head = []
        start = 0
        for number in itertools.count():
            count = size or max(first, start // (per_thread * threads))
            chunk = list(itertools.islice(items, count))
            if not chunk:
                return
            yield Partition(number, start, len(chunk), pickle_items(chunk, start))
            start += len(chunk)


def auto_size(length: int, threads: int) -> int:
    """Items per partition for ``length`` items on ``threads`` worker threads."""
    per_thread = int(config.get("parallel-map.partitions-per-thread"))
    partitions = min(length, max(per_thread * threads,
                                 int(config.get("parallel-map.min-partitions"))))
    return max(1, math.ceil(length / max(1, partitions)))


def _lookahead() -> int:
    """Items read from an iterable of unknown length to size it."""
    return int(config.get("parallel-map.lookahead"))


def _is_array(value: Any) -> bool:
    # numpy/cupy/pandas-like arrays: len, slicing and iteration all follow rows.
    return hasattr(value, "shape") and hasattr(value, "dtype") and \
        getattr(value, "ndim", 0) >= 1 and hasattr(value, "__getitem__")
