"""The engine: partitions go to the cluster as batched futures, results come back.

Partitions go out with ``client.map`` in a few growing groups (the first ones
run while the rest are pickled), or a window at a time where something bounds
them (``max_parallel``, an input of unknown length).  Errors are watched with
``as_completed``; when all results are wanted at once they come back in one
gather.  On a failure, or when the caller stops early, what is still pending
is cancelled.
"""

from __future__ import annotations

import itertools
import pickle
import uuid
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from typing import Any

from dask.utils import parse_bytes

from ... import config
from ...dask_client import cluster_client, erred_with
from .errors import ParallelMapError
from .partitions import Input, Partition
from .pickling import dumps, pickle_func
from .session import session_client
from .transport import Transport
from .worker import run_partition

Done = Generator[tuple[Partition, list[Any]], None, None]
# A partition's results as they come; at the end, the first failure (None: none).
Results = Generator[tuple[Partition, list[Any]], None, ParallelMapError | None]


def partitions_done(func: Callable[[Any], Any], data: Input, max_parallel: int | None,
                    batch_size: int | None, ordered: bool) -> Done:
    """Run the partitions on the cluster; yield each with its results as it finishes.

    ``ordered``: all results are wanted at once (parallel_map), so when nothing
    bounds the partitions in flight they are fetched together at the end.

    On a failure everything still pending is cancelled and a
    :class:`ParallelMapError` raised; so it is when the caller stops iterating.
    """
    pickled_func = pickle_func(func)  # before any cluster starts: it may not pickle
    with _cluster_client() as client:
        run = _MapRun(client, func, pickled_func, data, max_parallel, batch_size, ordered)
        try:
            failure = yield from run.results()
        finally:
            run.close()
        # Hold no future in this frame (the exception's traceback keeps the frame),
        # so the scheduler forgets the failed task.
        del run
        if failure is not None:
            raise failure


@contextmanager
def _cluster_client() -> Iterator[Any]:
    """The client to run on: the step's cluster, the caller's client, or the process's
    own local cluster (session.py)."""
    with cluster_client() as client:
        if client is not None:
            yield client
            return
    with session_client() as client:
        yield client


class _MapRun:
    """One map on one cluster: what is in flight, and how the next partitions go out."""

    def __init__(self, client: Any, func: Callable[[Any], Any], pickled_func: bytes,
                 data: Input, max_parallel: int | None, batch_size: int | None,
                 ordered: bool) -> None:
        from distributed import as_completed

        from ...remote.calls import calls_here

        self.client = client
        self.calls = calls_here()  # a step on a shared scheduler: its run's own code
        self.token = uuid.uuid4().hex
        self.name = getattr(func, "__name__", "func").replace("<", "").replace(">", "") \
            or "func"
        self.threads = _total_threads(client)
        if max_parallel is not None:
            self.threads = min(self.threads, max_parallel)
        self.window = max_parallel
        if self.window is None and data.length is None and data.kind != "dask":
            # keep a stream lazy (a bag's partitions are known: they all go out)
            self.window = int(config.get("parallel-map.stream-window-per-thread")) * \
                self.threads
        self.gather_at_end = ordered and self.window is None
        self.func_arg: Any = self._inline_or_scattered(pickled_func)
        self.data = data
        self.shared_arg: Any = None  # a collection's shared tasks, once they are known
        self.transport = Transport(client)
        self.running: dict[str, tuple[Partition, Any]] = {}
        self.done = as_completed(with_results=not self.gather_at_end, raise_errors=False,
                                 loop=client.loop)
        self.parts = data.partitions(batch_size, self.threads)  # lazy: nothing read yet

    def results(self) -> Results:
        """Yield each partition with its results; return the first failure, if any."""
        if self.window is not None:
            self.submit(self.window)
        else:  # everything: one partition per thread at once, then growing groups
            for _ in range(self.threads):
                self.submit(1)
            group = self.threads
            while self.submit(group):
                group *= 2
        if self.gather_at_end:
            return (yield from self._gathered())
        return (yield from self._as_completed())

    def _inline_or_scattered(self, blob: bytes) -> Any:
        """``blob`` as it is, or scattered once when too big to go into every task."""
        if len(blob) > parse_bytes(config.get("parallel-map.func-inline-limit")):
            return self.client.scatter(blob, hash=False)
        return blob

    def submit(self, count: int) -> int:
        """Send the next ``count`` partitions to the cluster as one graph."""
        group = list(itertools.islice(self.parts, count))
        if not group:
            return 0
        payloads, workers = self.transport.send([p.payload for p in group])
        extra = {}
        if self.data.shared:
            if self.shared_arg is None:
                self.shared_arg = self._inline_or_scattered(dumps(self.data.shared))
            extra["shared"] = self.shared_arg
        futures = self.calls.map(
            self.client, run_partition, [p.start for p in group], payloads,
            kwargs={"token": self.token, "pickled_func": self.func_arg, **extra},
            keys=[f"parallel_map-{self.name}-{self.token}-{p.number}" for p in group],
            workers=workers, allow_other_workers=False)
        for part, future in zip(group, futures):
            self.running[future.key] = (part, future)
        self.done.update(futures)
        return len(group)

    def _as_completed(self) -> Results:
        for future, result in self.done:
            part, _ = self.running.pop(future.key)
            if future.status != "finished":
                return _failure(future, result, part)
            yield part, pickle.loads(result)
            if self.window is not None:
                self.submit(1)
        return None

    def _gathered(self) -> Results:
        # Everything is submitted: watch for the first error, then fetch all
        # results in one gather rather than one per partition.
        for future in self.done:
            if future.status != "finished":
                part = self.running[future.key][0]
                return _failure(future, erred_with(future), part)
        items = sorted(self.running.values(), key=lambda pf: pf[0].number)
        blobs = self.client.gather([f for _, f in items])
        self.running.clear()
        for (part, _), blob in zip(items, blobs):
            yield part, pickle.loads(blob)
        return None

    def close(self) -> None:
        """Cancel what is still pending and let go of every future and file."""
        pending = [f for _, f in self.running.values() if not f.done()]
        if pending:
            try:
                self.client.cancel(pending)
            except Exception:
                pass  # the cluster is going away already
        self.parts.close()
        self.done.clear()
        self.running.clear()
        self.func_arg = self.shared_arg = None
        self.transport.close()  # a task still running has its file open already


def _total_threads(client: Any) -> int:
    try:
        return max(1, sum(client.nthreads().values()))
    except Exception:
        return 1


def _failure(future: Any, result: Any, part: Partition) -> ParallelMapError:
    """The error to raise for a partition that did not finish."""
    from ...remote.calls import opened_error

    exc = opened_error(result[1] if isinstance(result, tuple) and len(result) == 3
                       else result)
    if isinstance(exc, ParallelMapError):
        return exc
    where = f"bag partition {part.number}" if part.start is None or part.count is None \
        else f"items {part.start}..{part.start + part.count - 1}"
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
