"""One run as the flow page shows it: counts per step, clusters, cost so far, failures.

The driver's feed (:mod:`daskflow.runtime.flowpage`) tells a :class:`RunBoard` each
event of its run and sends :meth:`RunBoard.state` to the run's schedulers a few times a
second; the board is plain data, so the counts are tested without any cluster. Its
size does not grow with the run's width: a step of 100,000 splits is a few integers.

Per step: *queued* (not running yet: handed to Dask, or a foreach's split not sent yet),
*running* (as the schedulers count
the run's tasks in their workers' hands), *done*, *failed* (for good; ``caught`` of
them by ``@catch``), *reused* (taken from an earlier run: resume's clones, a cache's
hits) and, for a foreach target, the splits made so far; once the run has ended, what
had not finished is *cancelled*.

>>> board = RunBoard("TrainFlow", "17", ["start", "train", "end"], flow_file="train.py")
>>> board.submitted("train", 4)
>>> board.batch_finished("train", ["2", "3", "4"], failed=["4"])
>>> counts = board.state(now=0.0)["steps"][1]
>>> counts["queued"], counts["done"], counts["failed"]
(1, 2, 1)
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..clusters.pricing import cost, currency

MAX_FAILURES = 5       # failed tasks the page names (the run stops at its first anyway)
MAX_MESSAGE = 300      # characters of an error's first line shown


@dataclass
class StepCounts:
    """What became of one step's tasks so far."""

    submitted: int = 0
    done: int = 0
    failed: int = 0
    caught: int = 0
    reused: int = 0
    retried: int = 0              # failed attempts that another followed
    total: int | None = None      # a foreach target: the splits made so far
    running: dict[str, int] = field(default_factory=dict)   # per cluster, as it counts

    @property
    def in_flight(self) -> int:
        return max(0, self.submitted - self.done - self.failed)

    def as_json(self, name: str, over: bool = False) -> dict[str, Any]:
        """``over``: the run ended, so what had not finished was cancelled."""
        in_flight = self.in_flight
        running = min(sum(self.running.values()), in_flight)
        # a foreach's splits not handed to Dask yet (it gets them in batches) wait too
        unsent = max(0, self.total - self.submitted - self.reused) if self.total else 0
        queued = in_flight - running + unsent
        cancelled = queued + running if over else 0
        if over:
            queued = running = 0
        return {"name": name, "queued": queued, "running": running,
                "done": self.done, "failed": self.failed, "caught": self.caught,
                "reused": self.reused, "retried": self.retried, "total": self.total,
                "cancelled": cancelled}


@dataclass
class ClusterUse:
    """A cluster of the run, and its worker-seconds as its meter counts them."""

    name: str
    step: str | None
    backend: str | None
    description: str
    workers: int | None
    dashboard: str | None
    price: float | None = None     # of a worker-hour; None: no price configured
    meter: Any = None              # daskflow.runtime.meter.WorkerMeter while it is up
    held: float | None = None
    used: float | None = None
    up: bool = True

    def as_json(self) -> dict[str, Any]:
        held, used = self.held, self.used
        if self.up and self.meter is not None:
            held, used = self.meter.so_far()
        return {"name": self.name, "step": self.step, "backend": self.backend,
                "description": self.description, "workers": self.workers,
                "dashboard": self.dashboard, "held": held, "used": used,
                "cost": cost(held, self.price), "up": self.up}


class RunBoard:
    """The flow page's view of one run, fed event by event (see the module's docstring)."""

    def __init__(self, flow: str, run_id: str, steps: Sequence[str], *,
                 flow_file: str | None = None, started_at: float | None = None) -> None:
        self.flow = flow
        self.run_id = run_id
        self.steps = {name: StepCounts() for name in steps}
        self.flow_file = flow_file
        self.started_at = time.time() if started_at is None else started_at
        self.finished_at: float | None = None
        self.status = "running"
        self.clusters: dict[str, ClusterUse] = {}
        self.failures: list[dict[str, str]] = []
        self.caught_ids: dict[str, set[str]] = {}

    def _step(self, name: str) -> StepCounts:
        return self.steps.setdefault(name, StepCounts())

    # -- tasks ------------------------------------------------------------------------

    def submitted(self, step: str, count: int = 1) -> None:
        self._step(step).submitted += count

    def expanded(self, target: str, count: int) -> None:
        counts = self._step(target)
        counts.total = (counts.total or 0) + count   # a nested foreach: once per outer split

    def caught(self, step: str, task_id: str) -> None:
        """``@catch`` caught the task's failure; its finish, ``ok``, follows."""
        self.caught_ids.setdefault(step, set()).add(task_id)

    def finished(self, step: str, task_id: str, *, ok: bool, retrying: bool = False,
                 reused: bool = False, failure: Any = None) -> None:
        counts = self._step(step)
        if retrying:
            counts.retried += 1
        elif reused:
            counts.reused += 1
        elif ok and task_id in self.caught_ids.get(step, ()):
            self.caught_ids[step].discard(task_id)
            counts.failed += 1
            counts.caught += 1
        elif ok:
            counts.done += 1
            if step == "end":
                self.status = "succeeded"
        else:
            counts.failed += 1
            self.status = "failed"
            self._failed(step, task_id, failure)

    def batch_finished(self, step: str, task_ids: Sequence[str],
                       failed: Collection[str] = ()) -> None:
        """Several tasks of ``step`` ended at once (a batch of foreach splits)."""
        ids, failed = set(task_ids), set(failed)
        caught = self.caught_ids.get(step, set()) & ids
        for task_id in failed:
            self.finished(step, task_id, ok=False)
        for task_id in caught - failed:
            self.finished(step, task_id, ok=True)
        self._step(step).done += len(ids - failed - caught)

    def _failed(self, step: str, task_id: str, failure: Any) -> None:
        if len(self.failures) >= MAX_FAILURES:
            return
        pathspec = f"{self.run_id}/{step}/{task_id}"
        kind = getattr(failure, "type_name", None) or "an error"
        message = str(getattr(failure, "message", "") or "").strip().split("\n", 1)[0]
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + "..."
        command = f"python {self.flow_file or 'flow.py'} logs {pathspec}"
        self.failures.append({"pathspec": f"{self.flow}/{pathspec}", "type": kind,
                              "message": message, "logs": command})

    # -- clusters ---------------------------------------------------------------------

    def cluster_up(self, name: str, **facts: Any) -> None:
        self.clusters[name] = ClusterUse(name=name, **facts)

    def cluster_down(self, name: str, *, held: float | None = None,
                     used: float | None = None) -> None:
        cluster = self.clusters.get(name)
        if cluster is not None:
            cluster.up, cluster.meter = False, None
            cluster.held, cluster.used = held, used

    def running_on(self, cluster: str, running: dict[str, int]) -> None:
        """How many of the run's tasks ``cluster``'s scheduler counted running, by step."""
        for name, counts in self.steps.items():
            if name in running:
                counts.running[cluster] = int(running[name])
            else:
                counts.running.pop(cluster, None)

    def ended(self) -> None:
        """The driver lets go of the run's clusters; a run not known to have ended was
        stopped (interrupted, or the driver failed)."""
        if self.status == "running":
            self.status = "stopped"
        self.finished_at = self.finished_at or time.time()
        for counts in self.steps.values():
            counts.running.clear()

    # -- what the page gets ---------------------------------------------------------------

    def state(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        clusters = [c.as_json() for c in self.clusters.values()]
        held = [c["held"] for c in clusters if c["held"] is not None]
        costs = [c["cost"] for c in clusters if c["cost"] is not None]
        if self.status != "running" and self.finished_at is None:
            self.finished_at = now
        return {
            "key": f"{self.flow}/{self.run_id}", "flow": self.flow, "run_id": self.run_id,
            "status": self.status, "started_at": self.started_at,
            "finished_at": self.finished_at, "now": now,
            "steps": [counts.as_json(name, over=self.status != "running")
                      for name, counts in self.steps.items()],
            "clusters": clusters, "failures": list(self.failures),
            "worker_seconds": round(sum(held), 3) if held else None,
            "cost": round(sum(costs), 4) if costs else None, "currency": currency(),
            "logs": f"python {self.flow_file or 'flow.py'} logs {self.run_id}/STEP/TASK_ID",
        }
