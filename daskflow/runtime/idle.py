"""The run's default cluster holds workers only while it has tasks.

On a backend whose capacity is shared or paid for (a SLURM partition, a cloud
account), the run's default cluster gives all its workers back once it has had
no task for ``daskflow.cluster.release-after`` — typically while a step runs on
a cluster of its own — and asks for them again when the next task comes.
Results its workers held are lost with them; a task that needs one again is
recomputed by Dask, which costs a read of the stored record (the step does not
run twice). On this machine the workers stay: idle cores cost nothing, and
starting workers again would.
"""

from __future__ import annotations

import threading
from typing import Any

from .. import config


class IdleRelease:
    """Scales ``cluster`` to 0 when idle and back to ``workers`` when needed."""

    def __init__(self, cluster: Any, workers: int) -> None:
        from dask.utils import parse_timedelta
        self.cluster = cluster
        self.workers = workers
        self.after = float(parse_timedelta(config.get("cluster.release-after")))
        self.busy = 0
        self.released = False
        self.lock = threading.Lock()
        self.timer: threading.Timer | None = None

    def task_sent(self, count: int = 1) -> None:
        with self.lock:
            self.busy += count
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            if self.released:
                self.released = False
                self.cluster.scale(self.workers)

    def task_done(self) -> None:
        with self.lock:
            self.busy = max(self.busy - 1, 0)
            if self.busy == 0 and not self.released and self.timer is None:
                self.timer = threading.Timer(self.after, self._release)
                self.timer.daemon = True
                self.timer.start()

    def _release(self) -> None:
        with self.lock:
            self.timer = None
            if self.busy == 0 and not self.released:
                self.released = True
                self.cluster.scale(0)

    def close(self) -> None:
        with self.lock:
            if self.timer is not None:
                self.timer.cancel()


def idle_release_for(backend: Any, cluster: Any, workers: int) -> IdleRelease | None:
    """An :class:`IdleRelease` where the setting (``auto``: off this machine) wants one."""
    setting = config.get("cluster.release-idle-workers")
    if setting == "auto":
        setting = not backend.local_machine
    if not setting or not hasattr(cluster, "scale"):
        return None
    return IdleRelease(cluster, workers)
