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

:class:`StepClusters` decides, touching no cluster: where each unfinished task runs,
which tasks wait for their cluster to start or for their parents' refs (futures
belong to the cluster that made them, so a step cluster's tasks get their parents'
results as values), and which clusters no task needs any more.
:class:`ClusterPool` starts and closes them.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import Any

from ..clusters import ResourceRequest, get_backend
from ..dashboard import flow_page_link
from ..graph import FlowGraph
from ..secrets import parse_reference, resolve
from ..clusters.labels import labelled_step
from .context import TaskKey, TaskRef, TaskSpec
from .meter import WorkerMeter
from .plan import Placement

#: the cluster key of the run's default cluster (the one it was started with)
DEFAULT = "default"


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


@dataclass
class Waiting:
    """Tasks for a step cluster, waiting for their cluster and their parents' refs."""

    step: str
    specs: list[TaskSpec]
    parents: list[list[Any]]
    cluster: str
    placement: Placement
    workers: int = 1
    missing: set[str] = field(default_factory=set)   # keys of parents not finished yet


@dataclass(frozen=True)
class StartCluster:
    """Have the cluster ``key`` started (if it is not up or starting)."""

    key: str
    placement: Placement
    workers: int
    step: str
    all_at_once: bool = False   # a gang needs every node; other steps start with one


@dataclass(frozen=True)
class SendTo:
    """Send these tasks to the step cluster ``cluster``, which is up."""

    cluster: str
    step: str
    specs: list[TaskSpec]
    parents: list[list[Any]]


@dataclass(frozen=True)
class CloseCluster:
    """No task needs the cluster ``key`` any more."""

    key: str


class StepClusters:
    """Where the unfinished tasks of a run are, and the step clusters they need.

    A step cluster starts when its first task is ready to go and closes after its last
    (with ``reuse``, not while a step just before one of the same size is unfinished).
    """

    def __init__(self, graph: FlowGraph, placements: dict[str, Placement | None], *,
                 gangs: frozenset[str] = frozenset(), max_workers: int = 16,
                 reuse: bool = False) -> None:
        self.graph = graph
        self.placements = placements
        self.gangs = gangs
        self.max_workers = max_workers
        self.reuse = reuse                 # daskflow.cluster.reuse-adjacent
        self.up: set[str] = set()
        self.waiting_for_parent: dict[str, list[Waiting]] = {}
        self.waiting_for_cluster: dict[str, list[Waiting]] = {}
        self.tasks: dict[tuple[str, str], str] = {}   # (step, task id) -> its cluster
        self.per_cluster: Counter[str] = Counter()
        self.per_step: Counter[str] = Counter()

    def key(self, step: str, placement: Placement) -> str:
        """The cluster ``step`` runs on with ``placement`` (a gang's is its own)."""
        if step in self.gangs:
            return f"gang:{step}"
        return repr(placement) if self.reuse else f"{step}:{placement!r}"

    def place(self, step: str, specs: Sequence[TaskSpec], parents: Sequence[Sequence[Any]],
              placement: Placement) -> list[StartCluster | SendTo]:
        """Tasks of ``step`` for its cluster; parents given by :class:`TaskKey` are waited
        for.  A foreach step's splits share one cluster, one worker per split at most;
        a gang's nodes get one worker each."""
        if step in self.gangs:
            workers = len(specs)
        elif len(specs) == 1:
            workers = placement.request.workers
        else:
            workers = min(len(specs), self.max_workers)
        waiting = Waiting(step, list(specs), [list(p) for p in parents],
                          self.key(step, placement), placement, workers)
        self.sent(step, [spec.task_id for spec in specs], waiting.cluster)
        for plist in parents:
            for parent in plist:
                key = str(parent) if isinstance(parent, TaskKey) else None
                if key is not None and key not in waiting.missing:
                    waiting.missing.add(key)
                    self.waiting_for_parent.setdefault(key, []).append(waiting)
        return [] if waiting.missing else self._ready(waiting)

    def waits_on(self, key: str) -> bool:
        """Whether a task waits for the ref of the task with Dask key ``key``."""
        return key in self.waiting_for_parent

    def parent_finished(self, key: str, ref: TaskRef) -> list[StartCluster | SendTo]:
        decisions: list[StartCluster | SendTo] = []
        for waiting in self.waiting_for_parent.pop(key, []):
            waiting.parents = [[ref if isinstance(p, TaskKey) and str(p) == key else p
                                for p in plist] for plist in waiting.parents]
            waiting.missing.discard(key)
            if not waiting.missing:
                decisions += self._ready(waiting)
        return decisions

    def _ready(self, waiting: Waiting) -> list[StartCluster | SendTo]:
        if waiting.cluster in self.up:
            return [SendTo(waiting.cluster, waiting.step, waiting.specs, waiting.parents)]
        self.waiting_for_cluster.setdefault(waiting.cluster, []).append(waiting)
        return [StartCluster(waiting.cluster, waiting.placement, waiting.workers,
                             waiting.step, all_at_once=waiting.step in self.gangs)]

    def cluster_up(self, key: str) -> list[SendTo]:
        self.up.add(key)
        return [SendTo(key, w.step, w.specs, w.parents)
                for w in self.waiting_for_cluster.pop(key, [])]

    def cluster_failed(self, key: str) -> list[Waiting]:
        """The tasks that waited for ``key``, which did not start."""
        return self.waiting_for_cluster.pop(key, [])

    def sent(self, step: str, task_ids: Sequence[str], cluster: str) -> None:
        """Tasks of ``step`` run (or wait to run) on ``cluster`` until :meth:`finished`."""
        for task_id in task_ids:
            if (step, task_id) not in self.tasks:
                self.tasks[(step, task_id)] = cluster
                self.per_cluster[cluster] += 1
                self.per_step[step] += 1

    def finished(self, step: str, task_id: str) -> list[CloseCluster]:
        """A task is done: the step clusters no unfinished task needs any more."""
        cluster = self.tasks.pop((step, task_id), None)
        if cluster is not None:
            for counter, name in ((self.per_cluster, cluster), (self.per_step, step)):
                counter[name] -= 1
                if not counter[name]:
                    del counter[name]
        if not self.up:
            return []
        needed = set(self.per_cluster)
        if self.reuse:  # keep a cluster the very next step will use again
            for unfinished in self.per_step:
                for nxt in self.graph[unfinished].out_funcs:
                    following = self.placements.get(nxt)
                    if following is not None:
                        needed.add(self.key(nxt, following))
        closing = sorted(self.up - needed)
        self.up.difference_update(closing)
        return [CloseCluster(key) for key in closing]


class ClusterPool:
    """Starts and closes the step clusters of one run, off the driver's thread."""

    def __init__(self, ctx_bytes: bytes, run_id: str, events: queue.Queue,
                 on_change: Any, setup: Any = None, *,
                 ctx_bytes_by_reference: bytes | None = None) -> None:
        self.ctx_bytes = ctx_bytes
        # the context without any step's secret values, for clusters whose backend gives
        # their workers the secrets itself (and whose connection may be plain tcp)
        self.ctx_bytes_by_reference = ctx_bytes_by_reference or ctx_bytes
        # setup(client, backend, cluster=, step=): ship the run's code, check the workers;
        # what it returns (if not None) is called before the cluster closes
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
                closing = self.setup(client, backend, cluster=name, step=steps)
                if closing is not None:  # before the client closes (last in, first out)
                    stack.callback(closing)
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
                    "dashboard": flow_page_link(client.dashboard_link),
                    "workers": request.workers,
                    "price_per_worker_hour": backend.hourly_price(request)}
            step_cluster = StepCluster(key, placement, client, ctx_future, stack, backend,
                                       cluster, info, WorkerMeter(client, self.run_id))
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

    def backend_and_cluster(self, key: str) -> tuple[Any, Any]:
        """The backend and cluster object of the step cluster ``key`` ((None, None): gone)."""
        with self.lock:
            step_cluster = self.ready.get(key)
        if step_cluster is None:
            return None, None
        return step_cluster.backend, step_cluster.cluster

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
