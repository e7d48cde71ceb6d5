"""What ``daskflow clusters list`` knows of one cluster daskflow started that still runs.

Every backend's listing (:meth:`~daskflow.clusters.base.ClusterBackend.live_clusters`)
returns :class:`LiveCluster` objects: the records on this machine by default
(:mod:`.records`), squeue, the AWS API or the Kubernetes API server for the backends
whose clusters live there. :mod:`.inventory` judges each and ends the orphans.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .labels import ClusterLabels


@dataclass
class LiveCluster:
    """One cluster daskflow started that still runs somewhere."""

    backend: str
    name: str
    labels: ClusterLabels
    started_at: float | None
    workers: int | None
    state: str
    #: the run is still running (True), is over or lost its driver (False), unknown (None)
    run_alive: bool | None = None
    why: str = ""                  # how run_alive was decided
    #: what the listing backend's ``end_cluster`` needs: pids, job ids, task ARNs, ...
    handle: dict[str, Any] = field(default_factory=dict)
    #: the backend whose ``live_clusters`` found it, and whose ``end_cluster`` ends it
    listed_by: str = ""

    @property
    def age(self) -> float | None:
        return None if self.started_at is None else max(0.0, time.time() - self.started_at)

    def as_json(self) -> dict[str, Any]:
        return {"backend": self.backend, "name": self.name, "run": self.labels.run,
                "step": self.labels.step, "user": self.labels.user,
                "version": self.labels.version, "driver": self.labels.driver,
                "started_at": self.started_at, "age": self.age, "workers": self.workers,
                "state": self.state, "run_alive": self.run_alive, "why": self.why}
