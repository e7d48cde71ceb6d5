"""What tasks say while they run, passed on to the run's observer.

A task publishes on two Dask topics of its cluster (``capture.py``): its output as it
prints it, and its attempts' starts and failed attempts that another follows.  The
driver subscribes on the run's default cluster and on each step cluster as it
comes up; :class:`TaskRelay` turns the messages of its own run into observer calls
(a scheduler that runs share carries theirs on the same topics), and unsubscribes from
the clusters still up when the run ends.
"""

from __future__ import annotations

from typing import Any

from ..graph import FlowGraph
from .capture import OUTPUT_TOPIC, TASK_TOPIC
from .events import RunObserver


class TaskRelay:
    """Subscribes to the task topics of each cluster of a run, for ``observer``."""

    def __init__(self, observer: RunObserver, graph: FlowGraph, stream_output: bool,
                 run_pathspec: str) -> None:
        self.observer = observer
        self.graph = graph
        self.stream_output = stream_output
        self.run_id = run_pathspec.rsplit("/", 1)[-1]
        self.prefix = run_pathspec + "/"   # of the pathspecs of its tasks' output

    def subscribe(self, client: Any) -> None:
        client.subscribe_topic(TASK_TOPIC, self.task_event)
        if self.stream_output:
            client.subscribe_topic(OUTPUT_TOPIC, self.output)

    def unsubscribe(self, clients: list[Any]) -> None:
        for client in clients:
            for topic in (OUTPUT_TOPIC, TASK_TOPIC):
                try:
                    client.unsubscribe_topic(topic)
                except Exception:  # noqa: BLE001  not subscribed there: nothing to undo
                    pass

    def task_event(self, event: tuple[float, dict[str, Any]]) -> None:
        _, msg = event
        if msg.get("r") != self.run_id:
            return  # another run's, on a scheduler they share
        if msg["e"] == "started":  # a batch of splits sends all its task ids at once
            for task_id in msg["t"] if isinstance(msg["t"], list) else [msg["t"]]:
                self.observer.task_started(step=msg["s"], task_id=task_id, attempt=msg["a"])
        elif msg["e"] == "caught":  # before its result: the task finishes as caught
            self.observer.task_caught(step=msg["s"], task_id=msg["t"])
        else:  # an attempt failed and another follows
            self.observer.task_finished(step=msg["s"], task_id=msg["t"], ok=False,
                                        foreach_depth=self.graph.foreach_depth(msg["s"]),
                                        attempt=msg["a"], retrying=True)

    def output(self, event: tuple[float, dict[str, Any]]) -> None:
        _, msg = event
        if not msg["p"].startswith(self.prefix):
            return
        self.observer.task_output(pathspec=msg["p"], stream=msg["s"], text=msg["t"])
