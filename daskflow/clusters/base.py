"""What a step asks for (:class:`ResourceRequest`) and who can give it (:class:`ClusterBackend`).

A backend turns a request into the keyword arguments of the Dask cluster class
it wraps, with a pure function (``cluster_kwargs``) that a test can check
without starting anything, and starts that cluster as a context manager that
closes it in every outcome and then checks that nothing of it is left.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shlex
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from .. import config
from ..exceptions import (
    ClusterError,
    ConfigurationError,
    DaskflowException,
    did_you_mean,
)
from .errors import (
    ClusterStartTimeoutError,
    ClusterTeardownError,
    ResourceRequestError,
    WorkerKilledError,
)

logger = logging.getLogger("daskflow.clusters")

MiB = 2**20
GiB = 2**30
#: seconds a closed cluster's workers get to exit on their own before they are killed
TEARDOWN_GRACE = 5.0


def format_bytes(n: int) -> str:
    """Exact when short, rounded otherwise: ``16 GiB``, ``1536 MiB``, ``23.54 GiB``.

    >>> format_bytes(1536 * 2**20), format_bytes(24684096 * 1024)
    ('1536 MiB', '23.54 GiB')
    """
    for unit, size in (("TiB", 2**40), ("GiB", GiB), ("MiB", MiB), ("KiB", 2**10)):
        if n % size == 0 and 0 < n // size < 10000:
            return f"{n // size} {unit}"
    from dask.utils import format_bytes as dask_format_bytes
    return dask_format_bytes(n)


#: what an environment variable's name may be: a shell word (it becomes ``export NAME=...``)
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, repr=False)
class ResourceRequest:
    """The size of one worker, how many of them, and the environment they start with.

    ``cpu`` may be fractional (Metaflow allows it); a worker gets
    ``ceil(cpu)`` threads. ``memory`` and ``disk`` are bytes per worker,
    None for the backend's default. ``env`` holds the environment variables
    every worker of the cluster is started with (``@environment``): given as a
    mapping or pairs, kept as sorted ``(name, value)`` pairs, read back with
    :attr:`env_dict`. Equal requests compare and hash equal, so a runtime can
    tell when two adjacent steps could share a cluster.

    >>> ResourceRequest(cpu=4, memory=16 * 2**30, workers=2).total_cpu
    8
    >>> ResourceRequest(cpu=4, memory=16 * 2**30, gpu=1, workers=2).describe()
    '2 workers x (4 cores, 16 GiB, 1 GPU)'
    >>> request = ResourceRequest(env={"MODE": "fast", "LEVEL": 3})
    >>> request.env, request.describe()
    ((('LEVEL', '3'), ('MODE', 'fast')), '1 worker x (1 core), env LEVEL, MODE')
    """

    cpu: float = 1
    memory: int | None = None   # bytes per worker; None: the backend's default
    gpu: int = 0
    disk: int | None = None     # bytes per worker
    workers: int = 1
    env: tuple[tuple[str, str], ...] = ()   # the workers' environment variables, sorted
    secrets: tuple[tuple[str, str], ...] = ()   # secret variables: (name, reference), sorted
    max_lifetime: float | None = None   # seconds; None: daskflow.cluster.max-lifetime

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.cpu, (int, float)) or isinstance(self.cpu, bool) \
                or not self.cpu > 0:
            problems.append(f"cpu={self.cpu!r} (a positive number)")
        for field in ("memory", "disk"):
            value = getattr(self, field)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or value <= 0):
                problems.append(f"{field}={value!r} (a positive number of bytes or None)")
        if not isinstance(self.gpu, int) or isinstance(self.gpu, bool) or self.gpu < 0:
            problems.append(f"gpu={self.gpu!r} (a whole number >= 0)")
        if not isinstance(self.workers, int) or isinstance(self.workers, bool) \
                or self.workers < 1:
            problems.append(f"workers={self.workers!r} (a whole number >= 1)")
        if self.max_lifetime is not None and (
                not isinstance(self.max_lifetime, (int, float)) or isinstance(
                    self.max_lifetime, bool) or not 0 < self.max_lifetime < math.inf):
            problems.append(f"max_lifetime={self.max_lifetime!r} (positive seconds or None)")
        env, env_problem = _normalize_env(self.env)
        object.__setattr__(self, "env", env)  # frozen: the one normalization it gets
        if env_problem:
            problems.append(env_problem)
        secrets, secrets_problem = _normalize_secrets(self.secrets, {n for n, _ in env})
        object.__setattr__(self, "secrets", secrets)
        if secrets_problem:
            problems.append(secrets_problem)
        if problems:
            raise ResourceRequestError("Invalid resource request: " + "; ".join(problems) + ".")

    def __repr__(self) -> str:
        # env by name only: a request gets logged, and a value may be a secret
        env = f", env=<{', '.join(name for name, _ in self.env)}>" if self.env else ""
        if self.secrets:
            env += f", secrets={self.secrets!r}"  # references (env:NAME, an ARN), not values
        life = f", max_lifetime={self.max_lifetime!r}" if self.max_lifetime else ""
        return (f"ResourceRequest(cpu={self.cpu!r}, memory={self.memory!r}, gpu={self.gpu!r}, "
                f"disk={self.disk!r}, workers={self.workers!r}{env}{life})")

    @property
    def threads(self) -> int:
        """Threads (and cores) per worker: ``cpu`` rounded up."""
        return max(1, math.ceil(self.cpu))

    @property
    def total_cpu(self) -> int:
        return self.threads * self.workers

    @property
    def env_dict(self) -> dict[str, str]:
        """``env`` as a new dict, for the keyword argument of a cluster class."""
        return dict(self.env)

    def describe_worker(self) -> str:
        """``4 cores, 16 GiB, 1 GPU``: one worker's size."""
        parts = [f"{self.threads} core{'s' if self.threads != 1 else ''}"]
        if self.memory is not None:
            parts.append(format_bytes(self.memory))
        if self.gpu:
            parts.append(f"{self.gpu} GPU{'s' if self.gpu != 1 else ''}")
        if self.disk is not None:
            parts.append(f"{format_bytes(self.disk)} disk")
        return ", ".join(parts)

    def describe(self) -> str:
        """``2 workers x (4 cores, 16 GiB, 1 GPU)``: for the terminal and error messages.

        Environment variables are named, never shown with their values (they may be secret).
        """
        workers = f"{self.workers} worker{'s' if self.workers != 1 else ''}"
        env = f", env {', '.join(name for name, _ in self.env)}" if self.env else ""
        if self.secrets:
            env += f", secrets {', '.join(name for name, _ in self.secrets)}"
        return f"{workers} x ({self.describe_worker()}){env}"


def _normalize_env(env: Any) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """``env`` as sorted (name, value) string pairs, and what is wrong with it (or None)."""
    try:
        pairs = list(env.items()) if isinstance(env, Mapping) else [tuple(p) for p in env]
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError
    except (TypeError, ValueError):
        return (), f"env={env!r} (a mapping of variable names to values)"
    bad_names = [name for name, _ in pairs
                 if not isinstance(name, str) or not ENV_NAME.fullmatch(name)]
    if bad_names:
        return (), (f"env names {', '.join(repr(n) for n in bad_names)} (letters, digits and "
                    f"underscores, not starting with a digit)")
    bad_values = [name for name, value in pairs
                  if not isinstance(value, (str, int, float)) or isinstance(value, bool)]
    if bad_values:
        return (), (f"env values of {', '.join(bad_values)} (a string or a number each; "
                    f"values are not shown)")
    if len({name for name, _ in pairs}) != len(pairs):
        return (), "env names given twice"
    return tuple(sorted((name, str(value)) for name, value in pairs)), None


def _normalize_secrets(secrets: Any, env_names: set[str]
                       ) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """``secrets`` as sorted (name, reference) pairs, and what is wrong with it (or None)."""
    from ..secrets import SecretError, parse_secrets
    try:
        pairs = dict(secrets.items() if isinstance(secrets, Mapping) else secrets)
        refs = parse_secrets({name: str(ref) for name, ref in pairs.items()}, what="secrets")
    except SecretError as exc:
        return (), str(exc)
    except (TypeError, ValueError):
        return (), "secrets (a mapping of variable names to references such as env:NAME)"
    if set(refs) & env_names:
        return (), f"secrets {', '.join(sorted(set(refs) & env_names))} also given in env"
    return tuple(sorted((name, str(ref)) for name, ref in refs.items())), None


def export_lines(env: tuple[tuple[str, str], ...]) -> list[str]:
    """Shell lines that set ``env`` (a request's) in a job script, each value quoted.

    >>> export_lines((("MODE", "fast run"),))
    ["export MODE='fast run'"]
    """
    return [f"export {name}={shlex.quote(value)}" for name, value in env]


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
      a worker died (SLURM's job log, ...), used by :meth:`diagnose`.

    What a runtime asks of every backend, with defaults a subclass may change:

    - ``default_request(max_workers)``: the size of a run's default cluster on
      this backend (no step asked for one);
    - ``prepare()``: called once on the driver when a run that uses this backend
      starts, before anything is stored (the local backend starts its fork server);
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

    def prepare(self) -> None:
        """Called once on the driver when a run using this backend starts; nothing by default."""

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

    def explain_worker_death(self, cluster: Any, worker: Any) -> WorkerKilledError | None:
        """The backend's account of why ``worker`` (a scheduler WorkerState) died."""
        return None

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
        explained = self.explain_worker_death(cluster, worker)
        if explained is None:
            explained = _nanny_memory_restart(cluster, worker, self.name)
        if explained is not None:
            return explained
        limit = getattr(worker, "memory_limit", None)
        return WorkerKilledError(
            f"Worker {worker.name} ({worker.address}) of the {self.name} cluster died while "
            f"running task {getattr(exc, 'task', '?')!r}"
            f"{f' (memory limit {format_bytes(limit)})' if limit else ''}, and "
            f"the {self.name} backend does not say why. A crash in native code, or running "
            f"out of memory, are the usual causes: ask for more memory with "
            f"@resources(memory=...).", reason="unknown", worker=worker.name)

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
                      workers=request.workers, started_at=started)

    def worker_processes(self, cluster: Any) -> list[int]:
        """Pids of the cluster's workers on this machine (none for a remote backend)."""
        return []

    def hourly_price(self, request: ResourceRequest) -> float | None:
        """Estimated price of one worker-hour of ``request`` here (:mod:`.pricing`)."""
        from .pricing import hourly_price
        try:
            return hourly_price(self, request)
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
    took it off under each other ("spec not found for the module 'tmp...'")."""
    from .lifetime import preload
    if backend.scheduler_in_process and preload(request):
        with _PRELOAD_IMPORT:
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


def _nanny_memory_restart(cluster: Any, worker: Any, backend: str) -> WorkerKilledError | None:
    """Dask's nanny logs a 'worker-restart-memory' event when it kills a worker over 95%."""
    deadline = time.monotonic() + 2.0  # the nanny's event may trail the task's failure
    while True:
        for _, event in _scheduler_events(cluster, "worker-restart-memory"):
            if isinstance(event, dict) and event.get("worker") == worker.address:
                limit = getattr(worker, "memory_limit", None)
                return WorkerKilledError(
                    f"Worker {worker.name} of the {backend} cluster ran out of memory: it used "
                    f"{format_bytes(int(event.get('rss', 0)))}, over 95% of its "
                    f"{format_bytes(limit) if limit else '?'} limit, and Dask's nanny killed "
                    f"it. Ask for more memory with @resources(memory=...), or make the step "
                    f"use less.", reason="memory", worker=worker.name,
                    evidence=(f"worker-restart-memory event: {event}",))
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


def _scheduler_events(cluster: Any, topic: str) -> tuple:
    try:
        return tuple(cluster.sync(cluster.scheduler_comm.events, topic=topic))
    except Exception:  # a closed or unreachable scheduler has nothing to tell
        return ()
