"""The public functions: ``parallel_map`` and ``parallel_imap_unordered``."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal, overload

from ...tracebacks import restore_dynamic_code
from .engine import partitions_done
from .errors import ParallelMapError, ParallelMapInputError
from .lazy import lazy_bag
from .partitions import Input
from .progress import progress


@overload
def parallel_map(func: Callable[[Any], Any], iterable: Iterable[Any] | Any,
                 max_parallel: int | None = None, batch_size: int | None = None, *,
                 per: str | None = None, lazy: Literal[False] = False) -> list[Any]: ...


@overload
def parallel_map(func: Callable[[Any], Any], iterable: Iterable[Any] | Any,
                 max_parallel: int | None = None, batch_size: int | None = None, *,
                 per: str | None = None, lazy: Literal[True]) -> Any: ...


def parallel_map(func: Callable[[Any], Any], iterable: Iterable[Any] | Any,
                 max_parallel: int | None = None, batch_size: int | None = None, *,
                 per: str | None = None, lazy: bool = False) -> Any:
    """Apply ``func`` to every item in parallel on Dask; return the results in input order.

    Parameters
    ----------
    func : callable
        Takes one item. Lambdas and closures work (they travel with cloudpickle).
    iterable : iterable or dask collection
        A ``range`` is cut into small ranges built on the workers; a list,
        tuple or array into slices shipped once each; anything else (a
        generator) is read lazily, a partition at a time.  A ``dask.bag.Bag``,
        ``dask.array.Array`` or dask ``DataFrame``/``Series`` goes one partition
        per task, each computed on the worker that maps it, never here.
    max_parallel : int, optional
        At most this many partitions run at once (default: as many as the
        cluster has threads).
    batch_size : int, optional
        Items per partition (one Dask task). Default: sized for the number of
        items and worker threads, at least 4 partitions per thread
        (``daskflow.parallel-map`` in dask.config sets these).  A Dask
        collection keeps its own partitions (repartition it instead).
    per : {"item", "partition", "block"}, optional
        For a Dask collection, what ``func`` takes: ``"item"`` (the default) the
        items of a bag or the rows (along axis 0) of an array; ``"partition"``
        (or ``"block"``) each partition whole: a bag's list, a DataFrame's pandas
        partition (a DataFrame needs it), an array's blocks in C order of its
        block grid.
    lazy : bool
        Return a lazy ``dask.bag.Bag`` of the results instead of a list: nothing
        runs until it is computed, and it can feed further Dask work.

    Returns
    -------
    list
        ``[func(x) for x in iterable]``, computed in parallel (a ``dask.bag.Bag``
        of them with ``lazy=True``).

    Raises
    ------
    ParallelMapError
        ``func`` raised on an item: the first failure seen, with the item's
        index; the rest of the work is cancelled. The original exception is
        its ``__cause__``.

    Inside a step this runs on the step's cluster; elsewhere on the current
    Dask client, or on one ``LocalCluster`` the process starts on first use
    (its dashboard link printed once) and closes when it exits.

    >>> from daskflow.collections import parallel_map
    >>> parallel_map(lambda x: x * x, range(10_000_000), batch_size=1_000_000)  # doctest: +SKIP
    >>> parallel_map(len, ddf, per="partition")                     # doctest: +SKIP
    [2500, 2500, 2500, 2500]
    >>> parallel_map(score, bag, lazy=True).filter(good).count().compute()  # doctest: +SKIP
    """
    _check_args(func, max_parallel, batch_size)
    data = Input.of(iterable, per)
    _check_batch_size(data, batch_size)
    if lazy:
        return lazy_bag(func, data, batch_size)
    if data.length == 0:
        return []
    results: dict[int, list[Any]] = {}
    done = partitions_done(func, data, max_parallel, batch_size, ordered=True)
    try:
        for part, out in done:
            results[part.number] = out
    except ParallelMapError as exc:
        _raise(exc, func)
    finally:
        done.close()
    if len(results) == 1:
        return results[0]
    return list(itertools.chain.from_iterable(results[k] for k in range(len(results))))


def parallel_imap_unordered(func: Callable[[Any], Any], iterable: Iterable[Any] | Any,
                            max_parallel: int | None = None,
                            batch_size: int | None = None, *,
                            per: str | None = None) -> Iterator[Any]:
    """Like :func:`parallel_map`, but yield results as they finish, in no set order.

    Results of one partition come together, in input order among themselves.
    When stderr is an interactive terminal (and not inside a step) a progress
    bar counts the items done. Stopping early (``break``, closing the
    iterator) cancels the work not yet done.

    >>> for result in parallel_imap_unordered(score, candidates):   # doctest: +SKIP
    ...     best = max(best, result)
    """
    _check_args(func, max_parallel, batch_size)
    data = Input.of(iterable, per)
    _check_batch_size(data, batch_size)
    if data.length == 0:
        return
    done = partitions_done(func, data, max_parallel, batch_size, ordered=False)
    with progress(data.length) as advance:
        try:
            for part, out in done:
                advance(len(out))
                yield from out
        except ParallelMapError as exc:
            _raise(exc, func)
        finally:
            done.close()  # stopped early: cancel what is still pending


def _check_args(func: Any, max_parallel: Any, batch_size: Any) -> None:
    if not callable(func):
        raise ParallelMapInputError(
            f"parallel_map's first argument must be a function, got "
            f"{type(func).__name__}: parallel_map(func, items).")
    for name, value in (("max_parallel", max_parallel), ("batch_size", batch_size)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < 1):
            raise ParallelMapInputError(
                f"parallel_map: {name} must be a whole number of at least 1 (or None), "
                f"got {value!r}.")


def _check_batch_size(data: Input, batch_size: int | None) -> None:
    if batch_size is not None and data.kind == "dask":
        raise ParallelMapInputError(
            f"parallel_map: batch_size={batch_size} does not apply to a "
            f"{type(data.source).__name__}: it is mapped one of its partitions per task. "
            f"Repartition it instead (bag.repartition(n), arr.rechunk(...)).")


def _raise(exc: ParallelMapError, func: Callable[[Any], Any]) -> None:
    """Raise ``exc`` from the original exception, its traceback naming ``func``'s file."""
    # Code pickled by value (``__main__``, a flow file) is ``<dynamic-code>`` on the worker.
    filename = getattr(getattr(func, "__code__", None), "co_filename", "")
    if filename and os.path.exists(filename):
        exc.traceback_text = restore_dynamic_code(exc.traceback_text, filename)
    original = exc.original
    if original is not None and exc.traceback_text and hasattr(original, "add_note"):
        original.add_note("Traceback on the Dask worker:\n" + exc.traceback_text.rstrip())
    raise exc from original
