"""What runs on a scheduler for daskflow's page: it travels there by value, not by import.

The flow page must work on any scheduler a run uses, a stock ``dask scheduler`` with no
daskflow installed included. So the driver registers this module with
``cloudpickle.register_pickle_by_value`` and calls its functions with
``client.run_on_scheduler``: they unpickle with their code where only the stock Dask
image's packages are. Hence: the standard library, tornado and distributed only, and
no import of daskflow, here.

- :func:`install_page` adds ``/daskflow`` (the page) and ``/daskflow/state.json`` (what it
  shows, long-polled) to the scheduler's HTTP server, beside Dask's own pages, and the
  page to the dashboard's navigation; a :class:`FlowBoard` scheduler plugin keeps the
  runs' states.
- :func:`publish` is each driver's summary of its run, a few times a second at most,
  whatever the run's width; it answers with how many of the run's Dask tasks run there.
- :func:`step_metrics` reads Dask's span metrics of a run's steps (``flow/run/step``).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin
from tornado.iostream import StreamClosedError
from tornado.web import RequestHandler

BOARD = "daskflow-flow-page"   # the plugin's name on the scheduler
PAGE = "daskflow"              # the page's path, and its name in the dashboard's navigation
KEEP_FINISHED = 20             # finished runs still shown (the latest), beside running ones
LONG_POLL = 1.0                # seconds a state request waits for something new
FINAL_WAIT = 1.5               # seconds a run's last state waits for the pages that watch
VIEWER_GONE = 3.0              # a page not heard of for this long no longer watches
NAV_TRIES = 600                # seconds the navigation link waits for a late dashboard


class FlowBoard(SchedulerPlugin):
    """The runs that report to this scheduler, as their drivers last described them."""

    name = BOARD

    def __init__(self, page: str) -> None:
        self.page = page
        self.runs: dict[str, dict[str, Any]] = {}
        self.version = 0
        self.changed = asyncio.Event()
        self.viewers: dict[str, tuple[float, int]] = {}   # page id -> (last seen, version)
        self.started = time.time()
        self.published = 0     # publish() calls, for the page's cost (bench/flow_page_cost.py)
        self.served = 0        # state requests answered
        self.busy = 0.0        # seconds of the scheduler's event loop spent on both
        self.scheduler: Any = None
        self.closing = False

    async def start(self, scheduler: Any) -> None:
        self.scheduler = scheduler

    async def close(self) -> None:
        """The scheduler closes: the pages that wait hear it now, not as an error."""
        self.closing = True
        self._bump()
        await asyncio.sleep(0.05)   # their answers leave before the server stops

    def remove_client(self, scheduler: Any, client: str) -> None:
        """A driver that goes without saying how its run ended: its run says so."""
        for run in self.runs.values():
            if run["client"] == client and run["state"].get("status") == "running":
                run["state"]["status"] = "driver gone"
                self._bump()

    def _bump(self) -> None:
        self.version += 1
        self.changed.set()
        self.changed = asyncio.Event()

    # -- from drivers -------------------------------------------------------------------

    def update(self, state: dict[str, Any], graph: str | None, client: str | None) -> None:
        """``client``: the driver's client id, None once it has said its last word here."""
        key = state["key"]
        run = self.runs.setdefault(key, {"graph": None, "graph_version": 0, "client": client})
        run.update(state=state, client=client, updated_at=time.time())
        if graph is not None and graph != run["graph"]:
            run["graph"], run["graph_version"] = graph, self.version + 1
        self.published += 1
        self._forget_old_runs()
        self._bump()

    def _forget_old_runs(self) -> None:
        finished = sorted((r["updated_at"], k) for k, r in self.runs.items()
                          if r["state"].get("status") != "running")
        for _, key in finished[:max(0, len(finished) - KEEP_FINISHED)]:
            del self.runs[key]

    def running_tasks(self, run_id: str) -> dict[str, int]:
        """How many Dask tasks of run ``run_id`` run now, by step (keys ``<step>-...-<run>``);
        a task that is a batch of splits runs one split at a time, so it counts once."""
        counts: dict[str, int] = {}
        if self.scheduler is None:
            return counts
        suffix = f"-{run_id}"
        for ws in self.scheduler.workers.values():
            mine = [ts.key for ts in ws.processing
                    if isinstance(ts.key, str) and ts.key.endswith(suffix)]
            for key in mine[:ws.nthreads]:   # Dask may queue a few more than threads
                step = key.split("-", 1)[0]
                counts[step] = counts.get(step, 0) + 1
        return counts

    async def watched(self, version: int) -> None:
        """Wait (a little) until every page that watches has seen ``version``."""
        deadline = time.time() + FINAL_WAIT
        while time.time() < deadline:
            now = time.time()
            behind = [v for seen, v in self.viewers.values()
                      if now - seen < VIEWER_GONE and v < version]
            if not behind:
                return
            await asyncio.sleep(0.05)

    # -- to pages -----------------------------------------------------------------------

    async def wait(self, after: int, timeout: float) -> None:
        if self.version > after:
            return
        try:
            await asyncio.wait_for(self.changed.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    def snapshot(self, after: int) -> dict[str, Any]:
        """What the page shows; each run's graph only when the page has not got it."""
        runs = []
        for run in self.runs.values():
            state = dict(run["state"], updated_at=run["updated_at"])
            state["graph"] = run["graph"] if run["graph_version"] > after else None
            runs.append(state)
        runs.sort(key=lambda s: (s.get("status") != "running", -(s.get("started_at") or 0)))
        scheduler = self.scheduler
        return {
            "version": self.version, "now": time.time(), "runs": runs,
            "closing": self.closing,
            "scheduler": {"address": getattr(scheduler, "address", None),
                          "workers": len(getattr(scheduler, "workers", ())),
                          "threads": getattr(scheduler, "total_nthreads", None)},
            "cost": {"since": self.started, "published": self.published,
                     "served": self.served, "busy": round(self.busy, 4)},
        }


class FlowPage(RequestHandler):
    """``/daskflow``: the page itself (its data comes from ``state.json``)."""

    def initialize(self, board: FlowBoard) -> None:
        self.board = board

    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.write(self.board.page)


class FlowState(RequestHandler):
    """``/daskflow/state.json?after=N&viewer=ID``: the runs, as soon as something is newer
    than version N (or after a second, to say the scheduler is still there)."""

    def initialize(self, board: FlowBoard) -> None:
        self.board = board

    async def get(self) -> None:
        try:
            after = int(self.get_argument("after", "0"))
        except ValueError:
            after = 0
        await self.board.wait(after, LONG_POLL)
        began = time.perf_counter()
        snapshot = self.board.snapshot(after)
        self.board.served += 1
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.write(json.dumps(snapshot, separators=(",", ":")))
        self.board.busy += time.perf_counter() - began
        try:
            await self.flush()   # on its way: a run's last state may wait for this (watched)
        except StreamClosedError:  # the tab went meanwhile
            return
        viewer = self.get_argument("viewer", "")[:64]
        if viewer:
            now = time.time()
            self.board.viewers[viewer] = (now, snapshot["version"])
            for gone in [v for v, (seen, _) in self.board.viewers.items() if now - seen > 60]:
                del self.board.viewers[gone]


def install_page(page: str, dask_scheduler: Any = None) -> str:
    """``client.run_on_scheduler`` this: serve the flow page here (once per scheduler; a
    later run's page text replaces the earlier one). Returns the page's path."""
    scheduler = dask_scheduler
    board = scheduler.plugins.get(BOARD)
    if board is not None:
        board.page = page
        return f"/{PAGE}"
    board = FlowBoard(page)
    board.scheduler = scheduler
    scheduler.add_plugin(board, name=BOARD)
    # Any prefix before the page's path: behind a proxy that keeps it, or a dashboard
    # prefix, the page's own relative requests still land here.
    scheduler.http_application.add_handlers(r".*", [
        (rf"/(?:.*/)?{PAGE}/state\.json", FlowState, {"board": board}),
        (rf"/(?:.*/)?{PAGE}/?", FlowPage, {"board": board}),
    ])
    _link_from_navigation(scheduler)
    return f"/{PAGE}"


def _link_from_navigation(scheduler: Any, waited: float = 0.0) -> None:
    """Add the page to the dashboard's navigation bar: its pages' template variables are
    one list per scheduler. A dashboard that starts later (daskflow's local clusters add
    it a second after the link) gets it then; a scheduler without bokeh never does."""
    dashboard = sys.modules.get("distributed.dashboard.scheduler")
    if getattr(dashboard, "connect", None) is not None:  # imported (not half-way: a thread)
        pages = dashboard.template_variables(scheduler)["pages"]
        if PAGE not in pages:
            pages.append(PAGE)
        return
    if waited >= NAV_TRIES or scheduler.status.name in ("closing", "closed", "failed"):
        return
    loop = asyncio.get_running_loop()
    loop.call_later(1.0, _link_from_navigation, scheduler, waited + 1.0)


async def publish(state: str, graph: str | None, client: str, final: bool = False,
                  dask_scheduler: Any = None) -> dict[str, Any]:
    """``client.run_on_scheduler`` this: ``state`` (JSON) is the driver's summary of its run,
    ``graph`` its graph (SVG) until this scheduler has it. ``final``: the run ends here, so
    wait (at most FINAL_WAIT) until the pages that watch have it. Answers with the run's
    running tasks here by step and this scheduler's size; {} where no page is installed."""
    board = dask_scheduler.plugins.get(BOARD)
    if board is None:
        return {}
    began = time.perf_counter()
    parsed = json.loads(state)
    board.update(parsed, graph, None if final else client)
    answer = {"running": board.running_tasks(parsed["run_id"]),
              "workers": len(dask_scheduler.workers),
              "threads": dask_scheduler.total_nthreads}
    board.busy += time.perf_counter() - began
    if final:
        await board.watched(board.version)
    return answer


def step_metrics(run_id: str, dask_scheduler: Any = None) -> dict[str, Any]:
    """``client.run_on_scheduler`` this: what each step of run ``run_id`` spent, from Dask's
    spans ``(flow, run_id, step)`` (a step sent in several submissions may have several
    spans of one name: merged). Seconds of compute (CPU of it too), transfer, spill, idle."""
    extension = dask_scheduler.extensions.get("spans")
    if extension is None:
        return {}
    from distributed.spans import Span

    found: dict[str, Any] = {}
    for name, spans in list(extension.spans_search_by_name.items()):
        if len(name) != 3 or name[1] != run_id:
            continue
        span = spans[0] if len(spans) == 1 else Span.merge(*spans)
        durations = span.all_durations
        metrics = span.cumulative_worker_metrics
        execute = {k[2]: v for k, v in _execute_seconds(metrics)}
        found[name[2]] = {
            "compute": durations.get("compute", 0.0),
            "cpu": execute.get("thread-cpu", 0.0),
            "transfer": durations.get("transfer", 0.0),
            "spill": durations.get("disk-read", 0.0) + durations.get("disk-write", 0.0),
            "idle": execute.get("idle or other spans", 0.0),
            "span": "/".join(name),
        }
    return found


def _execute_seconds(metrics: dict[tuple, float]) -> list[tuple[tuple, float]]:
    totals: dict[tuple, float] = {}
    for key, value in metrics.items():
        if len(key) == 4 and key[0] == "execute" and key[3] == "seconds":
            group = ("execute", "", key[2], "seconds")
            totals[group] = totals.get(group, 0.0) + value
    return list(totals.items())


async def send_metrics_now(dask_worker: Any = None) -> None:
    """``client.run`` this: a heartbeat now, so the scheduler has the fine performance
    metrics of the tasks that just ended (they travel with heartbeats)."""
    await dask_worker.heartbeat()
