"""Feeds the flow page of every scheduler a run uses, from the run's events.

:class:`FlowPageFeed` is one more observer of the run (beside its display): it keeps a
:class:`~daskflow.dashboard.RunBoard` of the run, and a thread of its own sends the
board's state to each scheduler it was attached to, every
``daskflow.dashboard.update-interval`` (500 ms): a few small messages a second per
scheduler, however wide the run, and none from a task. Each answer says how many of the
run's tasks that scheduler has running, which the next state shows.

The runner attaches the feed to each cluster before its first task (which installs the
page there, by value) and calls what :meth:`FlowPageFeed.attach` returns before the
cluster closes: a last state, which the pages open on it get before it goes.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from dask.utils import parse_timedelta

from .. import config
from ..dashboard import RunBoard
from ..graph import FlowGraph
from .events import RunObserver

logger = logging.getLogger(__name__)


@dataclass
class _Scheduler:
    """A scheduler the run reports to, and whether it has the run's graph yet."""

    client: Any
    cluster: str
    has_graph: bool = False
    # one state at a time: a periodic one must not land after the last one
    sending: threading.Lock = field(default_factory=threading.Lock)


class FlowPageFeed(RunObserver):
    """Keeps the flow page on each of a run's schedulers up to date (module docstring)."""

    def __init__(self, graph: FlowGraph, interval: Any = None) -> None:
        self.graph = graph
        self.interval = float(parse_timedelta(
            config.get("dashboard.update-interval", override_with=interval)))
        self.board: RunBoard | None = None
        self.svg: str | None = None
        self.lock = threading.Lock()
        self.schedulers: dict[int, _Scheduler] = {}
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    # -- the run's events ---------------------------------------------------------------

    def run_started(self, *, flow_name: str, run_id: str, datastore: str,
                    **extra: Any) -> None:
        from ..report.graph_svg import render_svg
        from ..report.layout import graph_nodes

        nodes = graph_nodes(self.graph)
        self.svg = render_svg(nodes, title=f"Flow graph of {flow_name}/{run_id}",
                              standalone=False, live=True)
        flow_file = os.path.basename(self.graph.file) if self.graph.file else None
        with self.lock:
            self.board = RunBoard(flow_name, run_id, list(nodes), flow_file=flow_file)

    def _with_board(self, change: Callable[[RunBoard], None]) -> None:
        with self.lock:
            if self.board is not None:
                change(self.board)

    def cluster_started(self, *, name: str, description: str, dashboard: str | None,
                        step: str | None = None, backend: str | None = None,
                        workers: int | None = None, **extra: Any) -> None:
        self._with_board(lambda b: b.cluster_up(
            name, step=step, backend=backend, description=description, workers=workers,
            dashboard=dashboard, price=extra.get("price"), meter=extra.get("meter")))

    def cluster_stopped(self, *, name: str, seconds: float, **extra: Any) -> None:
        self._with_board(lambda b: b.cluster_down(name, held=extra.get("held"),
                                                  used=extra.get("used")))

    def task_submitted(self, *, step: str, task_id: str, foreach_depth: int,
                       **extra: Any) -> None:
        self._with_board(lambda b: b.submitted(step))

    def tasks_submitted(self, *, step: str, task_ids: Sequence[str], foreach_depth: int,
                        **extra: Any) -> None:
        self._with_board(lambda b: b.submitted(step, len(task_ids)))

    def task_caught(self, *, step: str, task_id: str, **extra: Any) -> None:
        self._with_board(lambda b: b.caught(step, task_id))

    def task_finished(self, *, step: str, task_id: str, ok: bool, foreach_depth: int,
                      attempt: int | None = None, retrying: bool = False,
                      **extra: Any) -> None:
        self._with_board(lambda b: b.finished(
            step, task_id, ok=ok, retrying=retrying, reused=bool(extra.get("reused")),
            failure=extra.get("failure")))

    def tasks_finished(self, *, step: str, task_ids: Sequence[str], foreach_depth: int,
                       failed: Collection[str] = (), **extra: Any) -> None:
        self._with_board(lambda b: b.batch_finished(step, task_ids, failed))

    def foreach_expanded(self, *, step: str, target: str, count: int, **extra: Any) -> None:
        self._with_board(lambda b: b.expanded(target, count))

    def close(self) -> None:
        self.stopped.set()
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)  # a scheduler gone mid-call: do not wait for its timeout

    # -- the schedulers -----------------------------------------------------------------

    def attach(self, client: Any, cluster: str, *,
               ends_run: bool = False) -> Callable[[], None] | None:
        """Serve the page on ``client``'s scheduler and report there from now on; returns
        what to call before that cluster closes (``ends_run``: the run's default cluster,
        whose end is the run's). A scheduler that refuses the page costs the run nothing
        but a warning."""
        from ..dashboard.connect import install_flow_page
        try:
            install_flow_page(client)
        except Exception as exc:  # noqa: BLE001  the page is for watching; the run goes on
            logger.warning("daskflow: no flow page on the scheduler of cluster %s: %s: %s",
                           cluster, type(exc).__name__, exc)
            return None
        target = _Scheduler(client, cluster)
        with self.lock:
            self.schedulers[id(client)] = target
            if self.thread is None:
                self.thread = threading.Thread(target=self._send_often, daemon=True,
                                               name="daskflow-flow-page")
                self.thread.start()
        self._send(target)
        return functools.partial(self.detach, client, ends_run=ends_run)

    def detach(self, client: Any, *, ends_run: bool = False) -> None:
        """The last state to ``client``'s scheduler, which no longer hears of the run."""
        with self.lock:
            target = self.schedulers.pop(id(client), None)
            if ends_run and self.board is not None:
                self.board.ended()
        if target is not None:
            self._send(target, final=True)

    def _send_often(self) -> None:
        while not self.stopped.wait(self.interval):
            with self.lock:
                targets = list(self.schedulers.values())
            for target in targets:
                self._send(target)

    def _send(self, target: _Scheduler, final: bool = False) -> None:
        from ..dashboard.connect import publish_run
        with target.sending:
            with self.lock:
                if self.board is None:
                    return
                state = self.board.state()
            try:
                answer = publish_run(target.client, state,
                                     None if target.has_graph else self.svg, final=final)
            except Exception as exc:  # noqa: BLE001  a cluster closing: its page goes too
                logger.debug("daskflow: flow page of %s not updated: %s", target.cluster, exc)
                return
            target.has_graph = True
        if "running" in answer:
            self._with_board(lambda b: b.running_on(target.cluster, answer["running"]))
