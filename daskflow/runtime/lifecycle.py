"""One run's life in the datastore: claimed, clusters noted as they come and go, finished.

:class:`RunLifecycle` owns the run's record (``_run.json``), its store and
observer: the runner and the driver tell it what happens and it writes the
record, tells the observer and, at the end, writes the run report.  It is
created only after every check passed, so a refused run stores nothing.
"""

from __future__ import annotations

import os
import platform
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..clusters.labels import run_finished, run_started
from ..clusters.pricing import cost, currency
from ..current import username
from ..dashboard import flow_page_link
from ..datastore import ArtifactRef, ArtifactStore
from ..exceptions import DatastoreUnavailable, TaskFailed
from ..graph import FlowGraph
from ..liveness import HEARTBEAT, heartbeat_interval
from .events import RunObserver
from .meter import WorkerMeter


@dataclass
class RunOutcome:
    """How the driver's part ended."""

    successful: bool
    failure: TaskFailed | None = None
    tasks: int = 0
    seconds: float = 0.0


class RunLifecycle:
    """The record of one run, from its claimed id to its final status and report.

    >>> life = RunLifecycle(store, run_id, ...)           # doctest: +SKIP
    >>> try:
    ...     life.begin(); ...                              # run it
    ... finally:
    ...     life.finish(outcome, interrupted=False)
    """

    def __init__(self, store: ArtifactStore, run_id: str, *, graph: FlowGraph,
                 observer: RunObserver, tags: list[str], parameters: dict[str, str],
                 parameter_refs: dict[str, ArtifactRef], max_workers: int,
                 max_num_splits: int, origin_run_id: str | None,
                 code: dict[str, Any] | None = None,
                 extra_system_tags: list[str] = (),
                 code_files: dict[str, str] | None = None) -> None:
        self.store = store
        self.run_id = run_id
        self.graph = graph
        self.observer = observer
        self.user = username()
        self.lock = threading.Lock()
        self.record: dict[str, Any] = {
            "flow": store.flow_name, "run_id": run_id, "status": "running",
            "started_at": time.time(), "finished_at": None, "user": self.user,
            "tags": list(tags),
            "system_tags": [f"user:{self.user}", f"daskflow_version:{__version__}",
                            f"python_version:{platform.python_version()}",
                            *extra_system_tags],
            "parameters": parameters,
            "parameter_refs": {k: v.as_record() for k, v in parameter_refs.items()},
            "max_workers": max_workers, "max_num_splits": max_num_splits,
            "origin_run_id": origin_run_id, "clusters": [], "code": code,
            "code_files": code_files,  # the flow's files and their hashes, to compare runs
            "driver": {"host": socket.gethostname(), "pid": os.getpid()},
            HEARTBEAT: time.time(),
        }
        self._stopped = threading.Event()
        self._beat: threading.Thread | None = None

    def begin(self) -> None:
        """Write the record and start the heartbeat; :meth:`finish` must follow whatever
        happens from here (call both in one try/finally, so a Ctrl-C that lands in
        between still leaves a final status)."""
        run_started(self.run_id, self.pathspec, self.store.root_url)  # clusters' labels
        self._write()
        beat = threading.Thread(target=self._heartbeat, daemon=True,
                                name=f"daskflow-heartbeat-{self.run_id}")
        beat.start()
        self._beat = beat  # only once started: a Ctrl-C inside start() leaves none to join
        self.observer.run_started(flow_name=self.store.flow_name, run_id=self.run_id,
                                  datastore=self.store.flow_url,
                                  graph=self.graph)

    @property
    def pathspec(self) -> str:
        return f"{self.store.flow_name}/{self.run_id}"

    def _write(self) -> None:
        with self.lock:
            self.store.write_run(self.run_id, self.record)

    def _heartbeat(self) -> None:
        """Note in the record, now and then, that this driver still runs the run."""
        interval = heartbeat_interval()
        while not self._stopped.wait(interval):
            self.record[HEARTBEAT] = time.time()
            try:
                self._write()
            except Exception:  # noqa: BLE001  a missed beat; the next one retries
                pass

    # -- clusters ---------------------------------------------------------------------

    def default_cluster_up(self, client: Any, *, backend: str, description: str,
                           price: float | None = None) -> None:
        """The run's default cluster is up: keep its scheduler, dashboard and size
        (``price``: of one worker-hour, for its estimated cost)."""
        link = flow_page_link(client.dashboard_link)  # the run's page on that dashboard
        workers = len(client.scheduler_info().get("workers", {}))
        self.record.update(scheduler=client.scheduler.address, dashboard=link,
                           cluster=description)
        self.default_meter = WorkerMeter(client, run_id=self.run_id)
        self.cluster_changed({
            "name": "default", "backend": backend, "description": description, "step": None,
            "workers": workers, "started_at": self.record["started_at"],
            "ready_at": time.time(), "stopped_at": None, "dashboard": link,
            "price_per_worker_hour": price})
        self.observer.cluster_started(name="default", description=description,
                                      dashboard=link, workers=workers, backend=backend,
                                      meter=self.default_meter, price=price)

    def default_cluster_down(self) -> None:
        for cluster in reversed(self.record["clusters"]):
            if cluster["name"] == "default" and cluster["stopped_at"] is None:
                cluster.update(self.default_meter.stop())
                cluster["stopped_at"] = time.time()
                _add_cost(cluster)
                self.observer.cluster_stopped(name="default",
                                              seconds=cluster["stopped_at"] -
                                              cluster["started_at"], **_usage(cluster))
                return

    def cluster_changed(self, info: dict[str, Any]) -> None:
        """A cluster started or stopped (``info["stopped_at"]`` set): record it."""
        if info.get("stopped_at"):
            _add_cost(info)
        with self.lock:
            if not any(c is info for c in self.record["clusters"]):
                self.record["clusters"].append(info)
        try:
            self._write()
        except DatastoreUnavailable:
            pass  # noted in the next write; if the store stays gone, the run ends saying so
        if info.get("stopped_at") and info["name"] != "default":
            self.observer.cluster_stopped(name=info["name"],
                                          seconds=info["stopped_at"] - info["started_at"],
                                          **_usage(info))

    # -- the end ----------------------------------------------------------------------

    def finish(self, outcome: RunOutcome, *, interrupted: bool) -> None:
        """Write the final status and the run report, and tell the observer; never raises
        past the record, so the run's real outcome is what the caller sees."""
        self._stopped.set()
        if self._beat is not None:
            self._beat.join()
        run_finished(self.run_id)
        self.record.update(status="success" if outcome.successful else "failed",
                           finished_at=time.time(), interrupted=interrupted)
        if outcome.failure is not None:
            self.record["failure"] = {"pathspec": outcome.failure.pathspec,
                                      "type": outcome.failure.type_name,
                                      "message": outcome.failure.message}
        report = None
        try:
            self._write()
        except DatastoreUnavailable:
            # the store is gone: the record stays "running" and reads as failed once its
            # heartbeat is old; the run's outcome (which says so) is what the caller sees
            pass
        else:
            from ..report import write_report_after_run  # never raises
            report = write_report_after_run(self.store.root_url, self.store.flow_name,
                                            self.run_id, graph=self.graph)
        finally:
            self.observer.run_finished(flow_name=self.store.flow_name, run_id=self.run_id,
                                       successful=outcome.successful, tasks=outcome.tasks,
                                       seconds=outcome.seconds, failure=outcome.failure,
                                       report=report, clusters=list(self.record["clusters"]))
            self.observer.close()


def _add_cost(info: dict[str, Any]) -> None:
    """A stopped cluster's estimated cost, from its worker-seconds held and its price."""
    info["cost"] = cost(info.get("worker_seconds_held"), info.get("price_per_worker_hour"))
    info["currency"] = currency()


def _usage(info: dict[str, Any]) -> dict[str, Any]:
    """What an observer hears of a stopped cluster's use: held/used seconds, cost."""
    return {"held": info.get("worker_seconds_held"), "used": info.get("worker_seconds_used"),
            "cost": info.get("cost"), "currency": info.get("currency")}
