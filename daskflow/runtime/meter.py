"""Worker-seconds a cluster held and used, for the run report and the run's record.

Sampled from the cluster's scheduler in a background thread: *held* counts each
connected worker for the time it was connected, *used* the share of its threads
that had a task.  Adaptive scaling (workers coming and going) is counted as it
happens.  Samples come every ``daskflow.cluster.meter-interval``, so a figure is
off by at most that much per change.

Given the run's id, :meth:`WorkerMeter.stop` also reads, before the cluster closes, what
each step spent there from Dask's spans (``daskflow.dashboard.spans``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .. import config


class WorkerMeter:
    """Counts one cluster's worker-seconds until :meth:`stop`."""

    def __init__(self, client: Any, run_id: str | None = None) -> None:
        from dask.utils import parse_timedelta
        self.client = client
        self.run_id = run_id
        self.interval = float(parse_timedelta(config.get("cluster.meter-interval")))
        self.held = self.used = 0.0
        self.last = time.time()
        self.workers: dict[str, int] = {}
        self.busy: dict[str, float] = {}
        self.stopped = threading.Event()
        self._look()
        self.thread = threading.Thread(target=self._run, daemon=True, name="daskflow-meter")
        self.thread.start()

    def _look(self) -> None:
        """Add the time since the last look at the last look's counts, then look again."""
        now = time.time()
        elapsed, self.last = now - self.last, now
        self.held += len(self.workers) * elapsed
        self.used += sum(self.busy.values()) * elapsed
        try:
            workers = self.client.nthreads()
            processing = self.client.processing()
        except Exception:  # noqa: BLE001  closing: keep the last counts
            return
        self.workers = {w: max(int(n), 1) for w, n in workers.items()}
        self.busy = {w: min(len(processing.get(w, ())), n) / n
                     for w, n in self.workers.items()}

    def _run(self) -> None:
        while not self.stopped.wait(self.interval):
            self._look()

    def so_far(self) -> tuple[float, float]:
        """Worker-seconds held and used until now (read from another thread: the flow page)."""
        elapsed = time.time() - self.last
        held = self.held + len(self.workers) * elapsed
        return round(held, 3), round(min(self.used + sum(self.busy.values()) * elapsed, held), 3)

    def stop(self) -> dict[str, Any]:
        """Stop counting; the totals as the run's record keeps them, and the run's steps'
        figures from their spans when any ran here."""
        self.stopped.set()
        self.thread.join()
        self._look()
        totals: dict[str, Any] = {"worker_seconds_held": round(self.held, 3),
                                  "worker_seconds_used": round(min(self.used, self.held), 3)}
        if self.run_id is not None:
            steps = self._step_metrics()
            if steps:
                totals["steps"] = steps
        return totals

    def _step_metrics(self) -> dict[str, Any]:
        from ..dashboard.connect import step_metrics
        try:
            return step_metrics(self.client, self.run_id)
        except Exception:  # noqa: BLE001  figures for the report only: a closing cluster
            return {}
