"""``parallel_map`` and ``parallel_imap_unordered``: Metaflow's helpers, run on Dask.

Inside a step they use the cluster the step runs on (through
``distributed.worker_client()``, so the step's own worker thread is handed
back while the map runs and cannot deadlock the cluster); outside a flow
they use the current Dask client, or start a ``LocalCluster`` for the call
and close it afterwards.

Items travel in partitions, never one task per item, and never as literals
in the task graph (the scheduler walks every literal: ten million ints cost
seconds of graph handling before any work):

- a ``range`` is cut into ``range`` slices of a few bytes each; the workers
  build their items;
- a list, tuple or array is cut into slices, each pickled once on the
  caller's side into one ``bytes`` payload (opaque to the scheduler); a big
  one (over 1 MB) goes through a file in ``/dev/shm`` that its worker reads
  when the workers are on this machine (checked), or is scattered to the
  workers otherwise.  The first partitions run while the rest are pickled;
- a set, dict or other sized collection is read in slices the same way;
- any other iterable (generators included) is read lazily, one partition at
  a time, with at most a few partitions in flight, so it is never held in
  memory whole.

Results come back pickled as one ``bytes`` per partition.  The function is
pickled once (cloudpickle: lambdas and closures work) and unpickled once per
worker, however many partitions there are.

>>> from daskflow.collections import parallel_map
>>> parallel_map(lambda x: x * x, range(5))                        # doctest: +SKIP
[0, 1, 4, 9, 16]
"""

from __future__ import annotations

import contextlib
import itertools
import linecache
import math
import os
import pickle
import re
import reprlib
import shutil
import sys
import tempfile
import threading
import traceback
import uuid
from collections import OrderedDict
from collections.abc import (
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    MappingView,
    Sequence,
    Set,
    Sized,
)
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import cloudpickle

from ..exceptions import DaskflowException

__all__ = ["ParallelMapError", "ParallelMapInputError", "parallel_imap_unordered",
           "parallel_map"]

# Sizing.  A partition costs the scheduler about a millisecond; these keep that
# small next to any real work while leaving enough partitions to balance load.
# The first two (and "shared-folder") can be set in dask.config under
# ``daskflow.parallel-map``: partitions-per-thread, min-partitions.
PARTITIONS_PER_THREAD = 4     # at least this many partitions per worker thread ...
MIN_PARTITIONS = 100          # ... and at least this many (unless there are fewer items)
LOOKAHEAD = 1024              # items read from an iterable of unknown length to size it
STREAM_WINDOW_PER_THREAD = 2  # partitions in flight per thread for such an iterable
FUNC_INLINE_LIMIT = 64 * 1024  # a pickled func above this is scattered once, not inlined
PAYLOAD_LIMIT = 1 << 20       # a pickled partition above this does not go into the graph
MESSAGE_LIMIT = 2000          # characters of the original exception's message kept


# -- errors ------------------------------------------------------------------------------

class ParallelMapError(DaskflowException, RuntimeError):
    """``func`` raised on one item (or the worker running it died); the map was cancelled.

    Attributes
    ----------
    index : int or None
        Position of the failing item in the input (None: not known, e.g. a
        worker died; the message then gives the range of items it held).
    type_name, message, traceback_text : str
        The original exception's type name, message and traceback on the worker.
    item_repr : str or None
        A shortened ``repr`` of the item.

    The original exception is the ``__cause__`` when it could be unpickled
    here, with the worker's traceback attached as a note.

    >>> try:                                                        # doctest: +SKIP
    ...     parallel_map(lambda x: 1 / x, [1, 0])
    ... except ParallelMapError as exc:
    ...     print(exc.index, exc.type_name)
    1 ZeroDivisionError
    """

    headline = "parallel_map failed"

    def __init__(self, index: int | None, type_name: str, message: str,
                 traceback_text: str = "", item_repr: str | None = None,
                 detail: str | None = None, original: bytes | None = None) -> None:
        self.index = index
        self.type_name = type_name
        self.message = message
        self.traceback_text = traceback_text
        self.item_repr = item_repr
        self.detail = detail
        self._original = original
        if len(message) > MESSAGE_LIMIT:
            message = self.message = message[:MESSAGE_LIMIT] + "..."
        if detail is not None:
            text = detail
        else:
            what = f" = {item_repr}" if item_repr is not None else ""
            text = f"func raised {type_name} on items[{index}]{what}: {message}"
        super().__init__(f"parallel_map: {text} (the other items were cancelled)")

    @property
    def original(self) -> BaseException | None:
        """The exception ``func`` raised, unpickled here; None if it cannot be."""
        if self._original is None:
            return None
        try:
            exc = cloudpickle.loads(self._original)
        except Exception:
            return None
        return exc if isinstance(exc, BaseException) else None

    def __reduce__(self) -> Any:  # picklable whatever the original was
        return (type(self), (self.index, self.type_name, self.message, self.traceback_text,
                             self.item_repr, self.detail, self._original))


class ParallelMapInputError(DaskflowException, ValueError):
    """``parallel_map`` was called wrongly, or its function or an item cannot be pickled."""

    headline = "parallel_map input error"


# -- on the workers ----------------------------------------------------------------------

_FUNCS: OrderedDict[str, Callable[[Any], Any]] = OrderedDict()
_FUNCS_LOCK = threading.Lock()


def _load_func(token: str, pickled: bytes) -> Callable[[Any], Any]:
    """The map's function, unpickled once per worker process (a closure may be big)."""
    with _FUNCS_LOCK:
        func = _FUNCS.get(token)
        if func is not None:
            _FUNCS.move_to_end(token)
            return func
    func = cloudpickle.loads(pickled)
    with _FUNCS_LOCK:
        _FUNCS[token] = func
        while len(_FUNCS) > 8:
            _FUNCS.popitem(last=False)
    return func


def _run_partition(start: int, payload: Any, *, token: str, pickled_func: bytes) -> bytes:
    """Apply the function to one partition's items (a range, or their pickle).

    The results go back pickled as one ``bytes``: distributed may serialize a
    returned list element by element, which for a million ints takes minutes.
    """
    func = _load_func(token, pickled_func)
    if isinstance(payload, _SharedFile):
        with open(payload.path, "rb") as f:
            payload = f.read()
    items = pickle.loads(payload) if isinstance(payload, bytes) else payload
    out: list[Any] = []
    append = out.append
    failure = None
    try:
        for item in items:
            append(func(item))
    except (Exception, SystemExit) as exc:
        failure = _item_failure(start + len(out), item, exc)
    if failure is not None:
        # Raised outside the except block: distributed pickles the whole chain of
        # an exception (tblib), and the user's exception may not pickle.
        raise failure
    try:
        return _dumps(out)
    except _Unpicklable as bad:
        cause = bad.cause
        if bad.offset is None:
            failure = ParallelMapError(start, type(cause).__name__, str(cause))
        else:
            index = start + bad.offset
            failure = ParallelMapError(
                index, type(cause).__name__, str(cause),
                detail=f"func's result for item {index} cannot be pickled to travel back "
                       f"({_short_repr(bad.value)}): {type(cause).__name__}: {cause}")
    raise failure  # outside the except block, as above


def _item_failure(index: int, item: Any, exc: BaseException) -> ParallelMapError:
    summary = traceback.TracebackException.from_exception(exc)
    frames = list(summary.stack)
    while len(frames) > 1 and frames[0].filename == __file__:
        frames.pop(0)  # start at the user's function
    summary.stack = traceback.StackSummary.from_list(frames)
    text = "".join(summary.format())
    try:
        original: bytes | None = cloudpickle.dumps(exc.with_traceback(None))
    except Exception:
        original = None
    return ParallelMapError(index, type(exc).__name__, str(exc), text, _short_repr(item),
                            original=original)


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6


def _short_repr(value: Any) -> str:
    try:
        return _REPR.repr(value)
    except Exception:
        return f"<{type(value).__name__}>"


# -- on the caller's side: cutting the input into partitions -----------------------------

@dataclass(frozen=True)
class _Partition:
    number: int
    start: int      # index of its first item in the input
    count: int
    payload: Any    # a range, or the pickled list of its items


@dataclass
class _Input:
    """The iterable, and what is known of it before any work starts."""

    length: int | None      # None: unknown (a generator longer than LOOKAHEAD)
    kind: str               # "range" | "slice" | "iter" (known length) | "stream"
    source: Any             # the range / sequence / iterator
    head: list[Any]         # items already read from a stream

    @classmethod
    def of(cls, iterable: Iterable[Any]) -> _Input:
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
        head = list(itertools.islice(it, LOOKAHEAD))
        if len(head) < LOOKAHEAD:
            return cls(len(head), "slice", head, [])
        return cls(None, "stream", it, head)

    def partitions(self, size: int | None,
                   threads: int) -> Generator[_Partition, None, None]:
        """Partitions of ``size`` items (None: sized for ``threads`` worker threads)."""
        if self.length is None:
            yield from self._stream(size, threads)
            return
        size = size or _auto_size(self.length, threads)
        if self.kind == "iter":
            items = iter(self.source)
            for number in itertools.count():
                chunk = list(itertools.islice(items, size))
                if not chunk:
                    return
                yield _Partition(number, number * size, len(chunk),
                                 _pickle_items(chunk, number * size))
        for number, start in enumerate(range(0, self.length, size)):
            count = min(size, self.length - start)
            if self.kind == "range":  # a few bytes: the worker makes the items
                yield _Partition(number, start, count, self.source[start:start + count])
            else:
                chunk = self.source[start:start + count]
                yield _Partition(number, start, count, _pickle_items(chunk, start))

    def _stream(self, size: int | None, threads: int) -> Iterator[_Partition]:
        # Unknown length: partitions grow with what has been seen, so a long stream
        # makes O(threads * log(n)) partitions while a short one still spreads out.
        first = size or _auto_size(LOOKAHEAD, threads)
        items = itertools.chain(self.head, self.source)
        self.head = []
        start = 0
        for number in itertools.count():
            count = size or max(first, start // (PARTITIONS_PER_THREAD * threads))
            chunk = list(itertools.islice(items, count))
            if not chunk:
                return
            yield _Partition(number, start, len(chunk), _pickle_items(chunk, start))
            start += len(chunk)


def _is_array(value: Any) -> bool:
    # numpy/cupy/pandas-like arrays: len, slicing and iteration all follow rows.
    return hasattr(value, "shape") and hasattr(value, "dtype") and \
        getattr(value, "ndim", 0) >= 1 and hasattr(value, "__getitem__")


def _auto_size(length: int, threads: int) -> int:
    per_thread = int(_setting("partitions-per-thread", PARTITIONS_PER_THREAD))
    partitions = min(length, max(per_thread * threads,
                                 int(_setting("min-partitions", MIN_PARTITIONS))))
    return max(1, math.ceil(length / max(1, partitions)))


def _pickle_items(chunk: Any, start: int) -> bytes:
    try:
        return _dumps(chunk)
    except _Unpicklable as bad:
        cause = bad.cause
        if bad.offset is None:
            raise ParallelMapInputError(
                f"parallel_map cannot pickle items {start}..{start + len(chunk) - 1}: "
                f"{type(cause).__name__}: {cause}") from cause
        raise ParallelMapInputError(
            f"parallel_map cannot send item {start + bad.offset} "
            f"({_short_repr(bad.value)}) to the Dask workers: it cannot be pickled "
            f"({type(cause).__name__}: {cause}). Pass data (or a path, a "
            f"key) instead of objects tied to this process.") from cause


class _Unpicklable(Exception):
    """Neither pickle nor cloudpickle can dump a list; ``offset`` names the first value
    that fails alone (None when each one pickles by itself)."""

    def __init__(self, offset: int | None, value: Any, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.offset, self.value, self.cause = offset, value, cause


def _dumps(values: Any) -> bytes:
    """``values`` (items going out, results coming back) as bytes: plain pickle, else
    cloudpickle (lambdas, local classes, ...), else :class:`_Unpicklable`."""
    try:
        return pickle.dumps(values, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        pass
    try:
        return cloudpickle.dumps(values, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        for offset, value in enumerate(values):
            try:
                cloudpickle.dumps(value)
            except Exception as value_exc:
                raise _Unpicklable(offset, value, value_exc) from None
        raise _Unpicklable(None, None, exc) from None


# -- shipping big partitions ---------------------------------------------------------------

class _SharedFile(NamedTuple):
    """A partition's pickled items in a file its worker reads itself (same machine)."""

    path: str


class _SharedFolder:
    """A temporary folder the caller and the workers all see: big partitions go there.

    On one machine (a LocalCluster, or a step of a local run) a file in
    ``/dev/shm`` costs a memory copy; scattering the same bytes costs a round
    trip through the scheduler for every group of partitions, with every byte
    copied by the event loops of the caller and the scheduler.  Whether the
    workers see the folder is checked, not guessed, and the tasks that read it
    are pinned to the workers that do.
    """

    def __init__(self, path: str, workers: list[str]) -> None:
        self.path = path
        self.workers = workers
        self.count = 0

    @classmethod
    def open(cls, client: Any) -> _SharedFolder | None:
        """A new folder, or None where the workers cannot see one (or it is turned off)."""
        setting = _setting("shared-folder", "auto")
        if setting in (False, None, "false", "off"):
            return None
        if setting == "auto":
            setting = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
        try:
            path = tempfile.mkdtemp(prefix="daskflow-parallel-map-", dir=str(setting))
        except OSError:
            return None
        probe = os.path.join(path, "probe")
        try:
            open(probe, "wb").close()
            seen = client.run(os.path.exists, probe)
        except Exception:
            seen = {}
        if not seen or not all(seen.values()):
            shutil.rmtree(path, ignore_errors=True)
            return None  # some worker is elsewhere: scatter instead
        return cls(path, sorted(seen))

    def put(self, data: bytes) -> _SharedFile | None:
        """The file now holding ``data``; None if it does not fit (a small /dev/shm)."""
        self.count += 1
        path = os.path.join(self.path, f"part-{self.count}")
        try:
            with open(path, "wb") as f:
                f.write(data)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(path)
            return None
        return _SharedFile(path)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _setting(key: str, default: Any) -> Any:
    """``daskflow.parallel-map.<key>`` from dask.config."""
    import dask.config

    return dask.config.get(f"daskflow.parallel-map.{key}", default=default)


# -- the cluster -------------------------------------------------------------------------

@contextmanager
def _cluster_client() -> Iterator[Any]:
    """The client to run on: the step's cluster, the current client, or a new local one."""
    from distributed import Client, get_worker, worker_client
    try:
        get_worker()
    except ValueError:
        pass
    else:
        # In a task (a step): hand this thread's slot back to the worker while the
        # map runs, so its partitions can use every thread, this worker's included.
        with worker_client() as client:
            yield client
        return
    try:
        client = Client.current(allow_global=True)
    except ValueError:
        pass
    else:
        if client.status == "running":
            yield client
            return
    with _local_cluster() as client:
        yield client


@contextmanager
def _local_cluster() -> Iterator[Any]:
    """A local cluster for one call, sized and started as a run's default one (workers
    forked from daskflow's fork server), with no dashboard: nobody would look."""
    from distributed import Client

    from ..clusters import get_backend
    from ..clusters.local import default_request

    with get_backend("local", dashboard_address="").open(default_request()) as cluster, \
            Client(cluster, set_as_default=False) as client:
        yield client


def _total_threads(client: Any) -> int:
    try:
        return max(1, sum(client.nthreads().values()))
    except Exception:
        return 1


# -- the engine --------------------------------------------------------------------------

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


def _pickle_func(func: Callable[[Any], Any]) -> bytes:
    try:
        return cloudpickle.dumps(func, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise ParallelMapInputError(
            f"parallel_map cannot send {_short_repr(func)} to the Dask workers: it cannot "
            f"be pickled ({type(exc).__name__}: {exc}). A function that captures a lock, "
            f"an open file, a client or a generator cannot travel; capture plain data "
            f"instead.") from exc


def _partitions_done(func: Callable[[Any], Any], data: _Input, max_parallel: int | None,
                     batch_size: int | None, ordered: bool
                     ) -> Generator[tuple[_Partition, list[Any]], None, None]:
    """Run the partitions on the cluster; yield each with its results as it finishes.

    ``ordered``: all results are wanted at once (parallel_map), so when nothing
    bounds the partitions in flight they are fetched together at the end.

    On a failure everything still pending is cancelled and a
    :class:`ParallelMapError` raised; so it is when the caller stops iterating.
    """
    from distributed import as_completed

    pickled_func = _pickle_func(func)
    token = uuid.uuid4().hex
    name = getattr(func, "__name__", "func").replace("<", "").replace(">", "") or "func"
    with _cluster_client() as client:
        threads = _total_threads(client)
        if max_parallel is not None:
            threads = min(threads, max_parallel)
        window = max_parallel
        if window is None and data.length is None:
            window = STREAM_WINDOW_PER_THREAD * threads  # keep a stream lazy
        func_arg: Any = pickled_func
        if len(pickled_func) > FUNC_INLINE_LIMIT:
            func_arg = client.scatter(pickled_func, hash=False)  # once, not per partition
        parts = data.partitions(batch_size, threads)
        running: dict[str, tuple[_Partition, Any]] = {}
        shared: list[_SharedFolder | None] = []  # opened at the first big partition
        gather_at_end = ordered and window is None
        done = as_completed(with_results=not gather_at_end, raise_errors=False,
                            loop=client.loop)

        def submit(count: int) -> int:
            """Send the next ``count`` partitions to the cluster as one graph."""
            group = list(itertools.islice(parts, count))
            if not group:
                return 0
            payloads = [p.payload for p in group]
            big = [i for i, p in enumerate(payloads)
                   if isinstance(p, bytes) and len(p) > PAYLOAD_LIMIT]
            if big and not shared:
                shared.append(_SharedFolder.open(client))
            folder = shared[0] if big else None
            if folder is not None:  # big payloads never enter the graph: a file ...
                for i in big:
                    payloads[i] = folder.put(payloads[i]) or payloads[i]
                big = [i for i in big if isinstance(payloads[i], bytes)]
            if big:  # ... or, from another machine, data scattered to the workers
                for i, future in zip(big, client.scatter([payloads[i] for i in big],
                                                         hash=False)):
                    payloads[i] = future
            futures = client.map(_run_partition, [p.start for p in group], payloads,
                                 token=token, pickled_func=func_arg, pure=False,
                                 key=[f"parallel_map-{name}-{token}-{p.number}"
                                      for p in group],
                                 workers=folder.workers if folder else None,
                                 allow_other_workers=False)
            for part, future in zip(group, futures):
                running[future.key] = (part, future)
            done.update(futures)
            return len(group)

        failure = None
        try:
            if window is not None:
                submit(window)
            else:  # everything: one partition per thread at once, then growing groups
                for _ in range(threads):
                    submit(1)
                group = threads
                while submit(group):
                    group *= 2
            if gather_at_end:
                # Everything is submitted: watch for the first error, then fetch
                # all results in one gather rather than one per partition.
                result = None
                for future in done:
                    if future.status != "finished":
                        part = running[future.key][0]
                        result = future.exception() if future.status == "error" else None
                        failure = _failure(future, result, part)
                        break
                else:
                    items = sorted(running.values(), key=lambda pf: pf[0].number)
                    blobs = client.gather([f for _, f in items])
                    running.clear()
                    for (part, _), blob in zip(items, blobs):
                        yield part, pickle.loads(blob)
            else:
                for future, result in done:
                    part, _ = running.pop(future.key)
                    if future.status != "finished":
                        failure = _failure(future, result, part)
                        break
                    yield part, pickle.loads(result)
                    if window is not None:
                        submit(1)
        finally:
            pending = [f for _, f in running.values() if not f.done()]
            if pending:
                try:
                    client.cancel(pending)
                except Exception:
                    pass  # the cluster is going away already
            parts.close()
            done.clear()
            running.clear()
            if shared and shared[0] is not None:
                shared[0].close()  # a task still running has its file open already
        if failure is not None:
            # Hold no future in this frame (the exception's traceback keeps the
            # frame), so the scheduler forgets the failed task.
            del future, result, func_arg
            raise failure


def _failure(future: Any, result: Any, part: _Partition) -> ParallelMapError:
    exc = result[1] if isinstance(result, tuple) and len(result) == 3 else result
    if isinstance(exc, ParallelMapError):
        return exc
    where = f"items {part.start}..{part.start + part.count - 1}"
    if future.status == "cancelled" or exc is None:
        return ParallelMapError(None, "CancelledError", "cancelled",
                                detail=f"the partition holding {where} was cancelled")
    type_name = type(exc).__name__
    if type_name == "KilledWorker":
        return ParallelMapError(
            None, "WorkerDied", str(exc),
            detail=f"the worker running {where} died (killed, crashed, or out of memory): "
                   f"{exc}")
    return ParallelMapError(None, type_name, str(exc),
                            detail=f"{where} could not run: {type_name}: {exc}")


def _raise(exc: ParallelMapError, func: Callable[[Any], Any]) -> None:
    exc.traceback_text = _with_source(exc.traceback_text, func)
    original = exc.original
    if original is not None and exc.traceback_text and hasattr(original, "add_note"):
        original.add_note("Traceback on the Dask worker:\n" + exc.traceback_text.rstrip())
    raise exc from original


def _with_source(text: str, func: Callable[[Any], Any]) -> str:
    """Put the real file name and source lines back into a worker's traceback.

    Code pickled by value (``__main__``, a flow file) is ``<dynamic-code>`` on
    the worker; its line numbers are right, so the caller's file is named again.
    """
    filename = getattr(getattr(func, "__code__", None), "co_filename", "")
    if "<dynamic-code>" not in text or not filename or not os.path.exists(filename):
        return text
    lines = []
    for line in text.splitlines(keepends=True):
        match = re.match(r'  File "<dynamic-code>", line (\d+), in (.*)', line)
        if match is None:
            lines.append(line)
            continue
        lines.append(f'  File "{filename}", line {match[1]}, in {match[2]}\n')
        source = linecache.getline(filename, int(match[1])).strip()
        if source:
            lines.append(f"    {source}\n")
    return "".join(lines)


# -- the public functions ----------------------------------------------------------------

def parallel_map(func: Callable[[Any], Any], iterable: Iterable[Any],
                 max_parallel: int | None = None,
                 batch_size: int | None = None) -> list[Any]:
    """Apply ``func`` to every item in parallel on Dask; return the results in input order.

    Parameters
    ----------
    func : callable
        Takes one item. Lambdas and closures work (they travel with cloudpickle).
    iterable : iterable
        A ``range`` is cut into small ranges built on the workers; a list,
        tuple or array into slices shipped once each; anything else (a
        generator) is read lazily, a partition at a time.
    max_parallel : int, optional
        At most this many partitions run at once (default: as many as the
        cluster has threads).
    batch_size : int, optional
        Items per partition (one Dask task). Default: sized for the number of
        items and worker threads, at least 4 partitions per thread.

    Returns
    -------
    list
        ``[func(x) for x in iterable]``, computed in parallel.

    Raises
    ------
    ParallelMapError
        ``func`` raised on an item: the first failure seen, with the item's
        index; the rest of the work is cancelled. The original exception is
        its ``__cause__``.

    Inside a step this runs on the step's cluster; elsewhere on the current
    Dask client, or on a ``LocalCluster`` started for the call and closed after
    it (start a ``distributed.Client`` first to reuse one across calls).

    >>> from daskflow.collections import parallel_map
    >>> parallel_map(lambda x: x * x, range(10_000_000), batch_size=1_000_000)  # doctest: +SKIP
    """
    _check_args(func, max_parallel, batch_size)
    data = _Input.of(iterable)
    if data.length == 0:
        return []
    results: dict[int, list[Any]] = {}
    done = _partitions_done(func, data, max_parallel, batch_size, ordered=True)
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


def parallel_imap_unordered(func: Callable[[Any], Any], iterable: Iterable[Any],
                            max_parallel: int | None = None,
                            batch_size: int | None = None) -> Iterator[Any]:
    """Like :func:`parallel_map`, but yield results as they finish, in no set order.

    Results of one partition come together, in input order among themselves.
    When stderr is an interactive terminal (and not inside a step) a progress
    bar counts the items done. Stopping early (``break``, closing the
    iterator) cancels the work not yet done.

    >>> for result in parallel_imap_unordered(score, candidates):   # doctest: +SKIP
    ...     best = max(best, result)
    """
    _check_args(func, max_parallel, batch_size)
    data = _Input.of(iterable)
    if data.length == 0:
        return
    done = _partitions_done(func, data, max_parallel, batch_size, ordered=False)
    with _progress(data.length) as advance:
        try:
            for part, out in done:
                advance(part.count)
                yield from out
        except ParallelMapError as exc:
            _raise(exc, func)
        finally:
            done.close()  # stopped early: cancel what is still pending


@contextmanager
def _progress(total: int | None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr when it is a terminal (and not in a step); else nothing."""
    from ..current import current

    isatty = getattr(sys.stderr, "isatty", None)
    if current.is_running_flow or not (isatty and isatty()):
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns: list[Any] = [TextColumn("parallel_map"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("items"), TimeElapsedColumn()]
    if total is not None:
        columns.append(TimeRemainingColumn())
    with Progress(*columns, console=Console(file=sys.stderr), transient=False) as bar:
        task = bar.add_task("parallel_map", total=total)
        yield lambda n: bar.advance(task, n)
