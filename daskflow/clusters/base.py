"""Who can give a step what it asks for: :class:`ClusterBackend`, the contract every backend keeps.

A backend turns a :class:`~daskflow.clusters.request.ResourceRequest` into the
keyword arguments of the Dask cluster class it wraps, with a pure function
(``cluster_kwargs``) that a test can check without starting anything, and starts
that cluster as a context manager that closes it in every outcome and then checks
that nothing of it is left.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from .. import causes, config
from ..exceptions import (
    ClusterError,
    ConfigurationError,
    DaskflowException,
    did_you_mean,
)
from .deaths import Death, NannyAccount, nanny_death
from .errors import (
    ClusterStartTimeoutError,
    ClusterTeardownError,
    WorkerKilledError,
)
from .live import LiveCluster
from .request import GiB, MiB, ResourceRequest, export_lines, format_bytes

__all__ = ["SCHEDULER_ENV", "TEARDOWN_GRACE", "ClusterBackend", "GiB", "MiB", "ResourceRequest",
           "export_lines", "format_bytes", "logger"]

logger = logging.getLogger("daskflow.clusters")

#: seconds a closed cluster's workers get to exit on their own before they are killed
TEARDOWN_GRACE = 5.0
#: every scheduler daskflow starts fails a task at the first death of its worker
#: (``KilledWorker``): the runtime, not Dask, decides what runs again and where
#: (``runtime/diagnosis.py``).  Schedulers in this process get it from the config.
SCHEDULER_ENV = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}


class ClusterBackend:
    """Base of every cluster backend.

    Contract for a subclass (most of them only need the first four):

    - ``name``: the registry name (``local``, ``slurm``, ...); ``config_section``:
      where its settings live under ``daskflow`` (``cluster.slurm``); its
      keyword arguments override those settings (``queue="gpu"``);
    - ``cluster_kwargs(request, name=...)``: pure translation into the wrapped
      class's keyword arguments, ``request.env`` included: every worker must
      start with those environment variables;
    - ``check(request)``: raise :class:`ResourceRequestError` before anything
      starts when the request can never be met (say what was asked, what
      exists, and what could serve it);
    - ``make_cluster(request, name=...)``: start the cluster and ask for
      ``request.workers`` workers; ``open`` waits (bounded) for all of them, or for
      ``min_workers`` of them (a step cluster starts with its first worker and takes
      the others as they come; those never started are cancelled at teardown);
    - ``startup_problem(cluster, name)``: polled while waiting; a message when
      the workers will never come (a refused submission, a job that died);
    - ``snapshot`` / ``leftovers`` / ``force_teardown``: what to look for after
      ``close()`` to be sure nothing of the cluster runs any more, and how to
      kill what does (:class:`~daskflow.clusters.processes.LocalProcessTeardown`
      does it for worker processes on this machine);
    - ``explain_worker_death(cluster, worker)``: the backend's own account of why
      a worker died, as a :class:`~daskflow.clusters.deaths.Death` (a cause and a
      sentence: SLURM's job state, an ECS task's stop reason, a pod's status), used by
      :meth:`worker_death` and :meth:`diagnose`; None when the service says nothing
      (the nanny's account is used then).

    What a runtime asks of every backend, with defaults a subclass may change:

    - ``default_request(max_workers)``: the size of a run's default cluster on
      this backend (no step asked for one);
    - ``prepare(imports=...)``: called once on the driver when a run that uses this
      backend starts, before anything is stored (the local backend starts its fork
      server, which imports ``imports`` too: the datastore's filesystem);
    - ``shares_filesystem``: whether the workers see the driver's files (a local
      datastore folder works there): True, False, or None for "unknown". A
      backend whose section has a ``shares-filesystem`` setting takes it from there.
    - ``local_machine``: whether the workers run on this machine from this Python
      (the runtime then ships no code and retries without waiting).
    - ``secrets_by_reference``: whether the backend starts workers with the
      request's ``secrets`` itself, by reference (an ECS task definition's
      ``secrets``, a Kubernetes Secret): then the runtime does not send the
      values with the tasks. Otherwise it does, and a backend must keep
      ``request.secrets`` out of scripts and command lines.
    - ``worker_memory(request)``: bytes per worker, the request's or the
      backend's ``memory`` setting.

    What ``daskflow clusters list`` / ``gc`` and the cost estimate ask of every
    backend the registry knows (its own, registered, or from an entry point), with
    defaults that serve a backend whose scheduler runs in the driver:

    - ``listed_by``: the name of the backend whose ``live_clusters`` lists this
      one's clusters. ``"local"`` (the default): the records on this machine,
      which ``open`` writes for every cluster (:mod:`.records`). A backend whose
      clusters live in a service that can outlive the driver (a batch queue, a
      cloud API) gives its own name (``slurm``), and backends that share one
      listing share it (``aws-fargate``, ``aws-ecs`` and ``aws-ec2`` say ``aws``);
    - ``set_up_here()`` (a classmethod): whether ``list-backends: auto`` asks
      this listing on this machine (``squeue`` on PATH, a kubeconfig, AWS
      credentials); True by default;
    - ``live_clusters()``: the :class:`~daskflow.clusters.live.LiveCluster` of
      each of daskflow's clusters that still runs here, with the labels the
      backend wrote on it (run, step, user, version, driver: its folder's
      ``labels.py``); by default the records listed by this backend;
    - ``end_cluster(cluster)``: end one of them with the backend's own means
      (``scancel``, StopTask, a DELETE), and say what was done; by default
      its recorded worker processes on this machine are killed;
    - ``price(request)``: one worker-hour of ``request`` in
      ``daskflow.cluster.prices.currency``, or None; by default from the table
      ``daskflow.cluster.prices.<name>`` (:mod:`.pricing`). The runtime calls
      ``hourly_price``, which never fails a run.

    ``open(request, min_workers=None)`` is the one entry point a runtime needs: a
    context manager that yields a started cluster with all its workers (or at least
    ``min_workers``), closes it on success,
    exception, Ctrl-C and generator close, verifies that nothing is left, and
    turns a ``KilledWorker`` leaving the block into a :class:`WorkerKilledError`
    that says why the worker died.
    """

    name: ClassVar[str] = "base"
    config_section: ClassVar[str | None] = None
    #: whether workers see the driver's files; None: unknown (a runtime may probe)
    shares_filesystem: bool | None = None
    #: whether the workers run on this machine, from this interpreter
    local_machine: ClassVar[bool] = False
    #: whether workers get request.secrets from the platform (see the contract)
    secrets_by_reference: bool = False
    #: whether the cluster's scheduler runs inside this process (LocalCluster, dask-jobqueue)
    scheduler_in_process: ClassVar[bool] = False
    #: the backend whose live_clusters lists this one's clusters ("local": the records)
    listed_by: ClassVar[str] = "local"

    def __init__(self, **options: Any) -> None:
        self.options = {key.replace("-", "_"): value for key, value in options.items()}
        allowed = self.option_names()
        if allowed is not None:
            for key in self.options:
                if key not in allowed:
                    raise ConfigurationError(
                        f"The {self.name} backend got an unknown option '{key}'."
                        f"{did_you_mean(key, allowed)} Allowed: {', '.join(sorted(allowed))}.")
        if allowed is not None and "shares_filesystem" in allowed:
            setting = self.option("shares-filesystem")
            if setting is not None:
                self.shares_filesystem = bool(setting)

    # -- settings ---------------------------------------------------------------------
    def option_names(self) -> list[str] | None:
        """The options this backend takes (its config section's keys); None: any."""
        if self.config_section is None:
            return None
        section = config.get(self.config_section) or {}
        return [key.replace("-", "_") for key in section]

    def option(self, key: str) -> Any:
        """``daskflow.<config_section>.<key>``, unless given as a keyword argument."""
        override = self.options.get(key.replace("-", "_"))
        if self.config_section is None:
            return override
        return config.get(f"{self.config_section}.{key}", override_with=override)

    def worker_memory(self, request: ResourceRequest) -> int:
        """Bytes per worker: the request's, else the backend's ``memory`` setting."""
        if request.memory is not None:
            return request.memory
        from dask.utils import parse_bytes
        setting = self.option("memory")
        if not setting:
            raise ConfigurationError(
                f"daskflow.{self.config_section}.memory is {setting!r}: give the {self.name} "
                f"workers' default memory (e.g. 4GiB), or ask with @resources(memory=...).")
        return int(parse_bytes(setting))

    # -- what a runtime asks of every backend -------------------------------------------
    def default_request(self, max_workers: int) -> ResourceRequest:
        """The size of a run's default cluster here: one core per worker, one worker per
        core of this machine, at most ``max_workers``."""
        return ResourceRequest(cpu=1, workers=max(1, min(os.cpu_count() or 1, max_workers)))

    def prepare(self, *, imports: Sequence[str] = ()) -> None:
        """Called once on the driver when a run using this backend starts; nothing by default.
        ``imports``: modules the run's tasks will need (its datastore's filesystem, such
        as ``s3fs``), for a backend whose workers start from a warm process to import there
        first."""

    # -- the contract -----------------------------------------------------------------
    def cluster_kwargs(self, request: ResourceRequest, *,
                       name: str | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def check(self, request: ResourceRequest) -> None:
        """Raise :class:`ResourceRequestError` if this backend can never serve ``request``."""

    def make_cluster(self, request: ResourceRequest, *, name: str) -> Any:
        raise NotImplementedError

    def startup_problem(self, cluster: Any, name: str) -> str | None:
        """A message when the workers will never come; polled while waiting for them."""
        return None

    def pending_reason(self, cluster: Any, name: str) -> str | None:
        """Why workers are still missing (queued jobs, ...), for the start-timeout message."""
        return None

    def snapshot(self, cluster: Any, name: str) -> Any:
        """What to look for after close (pids, job names); taken just before closing."""
        return None

    def leftovers(self, snapshot: Any) -> list[str]:
        """What of the closed cluster still runs, one line each; [] when all is gone."""
        return []

    def force_teardown(self, snapshot: Any) -> None:
        """Kill whatever ``leftovers`` reports."""

    def cleanup(self, snapshot: Any, *, failing: bool) -> None:
        """Last step of teardown (remove logs, ...); ``failing``: the block raised."""

    def explain_worker_death(self, cluster: Any, worker: Any) -> Death | None:
        """The backend's own account of why ``worker`` died (anything with ``address``,
        ``name`` and ``memory_limit``: a scheduler ``WorkerState``); None: it says nothing."""
        return None

    def worker_death(self, cluster: Any, worker: Any,
                     nanny: NannyAccount | None = None) -> Death:
        """Why ``worker`` died: the nanny's memory monitor if it stopped the process, else
        the backend's account, else how the nanny saw the process end (``nanny``)."""
        if nanny is not None and nanny.memory is not None:
            return nanny_death(nanny, getattr(worker, "memory_limit", None))
        try:
            explained = self.explain_worker_death(cluster, worker)
        except Exception as exc:  # noqa: BLE001  a service that cannot be asked says nothing
            logger.debug("explain_worker_death failed: %r", exc)
            explained = None
        return explained or nanny_death(nanny, getattr(worker, "memory_limit", None))

    def describe(self, request: ResourceRequest) -> str:
        """``slurm, 2 workers x (4 cores, 16 GiB)``: what the terminal prints on start."""
        return f"{self.name}, {request.describe()}"

    def exposure(self, request: ResourceRequest) -> dict[str, Any] | None:
        """What a cluster for ``request`` exposes to the network, for ``show``: ``ports``,
        ``sources`` (CIDRs), ``public_ip``, ``tls``; None when the backend does not say."""
        return None

    # -- lifecycle --------------------------------------------------------------------
    def new_cluster_name(self) -> str:
        """A name unique to one cluster (SLURM job name, ...), so teardown can find it."""
        return f"daskflow-{uuid.uuid4().hex[:8]}"

    @contextmanager
    def open(self, request: ResourceRequest, *,
             min_workers: int | None = None) -> Iterator[Any]:
        """Start a cluster for ``request``, yield it with all its workers (or once
        ``min_workers`` of them are there, the others joining as they start), always
        tear it down.

        >>> from daskflow.clusters import get_backend, ResourceRequest
        >>> with get_backend("local").open(ResourceRequest(cpu=1, workers=1)) as cluster:
        ...     from distributed import Client
        ...     with Client(cluster) as client:
        ...         client.submit(sum, [1, 2]).result()
        3
        """
        self.check(request)
        name = self.new_cluster_name()
        cluster = None
        started = time.time()
        try:
            with _preload_import(self, request):
                cluster = self.make_cluster(request, name=name)
            self.wait_for_workers(cluster, request, name=name, enough=min_workers)
            self._write_record(cluster, name, request, started)
        except BaseException as exc:
            self._teardown(cluster, name, failing=True)
            if isinstance(exc, DaskflowException) or not isinstance(exc, Exception):
                raise
            raise ClusterError(
                f"The {self.name} backend could not start a cluster of "
                f"{request.describe()}: {type(exc).__name__}: {exc}") from exc
        try:
            yield cluster
        except BaseException as exc:
            diagnosis = self.diagnose(cluster, exc) if isinstance(exc, Exception) else None
            self._teardown(cluster, name, failing=True)
            if diagnosis is not None:
                raise diagnosis from exc
            raise
        self._teardown(cluster, name, failing=False)

    def wait_for_workers(self, cluster: Any, request: ResourceRequest, *, name: str,
                         enough: int | None = None) -> None:
        """Wait (at most ``daskflow.cluster.start-timeout``) for ``enough`` workers (all
        ``request.workers`` by default)."""
        from dask.utils import parse_timedelta
        timeout = parse_timedelta(config.get("cluster.start-timeout"))
        deadline = time.monotonic() + timeout
        needed = request.workers if enough is None else max(1, min(enough, request.workers))
        next_probe = 0.0
        while True:
            available = len(cluster.scheduler_info.get("workers", {}))
            if available >= needed:
                return
            now = time.monotonic()
            if now >= next_probe:  # the probe may run a command (squeue): not every tick
                problem = self.startup_problem(cluster, name)
                if problem:
                    raise ClusterError(problem)
                next_probe = now + 1.0
            if now >= deadline:
                problem = self.startup_problem(cluster, name) or \
                    self.pending_reason(cluster, name) or ""
                arrived = f"Only {available} of {needed}" if available else \
                    f"None of the {request.workers}"
                raise ClusterStartTimeoutError(
                    f"{arrived} {self.name} worker(s) of {request.describe()} arrived "
                    f"within the start timeout of {timeout:g}s."
                    f"{' ' + problem if problem else ''} Raise daskflow.cluster.start-timeout "
                    f"if the backend is just slow, or ask for less.",
                    expected=needed, available=available, timeout=timeout)
            time.sleep(0.05)

    def diagnose(self, cluster: Any, exc: BaseException) -> WorkerKilledError | None:
        """Turn a ``KilledWorker`` from a task into an error that says why the worker died.

        Returns None for any other exception. The runtime may call this on an
        exception a future raised; ``open`` does it for one leaving its block.
        """
        if type(exc).__name__ != "KilledWorker" or not hasattr(exc, "last_worker"):
            return None
        worker = exc.last_worker
        death = self.worker_death(cluster, worker, _nanny_account(
            cluster, worker.address, getattr(worker, "pid", None)))
        return WorkerKilledError(
            f"Worker {worker.name} ({worker.address}) of the {self.name} cluster died while "
            f"running task {getattr(exc, 'task', '?')!r}: {death.message}. "
            f"{ADVICE.get(death.cause, ADVICE[causes.WORKER_LOST])}",
            cause=death.cause, worker=worker.name, job_id=death.job_id,
            evidence=death.evidence)

    def _write_record(self, cluster: Any, name: str, request: ResourceRequest,
                      started: float) -> None:
        """Note the live cluster for ``daskflow clusters list`` (:mod:`.records`)."""
        from . import records
        from .labels import current_labels
        try:
            pids = self.worker_processes(cluster)
        except Exception:  # noqa: BLE001  a record without pids still lists the cluster
            pids = []
        records.write(name, backend=self.name, labels=current_labels(),
                      scheduler=getattr(cluster, "scheduler_address", None), pids=pids,
                      workers=request.workers, started_at=started, listed_by=self.listed_by)

    def worker_processes(self, cluster: Any) -> list[int]:
        """Pids of the cluster's workers on this machine (none for a remote backend)."""
        return []

    # -- `daskflow clusters list` / `gc`, and cost: asked through the registry ---------------
    @classmethod
    def set_up_here(cls) -> bool:
        """Whether ``daskflow clusters list`` asks this listing when no backend is named."""
        return True

    def live_clusters(self) -> list[LiveCluster]:
        """daskflow's clusters of this listing that still run; by default this machine's
        records of the clusters listed by this backend, their worker processes checked."""
        from . import records
        return records.live_clusters(self.name)

    def end_cluster(self, cluster: LiveCluster) -> str:
        """End ``cluster`` (one of :meth:`live_clusters`); what was done, in words. By default
        its recorded worker processes on this machine are killed and its record removed."""
        from . import records
        return records.end(cluster)

    def price(self, request: ResourceRequest) -> float | None:
        """One worker-hour of ``request`` here; None: no price (:mod:`.pricing`).

        >>> import dask
        >>> with dask.config.set({"daskflow.cluster.prices.base.cpu-hour": 0.5}):
        ...     ClusterBackend().price(ResourceRequest(cpu=4))
        2.0
        """
        from .pricing import price_table, priced_memory, table_price
        table = price_table(self.name)
        if table is None:
            return None
        return table_price(table, cores=float(request.threads),
                           memory=priced_memory(self, request), gpus=request.gpu)

    def hourly_price(self, request: ResourceRequest) -> float | None:
        """:meth:`price`, for a run's cost estimate: None instead of an error."""
        try:
            return self.price(request)
        except Exception:  # noqa: BLE001  a price never fails a run: no estimate then
            return None

    def _teardown(self, cluster: Any, name: str, *, failing: bool) -> None:
        """Close, verify nothing is left, kill what is. Ctrl-C does not cut it short."""
        from dask.utils import parse_timedelta
        timeout = parse_timedelta(config.get("cluster.teardown-timeout"))
        interrupted = False
        snapshot = None
        left: list[str] = []
        for stage in ("snapshot", "close", "wait", "force", "cleanup"):
            try:
                if stage == "snapshot":
                    snapshot = self.snapshot(cluster, name)
                elif stage == "close" and cluster is not None:
                    _close(cluster, timeout)
                elif stage == "wait":
                    # a worker busy in a task can take its nanny's 30 s to close: the
                    # step is over, so after a short grace it is killed instead
                    left = self._wait_gone(snapshot, min(timeout, TEARDOWN_GRACE))
                elif stage == "force" and left:
                    logger.info("Cluster %s: still running %gs after close: %s; killing it.",
                                name, TEARDOWN_GRACE, "; ".join(left))
                    self.force_teardown(snapshot)
                    left = self._wait_gone(snapshot, max(timeout - TEARDOWN_GRACE, 1.0))
                elif stage == "cleanup":
                    self.cleanup(snapshot, failing=failing or bool(left))
            except KeyboardInterrupt:
                interrupted = True
            except Exception as exc:  # close() of a half-dead cluster may raise: verify anyway
                logger.debug("Cluster %s: teardown stage %s raised %r", name, stage, exc)
        from . import records
        from .leaks import release_closed_servers
        release_closed_servers()  # distributed would keep the closed scheduler forever
        if not left:  # kept otherwise: `daskflow clusters gc` finds what is left
            records.remove(name)
        else:
            message = (f"The {self.name} cluster {name} left things running after close and "
                       f"a forced kill: {'; '.join(left)}. Stop them by hand.")
            if failing or interrupted:
                logger.error(message)
            else:
                raise ClusterTeardownError(message)
        if interrupted and not failing:
            raise KeyboardInterrupt

    def _wait_gone(self, snapshot: Any, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            left = self.leftovers(snapshot)
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({options})"


_PRELOAD_IMPORT = threading.Lock()


@contextmanager
def _preload_import(backend: ClusterBackend, request: ResourceRequest) -> Iterator[None]:
    """Start schedulers of this process that get a preload (the max lifetime) one at a
    time: distributed imports preload text from a temporary file by putting the temporary
    folder on ``sys.path`` and taking it off again, so two step clusters starting at once
    took it off under each other ("spec not found for the module 'tmp...'"). The module
    it imports is taken out of ``sys.modules`` again (:mod:`.leaks`)."""
    from .leaks import forgetting_preloads
    from .lifetime import preload
    if backend.scheduler_in_process and preload(request):
        with _PRELOAD_IMPORT, forgetting_preloads():
            yield
    else:
        yield


def _close(cluster: Any, timeout: float) -> None:
    scheduler = getattr(cluster, "scheduler", None)  # in this process (local, SLURM)
    if getattr(getattr(scheduler, "status", None), "name", "") == "closed" and \
            hasattr(cluster, "shutdown_scheduler"):
        # it ended itself (its max lifetime): asking it to shut down would wait out the
        # connect timeout; its workers went with it, which the teardown then checks
        cluster.shutdown_scheduler = False
    try:
        cluster.close(timeout=timeout)
    except TypeError:  # a cluster class (given by dotted path) whose close() takes no timeout
        cluster.close()


#: what to do about each cause of a worker's death, in the error of a block it left
ADVICE = {
    causes.OUT_OF_MEMORY: "Ask for more memory with @resources(memory=...) (with max_memory=... "
                          "and @retry, an attempt that runs out is retried with twice as "
                          "much), or make the step use less.",
    causes.WALLTIME: "Raise the cluster's walltime, or split the step.",
    causes.PREEMPTED: "Retry the step (@retry), or use capacity that is not preemptible.",
    causes.WORKER_LOST: "A crash in native code, a kill, a lost machine or running out of "
                        "memory are the usual causes: @retry runs the step again; ask for "
                        "more memory with @resources(memory=...) if it is that.",
}


#: seconds to wait for the nanny's word of a dead worker (it trails the task's failure,
#: by more on a loaded machine)
NANNY_WAIT = 5.0


def _nanny_account(cluster: Any, address: str, pid: int | None = None) -> NannyAccount:
    """What the nannies of ``cluster`` said of the worker at ``address`` (process ``pid``):
    its memory monitor's event (the nanny's event may trail the task's failure: waited
    for; it may name a restarted worker by its predecessor's address, so its pid counts)."""
    deadline = time.monotonic() + NANNY_WAIT
    while True:
        for _, event in _scheduler_events(cluster, "worker-restart-memory"):
            if isinstance(event, dict) and (event.get("worker") == address or
                                            (pid and event.get("pid") == pid)):
                return NannyAccount(memory=event)
        if time.monotonic() >= deadline:
            return NannyAccount()
        time.sleep(0.1)


def _scheduler_events(cluster: Any, topic: str) -> tuple:
    try:
        return tuple(cluster.sync(cluster.scheduler_comm.events, topic=topic))
    except Exception:  # a closed or unreachable scheduler has nothing to tell
        return ()
