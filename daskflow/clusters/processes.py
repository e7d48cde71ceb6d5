"""Teardown of worker processes on this machine: find their pids, check them, kill them.

Shared by the backends whose workers (or some of them) run here: ``local``, a
Dask cluster class given by dotted path, and ``ssh`` with this machine as a host.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar


class LocalProcessTeardown:
    """Mixin for a :class:`~daskflow.clusters.base.ClusterBackend`: after ``close()``,
    none of the cluster's processes on this machine may still run.

    ``snapshot`` takes the worker pids from the cluster's scheduler and nannies
    (override it to find others); ``leftovers`` lists those alive;
    ``force_teardown`` SIGKILLs them.
    """

    #: how a leftover pid is named in the teardown error
    process_label: ClassVar[str] = "worker process"

    def snapshot(self, cluster: Any, name: str) -> Any:
        return worker_pids(cluster)

    def leftovers(self, snapshot: Any) -> list[str]:
        return [f"{self.process_label} {pid}" for pid in alive(snapshot or ())]

    def force_teardown(self, snapshot: Any) -> None:
        kill(snapshot or ())

    def worker_processes(self, cluster: Any) -> list[int]:
        return sorted(worker_pids(cluster))


def worker_pids(cluster: Any) -> set[int]:
    """Pids of the cluster's worker processes, from its in-process scheduler and nannies."""
    if cluster is None:
        return set()
    pids: set[int] = set()
    scheduler = getattr(cluster, "scheduler", None)
    if scheduler is not None and hasattr(scheduler, "workers"):

        async def from_scheduler() -> list[int]:  # on the cluster's loop: thread-safe
            return [ws.pid for ws in scheduler.workers.values() if ws.pid]

        try:
            pids.update(int(pid) for pid in cluster.sync(from_scheduler))
        except Exception:  # a closed loop: the nannies below still know
            pass
    for nanny in list(getattr(cluster, "workers", {}).values()):  # restarted, not registered
        process = getattr(getattr(nanny, "process", None), "process", None)
        pid = getattr(process, "pid", None)
        if pid:
            pids.add(int(pid))
    pids.discard(os.getpid())
    return pids


def alive(pids: Any) -> list[int]:
    """The pids that still run (a zombie waiting to be reaped has stopped running)."""
    import psutil
    found = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                found.append(pid)
        except psutil.Error:
            pass
    return sorted(found)


def kill(pids: Any) -> None:
    """SIGKILL the pids that still run."""
    import psutil
    for pid in alive(pids):
        try:
            psutil.Process(pid).kill()
        except psutil.Error:
            pass
