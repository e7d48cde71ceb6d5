"""Which Dask cluster this code runs on: one answer for every part of daskflow that asks.

A step's body runs in a task on a Dask worker, and code there that wants to
run more Dask work must use that worker's cluster without holding the worker
thread it runs in; code outside a flow (a script, a notebook) uses the client
it made.  ``distributed`` is imported only when asked.

>>> with cluster_client() as client:                                # doctest: +SKIP
...     futures = client.map(score, items)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["cluster_client", "current_worker", "erred_with"]


def current_worker() -> Any | None:
    """The ``distributed.Worker`` running this task, or None outside a task.

    Only the task's own thread sees its worker (``distributed.get_worker``).
    """
    try:
        from distributed import get_worker
    except ImportError:
        return None
    try:
        return get_worker()
    except ValueError:
        return None


@contextmanager
def cluster_client() -> Iterator[Any | None]:
    """The ``distributed.Client`` of the cluster this code runs on, or None if there is none.

    In a task on a worker (a step) it is ``distributed.worker_client()``: this
    task's thread is handed back to the worker while the block runs, so the
    work it submits can use every thread of the cluster, this one's included,
    and cannot deadlock it.  Elsewhere it is the current client (the one in a
    ``client.as_current()`` block, else the default one) while it is running.
    """
    if current_worker() is not None:
        from distributed import worker_client

        with worker_client() as client:
            yield client
        return
    yield _running_client()


def _running_client() -> Any | None:
    try:
        from distributed import Client
        client = Client.current(allow_global=True)
    except (ImportError, ValueError):
        return None
    return client if client.status == "running" else None


def erred_with(future: Any) -> BaseException | None:
    """The error ``future`` ended with, read without waiting; None unless it erred.

    ``Future.exception()`` waits for the future's end, and its status can change under
    the caller: Dask runs an erred task again when a task that needs it is retried, and
    the new end may wait on the very caller that asks.  A future already running again
    after an error answers that error; a cancelled one answers None.  A future whose
    task's errors travel wrapped (a sealed call, ``remote/calls.py``) opens its own.
    """
    state = getattr(future, "_state", None)
    if state is None:  # not a distributed future
        return future.exception() if future.status == "error" else None
    error = state.exception if state.status in ("error", "pending", "lost") else None
    opened = getattr(future, "opened_error", None)
    return opened(error) if opened is not None and error is not None else error
