"""The one local cluster a process keeps for ``parallel_map`` calls outside a flow.

A script or notebook that maps several times should pay for a cluster once: the
first call outside a flow (with no Dask client of the caller's own) starts a local
cluster, sized and started as a run's default one (workers forked from daskflow's
fork server, dashboard on a free localhost port), prints its dashboard link once, and
keeps it until the interpreter exits. Later calls cost about what ``client.map`` costs
on a warm cluster.

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
        from distributed import Client

        from ...clusters import get_backend
        from ...clusters.local import default_request

        backend = get_backend("local")
        request = default_request()
        stack = ExitStack()
        try:
            cluster = stack.enter_context(backend.open(request))
            client = stack.enter_context(Client(cluster, set_as_default=False))
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


def close_session_cluster() -> None:
    """Close the process's cluster now (also done at interpreter exit)."""
    global _stack, _client
    stack, _stack, _client = _stack, None, None
    if stack is not None:
        atexit.unregister(close_session_cluster)
        stack.close()
