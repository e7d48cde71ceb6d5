"""The futures of one run in flight, each with the cluster it runs on.

Everything the driver submits (a task, a batch of splits, a sizing of splits, the
nodes of a gang) is watched here: its end goes to the driver's event queue as the
event the submitter chose, and the cluster it runs on (:data:`DEFAULT`, the run's
own, or a step cluster's key) is the one answer to "where does this future run" for
failure diagnosis, the default cluster's idle release and cancelling the run.

A task's future stays here after it ends: a join submitted later takes it as a
parent (the walk names it by its :class:`TaskKey`).  Once the driver has taken a task
as finished, no end of it reaches the driver again: if its result dies with a worker,
Dask runs it again for the task that needs it, and a second death of that run is
heard only through that task (:meth:`Flights.taken`).
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .context import TaskKey
from .placement import DEFAULT


@dataclass
class Flight:
    """A future the driver watches, and the cluster it runs on."""

    future: Any
    cluster: str
    taken: bool = False   # the driver took it as finished


class Flights:
    """The futures of a run; ``idle`` (the default cluster's IdleRelease, or None) hears
    of each one sent to and ended on the default cluster."""

    def __init__(self, events: queue.Queue[Any], idle: Any = None) -> None:
        self.events = events
        self.idle = idle
        self.by_key: dict[str, Flight] = {}
        self.in_flight = 0    # on the default cluster: what a shared scheduler's share bounds

    def watch(self, futures: list[Any], cluster: str, event: Callable[[Any], Any]) -> None:
        """Put ``event(future)`` on the queue when each of ``futures`` (on ``cluster``) ends."""
        if cluster == DEFAULT:
            self.in_flight += len(futures)
            if self.idle is not None:
                self.idle.task_sent(len(futures))
        for future in futures:
            self.by_key[future.key] = Flight(future, cluster)
            future.add_done_callback(lambda f: self.events.put(event(f)))

    def lost(self, future: Any, event: Callable[[Any], Any]) -> bool:
        """Whether ``future`` ended and its result was lost since, with the worker that
        held it (its end was queued before the worker died).  Dask computes it again,
        and the task finds its stored result: its next end is watched, as ``event``."""
        if future.status != "lost":
            return False
        future.add_done_callback(lambda f: self.events.put(event(f)))
        return True

    def landed(self, key: str, keep: bool = True) -> str:
        """The future ``key`` ended (its event is handled): the cluster it ran on. A
        result no later task takes as a parent need not be kept."""
        flight = self.by_key[key] if keep else self.by_key.pop(key)
        if flight.cluster == DEFAULT:
            self.in_flight -= 1
            if self.idle is not None:
                self.idle.task_done()
        return flight.cluster

    def take(self, key: str) -> None:
        """The driver took the task ``key`` as finished: its end is not watched again."""
        self.by_key[key].taken = True

    def taken(self, key: str) -> bool:
        """Whether the driver took the task ``key`` as finished (a task that needs it
        and fails blaming it runs again with it: Dask reruns it, and it returns what it
        stored)."""
        flight = self.by_key.get(key)
        return flight is not None and flight.taken

    def future_of(self, parent: Any) -> Any:
        """What Dask gets for ``parent``: the future of a task submitted, else the value."""
        return self.by_key[str(parent)].future if isinstance(parent, TaskKey) else parent

    def ref_if_done(self, parent: Any) -> Any:
        """``parent``'s ref if its task has finished already, else ``parent``."""
        if isinstance(parent, TaskKey):
            future = self.by_key[str(parent)].future
            if future.status == "finished":
                return future.result()
        return parent

    def cancel_all(self) -> None:
        """Cancel every future not ended yet, on whichever cluster it runs."""
        by_client: dict[int, tuple[Any, list[Any]]] = {}
        for flight in self.by_key.values():
            future = flight.future
            if not future.done():
                by_client.setdefault(id(future.client), (future.client, []))[1].append(future)
        for client, pending in by_client.values():
            try:
                client.cancel(pending)
            except Exception:  # noqa: BLE001  its cluster is gone already
                pass
