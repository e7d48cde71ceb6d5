"""The one local cluster a process keeps for ``parallel_map`` calls outside a flow.

A script or notebook that maps several times should pay for a cluster once: the
first call outside a flow (with no Dask client of the caller's own) starts a local
cluster, sized and started as a run's default one (workers forked from daskflow's
fork server, dashboard on a free localhost port), prints its dashboard link once, and
keeps it until the interpreter exits. Later calls cost about what ``client.map`` costs
on a warm cluster.

Living as long as the process, it keeps less of its own history than distributed's
defaults (``parallel-map.session``): its scheduler's and nannies' log records (they also
take those of every other cluster of the process, whose loggers they share), the last
messages of each stream, and the spans of the maps that are over (``SpanHistory``), so
that a process that maps all day holds steady (``docs/faults.md``).

>>> with session_client() as client:                              # doctest: +SKIP
...     client.submit(sum, [1, 2]).result()
3
"""

from __future__ import annotations

import atexit
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

_lock = threading.Lock()
_stack: ExitStack | None = None
_client: Any = None


@contextmanager
def session_client() -> Iterator[Any]:
    """This process's local cluster's client, started on first use."""
    yield _running() or _start()


def _running() -> Any:
    client = _client
    return client if client is not None and client.status == "running" else None


def _start() -> Any:
    global _stack, _client
    with _lock:
        if _running() is not None:
            return _client
        close_session_cluster()  # one that died (a killed scheduler): start afresh
        from ...clusters import get_backend
        from ...clusters.local import default_request

        backend = get_backend("local")
        request = default_request()
        stack = ExitStack()
        try:
            cluster, client = _open(stack, backend, request)
        except BaseException:
            stack.close()
            raise
        _stack, _client = stack, client
        atexit.register(close_session_cluster)
        link = getattr(cluster, "dashboard_link", None)
        print(f"parallel_map: a local Dask cluster for this process "
              f"({backend.describe(request)}), kept until it exits"
              + (f"; dashboard: {link}" if link else "") + ".", file=sys.stderr)
        return client


def _open(stack: ExitStack, backend: Any, request: Any) -> tuple[Any, Any]:
    """The cluster and its client, entered on ``stack``, with the history it keeps bounded."""
    import dask.config
    from distributed import Client

    from ... import config
    from ...clusters.span_history import SpanHistory

    with dask.config.set(_history_lengths()):  # read as its servers and streams start
        cluster = stack.enter_context(backend.open(request))
        client = stack.enter_context(Client(cluster, set_as_default=False))
    keep = config.get("parallel-map.session.spans")
    if keep is not None:
        client.register_plugin(SpanHistory(int(keep)))
    return cluster, client


def _history_lengths() -> dict[str, int]:
    """distributed's settings of how much history a server and a stream keep, as the
    session cluster's (``parallel-map.session``) give them; unset (null): distributed's."""
    from ... import config
    lengths = {"distributed.admin.log-length": config.get("parallel-map.session.log-length"),
               "distributed.admin.low-level-log-length":
                   config.get("parallel-map.session.low-level-log-length")}
    return {key: int(value) for key, value in lengths.items() if value is not None}


def close_session_cluster() -> None:
    """Close the process's cluster now (also done at interpreter exit)."""
    global _stack, _client
    stack, _stack, _client = _stack, None, None
    if stack is not None:
        atexit.unregister(close_session_cluster)
        stack.close()
