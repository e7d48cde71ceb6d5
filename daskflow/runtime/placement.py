"""Which cluster each step runs on, and the clusters a run starts for its steps.

A step with ``@resources`` gets a cluster of its own from the backend it names
(or the run's default backend), started when its first task is ready and
closed when no task needs it any more.  It takes tasks as soon as its first worker
is there, and the others as they start (a gang waits for all of its nodes); workers
still queued when the step ends are cancelled with the cluster.  Adjacent steps that
ask for the same
size on the same backend share one (``daskflow.cluster.reuse-adjacent``).
Clusters start and close in background threads so the rest of the run goes on
meanwhile; each reports to the driver through its event queue.
"""

from __future__ import annotations

import queue
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import Any

from ..clusters import ResourceRequest, get_backend
from ..secrets import parse_reference, resolve
from ..clusters.labels import labelled_step
from .meter import WorkerMeter
from .plan import Placement


@dataclass
class StepCluster:
    """A started cluster, its client, and the run's context submitted to it."""

    key: str
    placement: Placement
    client: Any
    ctx_future: Any
    stack: ExitStack
    backend: Any
    cluster: Any
    info: dict[str, Any] = field(default_factory=dict)
    meter: WorkerMeter | None = None


@dataclass(frozen=True)
class ClusterReady:
    """The cluster for ``key`` is up."""

    key: str
    cluster: StepCluster


@dataclass(frozen=True)
class ClusterFailed:
    """The cluster for ``key`` did not start."""

    key: str
    error: BaseException


class ClusterPool:
    """Starts and closes the step clusters of one run, off the driver's thread."""

    def __init__(self, ctx_bytes: bytes, run_id: str, events: queue.Queue,
                 on_change: Any, setup: Any = None, *,
                 ctx_bytes_by_reference: bytes | None = None) -> None:
        self.ctx_bytes = ctx_bytes
        # the context without any step's secret values, for clusters whose backend gives
        # their workers the secrets itself (and whose connection may be plain tcp)
        self.ctx_bytes_by_reference = ctx_bytes_by_reference or ctx_bytes
        # setup(client, backend, cluster=, step=): ship the run's code, check the workers
        self.setup = setup
        self.run_id = run_id
        self.events = events
        self.on_change = on_change  # called with the cluster's info dict on start/stop
        self.ready: dict[str, StepCluster] = {}
        self.starting: set[str] = set()
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()
        self.counter = 0

    def ensure(self, key: str, placement: Placement, workers: int, steps: str, *,
               all_at_once: bool = False) -> None:
        """Start the cluster for ``key`` unless it is ready or starting; the driver
        hears :class:`ClusterReady` (once its first worker is there, or all of them
        when ``all_at_once``) or :class:`ClusterFailed`."""
        with self.lock:
            if key in self.ready or key in self.starting:
                return
            self.starting.add(key)
            self.counter += 1
            name = f"step-{self.counter}"
        request = replace(placement.request, workers=max(1, workers))
        thread = threading.Thread(target=self._start, name=f"daskflow-start-{key}",
                                  args=(key, name, placement, request, steps, all_at_once),
                                  daemon=True)
        self.threads.append(thread)
        thread.start()

    def _start(self, key: str, name: str, placement: Placement, request: ResourceRequest,
               steps: str, all_at_once: bool) -> None:
        from distributed import Client

        from ..remote.environment import our_version_check
        from .context import submit_context

        stack = ExitStack()
        started = time.time()
        try:
            backend = get_backend(placement.backend)
            with labelled_step(self.run_id, steps):  # run, step, user: on the cluster
                cluster = stack.enter_context(backend.open(
                    request, min_workers=None if all_at_once else 1))
            with our_version_check():  # said by setup's environment check instead
                client = stack.enter_context(Client(cluster, set_as_default=False))
            if self.setup is not None:  # before the context: its tasks need daskflow there
                self.setup(client, backend, cluster=name, step=steps)
            if request.secrets and not backend.secrets_by_reference:
                from .worker_secrets import WorkerSecrets
                client.register_plugin(WorkerSecrets(
                    {var: resolve(parse_reference(ref, what=var), name=var)
                     for var, ref in request.secrets}))
            ctx_future = submit_context(client, self.context_bytes(backend),
                                        f"context-{self.run_id}")
            info = {"name": name, "backend": placement.backend, "step": steps,
                    "description": backend.describe(request) + _joining(client, request),
                    "started_at": started,
                    "ready_at": time.time(), "stopped_at": None,
                    "dashboard": client.dashboard_link, "workers": request.workers,
                    "price_per_worker_hour": backend.hourly_price(request)}
            step_cluster = StepCluster(key, placement, client, ctx_future, stack, backend,
                                       cluster, info, WorkerMeter(client))
        except BaseException as exc:  # reported to the driver, which fails the run
            stack.close()
            with self.lock:
                self.starting.discard(key)
            self.events.put(ClusterFailed(key, exc))
            return
        with self.lock:
            self.starting.discard(key)
            self.ready[key] = step_cluster
        self.on_change(info)
        self.events.put(ClusterReady(key, step_cluster))

    def context_bytes(self, backend: Any) -> bytes:
        """The run's context as sent to a cluster of ``backend``."""
        return self.ctx_bytes_by_reference if backend.secrets_by_reference else self.ctx_bytes

    def diagnose(self, key: str, exc: BaseException) -> BaseException | None:
        """The backend's account of a worker death on cluster ``key`` (SLURM's memory kill...)."""
        with self.lock:
            step_cluster = self.ready.get(key)
        if step_cluster is None or not isinstance(exc, Exception):
            return None
        try:
            return step_cluster.backend.diagnose(step_cluster.cluster, exc)
        except Exception:
            return None

    def close(self, key: str) -> None:
        """Close the cluster for ``key`` in the background."""
        with self.lock:
            step_cluster = self.ready.pop(key, None)
        if step_cluster is not None:
            thread = threading.Thread(target=self._close, args=(step_cluster,), daemon=True,
                                      name=f"daskflow-close-{key}")
            self.threads.append(thread)
            thread.start()

    def _close(self, step_cluster: StepCluster) -> None:
        try:
            if step_cluster.meter is not None:
                step_cluster.info.update(step_cluster.meter.stop())
            step_cluster.stack.close()
        finally:
            step_cluster.info["stopped_at"] = time.time()
            self.on_change(step_cluster.info)

    def close_all(self) -> None:
        """Close every cluster and wait: nothing is kept past the run."""
        while True:
            for thread in list(self.threads):
                thread.join()  # a cluster still starting is closed once it is up
            with self.lock:
                keys = list(self.ready)
            if not keys:
                return
            for key in keys:
                self.close(key)


def _joining(client: Any, request: ResourceRequest) -> str:
    """``; 2 of 6 workers up, the others join as they start`` while some are missing."""
    try:
        up = len(client.scheduler_info(n_workers=-1)["workers"])
    except Exception:  # noqa: BLE001  a description only
        return ""
    if up >= request.workers:
        return ""
    return f"; {up} of {request.workers} workers up, the others join as they start"
