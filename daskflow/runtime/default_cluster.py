"""The run's default cluster, as the driver sends work to it.

A run's tasks go to its default cluster unless their step has a cluster of its own
(``placement.py``).  That cluster is the run's own, started before the run or when a task
first needs it (so that a run that reuses every task starts none), or a scheduler that
other runs share (``--scheduler-address``): there each task is sealed with the run's code
(``calls``, ``remote/calls.py``) and the run keeps to its fair share of the workers
(``board``, ``shares.py``).  :class:`DefaultCluster` holds all of that, so the driver
asks one owner for a client with the run's context on it, for the threads it may keep
busy, and for the priority of what it sends next.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import config
from .context import submit_context


class DefaultCluster:
    """The default cluster of one run: ``client`` (None until :meth:`open` starts it with
    ``opener``, which gives the client and the cluster's idle release, handed to
    ``on_open``), the run's ``context`` future there, ``calls`` (how tasks go to it),
    ``board`` (the run's share of a shared scheduler, else None), and ``backend_of()``:
    its backend and cluster object once up, asked why its workers die (None: a scheduler
    daskflow did not start)."""

    def __init__(self, client: Any, opener: Callable[[], tuple[Any, Any]] | None,
                 calls: Any, board: Any, backend_of: Callable[[], tuple[Any, Any] | None],
                 context: tuple[bytes, str], relay: Any,
                 on_open: Callable[[Any], None]) -> None:
        self.client = client
        self.opener = opener
        self.calls = calls
        self.board = board
        self.backend_of = backend_of
        self.context_bytes, self.context_key = context
        self.relay = relay
        self.on_open = on_open
        self.context: Any = None

    def start(self) -> None:
        """The run begins: a cluster up already gets the run's context now."""
        if self.client is not None:
            self._up()

    def open(self) -> tuple[Any, Any]:
        """Its client and the run's context there; the cluster starts now if it was left
        to start when first needed."""
        if self.client is None:
            assert self.opener is not None
            self.client, idle = self.opener()
            self.on_open(idle)
            self._up()
        return self.client, self.context

    def _up(self) -> None:
        if self.board is not None:
            self.board.start()
        self.context = submit_context(self.client, self.context_bytes, self.context_key,
                                      self.calls)
        self.relay.subscribe(self.client)

    def stop(self) -> list[Any]:
        """The run ends: its share is given back; the client to stop listening on, if
        any."""
        if self.board is not None:
            self.board.stop()
        return [self.client] if self.client is not None else []

    def threads(self, most: int) -> int:
        """The threads this run may keep busy: its share of a shared scheduler's, else the
        cluster's, at most ``most``."""
        if self.board is not None:
            return min(self.board.fair.threads, most)
        client = self.open()[0]
        try:
            threads = sum(client.nthreads().values())
        except Exception:  # noqa: BLE001  sizing only
            threads = 0
        return min(threads, most) if threads else most

    def priority(self, in_flight: int) -> int:
        """The Dask priority of a task sent when the run has ``in_flight`` tasks there: on
        a shared scheduler, lower the more it has."""
        return 0 if self.board is None else self.board.fair.priority(in_flight)

    def backend(self) -> tuple[Any, Any]:
        """Its backend and cluster object, (None, None) where daskflow did not start it."""
        return self.backend_of() or (None, None)

    @property
    def backend_name(self) -> str:
        """The backend a task moving off this cluster gets a cluster from."""
        backend = self.backend()[0]
        return backend.name if backend is not None else str(config.get("cluster.backend"))
