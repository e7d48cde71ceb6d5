"""The local backend: ``distributed.LocalCluster`` worker processes on this machine.

With ``gpu=`` it uses ``dask_cuda.LocalCUDACluster`` (one worker per GPU,
pinned with ``CUDA_VISIBLE_DEVICES``) when this machine has NVIDIA GPUs and
dask-cuda is installed, and refuses clearly otherwise.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ...exceptions import ConfigurationError
from ..base import ClusterBackend
from ..errors import BackendNotInstalledError, ResourceRequestError
from ..labels import current_labels
from ..lifetime import preload
from ..processes import LocalProcessTeardown
from ..request import ResourceRequest, format_bytes
from ..security import cluster_security
from ..security import start as start_credentials
from .forkserver import forked_worker_kwargs, warm_up, worker_start_method


def machine_memory() -> int:
    from distributed.system import MEMORY_LIMIT
    return int(MEMORY_LIMIT)


def _cuda_cluster_class(request: ResourceRequest) -> Any:
    """dask-cuda's ``LocalCUDACluster``; a one-line error naming the extra without it."""
    try:
        from dask_cuda import LocalCUDACluster  # type: ignore[import-not-found]
    except ImportError as exc:
        raise BackendNotInstalledError(
            f"@resources(gpu={request.gpu}) on the local backend needs dask-cuda: "
            f"pip install 'daskflow[gpu]'.") from exc
    return LocalCUDACluster


def machine_cores() -> int:
    from dask.system import CPU_COUNT  # respects cgroup and affinity limits
    return int(CPU_COUNT)


def visible_gpus() -> list[str]:
    """NVIDIA devices this process may use: ``CUDA_VISIBLE_DEVICES`` if set, else nvidia-smi's."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                             timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def default_request(max_workers: int | None = None) -> ResourceRequest:
    """The size of a local cluster nobody sized: ``daskflow.local.n-workers`` workers
    (one per core when unset, at most ``max_workers``) of
    ``daskflow.local.threads-per-worker`` threads."""
    from ... import config
    cap = max_workers or machine_cores()
    workers = config.get("local.n-workers") or min(machine_cores(), cap)
    return ResourceRequest(cpu=config.get("local.threads-per-worker") or 1,
                           workers=min(int(workers), cap))


class LocalBackend(LocalProcessTeardown, ClusterBackend):
    """Worker processes on this machine, sized by the request.

    Settings: ``daskflow.local.memory-limit`` (per worker when the request
    gives none) and ``daskflow.local.dashboard-address``.

    >>> LocalBackend().cluster_kwargs(ResourceRequest(cpu=2, memory=2**30, workers=2))
    ... # doctest: +ELLIPSIS
    {'n_workers': 2, 'threads_per_worker': 2, 'memory_limit': 1073741824, ...}
    """

    name = "local"
    config_section = "local"
    local_machine = True      # on this machine: a retry need not wait, nothing to ship
    scheduler_in_process = True
    shares_filesystem = True

    def default_request(self, max_workers: int) -> ResourceRequest:
        return default_request(max_workers)

    def prepare(self, *, imports: Sequence[str] = ()) -> None:
        """Start the fork server now, so it imports what workers need (``imports`` too)
        while the run sets up, and the run's TLS credentials."""
        start_credentials()
        warm_up(imports)

    def cluster_class(self, request: ResourceRequest) -> str:
        """``module:Class`` of the cluster this request gets."""
        return "dask_cuda:LocalCUDACluster" if request.gpu else "distributed:LocalCluster"

    def cluster_kwargs(self, request: ResourceRequest, *,
                       name: str | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "n_workers": request.workers,
            "threads_per_worker": request.threads,
            "memory_limit": request.memory if request.memory is not None
            else self.option("memory-limit"),
            "processes": True,
            "dashboard_address": self.option("dashboard-address") or None,  # "": none
            "silence_logs": logging.CRITICAL,  # task errors are reported by daskflow
        }
        if request.env:
            kwargs["env"] = request.env_dict  # each nanny sets them in its worker process
        if preload(request):  # the scheduler itself ends the cluster at its max lifetime
            kwargs["scheduler_kwargs"] = {"preload": preload(request)}
        if name is not None:
            kwargs["name"] = name
        if request.gpu:
            # dask-cuda gives each worker exactly one GPU: pin the first N devices.
            del kwargs["processes"]
            devices = visible_gpus() if "CUDA_VISIBLE_DEVICES" in os.environ else \
                [str(i) for i in range(request.workers)]
            kwargs["CUDA_VISIBLE_DEVICES"] = ",".join(devices[:request.workers])
        return kwargs

    def check(self, request: ResourceRequest) -> None:
        self.dashboard_delay()  # a bad setting fails here, before anything starts
        cores = machine_cores()
        other = "Ask for less, or run the step on a backend with bigger machines " \
                "(e.g. @resources(..., backend='slurm'))."
        # distributed's MEMORY_LIMIT imports all of distributed: asked only when needed
        memory = machine_memory() if request.memory is not None else None
        if memory is not None and request.memory * request.workers > memory:
            raise ResourceRequestError(
                f"The local backend cannot give {request.workers} worker(s) of "
                f"{format_bytes(request.memory)} memory: this machine has "
                f"{format_bytes(memory)} in all. {other}")
        if request.threads > cores:
            raise ResourceRequestError(
                f"The local backend cannot give a worker {request.threads} cores "
                f"(@resources(cpu={request.cpu:g})): this machine has {cores}. {other}")
        if request.disk is not None:
            folder = config_local_directory()
            free = shutil.disk_usage(folder).free
            if request.disk * request.workers > free:
                raise ResourceRequestError(
                    f"The local backend cannot give {request.workers} worker(s) of "
                    f"{format_bytes(request.disk)} disk: {folder} has {format_bytes(free)} "
                    f"free. {other}")
        if request.gpu:
            self._check_gpu(request)

    def _check_gpu(self, request: ResourceRequest) -> None:
        if request.gpu > 1:
            raise ResourceRequestError(
                f"The local backend gives each worker one GPU (dask-cuda's model), not "
                f"{request.gpu}: ask for @resources(gpu=1, workers={request.gpu}) to use "
                f"{request.gpu} GPUs, or use a backend with multi-GPU workers (slurm).")
        devices = visible_gpus()
        if len(devices) < request.workers:
            raise ResourceRequestError(
                f"The local backend cannot give {request.workers} worker(s) with a GPU: this "
                f"machine has {len(devices)} NVIDIA GPU(s) visible"
                f"{' (nvidia-smi not found)' if shutil.which('nvidia-smi') is None else ''}. "
                f"Run the step on a GPU backend, e.g. @resources(gpu=1, backend='slurm').")
        _cuda_cluster_class(request)

    def dashboard_delay(self) -> float | None:
        """Seconds between the dashboard's link and Dask's own pages, loaded then even if
        nobody asked for them (``local.dashboard-delay``); None: at the first visit."""
        from dask.utils import parse_timedelta
        value = self.option("dashboard-delay")
        if value is None or value == "":  # an empty DASK_DASKFLOW__LOCAL__DASHBOARD_DELAY
            return None
        try:
            return float(parse_timedelta(value))
        except (KeyError, ValueError, TypeError, IndexError):
            raise ConfigurationError(
                f"daskflow.local.dashboard-delay is {value!r}: give a duration such as "
                f"1s, 500ms or 0, or null (at the first visit).") from None

    @contextmanager
    def open(self, request: ResourceRequest, *,
             min_workers: int | None = None) -> Iterator[Any]:
        # Workers fork from the warm fork server (forkserver.py) unless configured not to.
        with worker_start_method(), super().open(request, min_workers=min_workers) as cluster:
            try:
                yield cluster
            finally:
                pages = getattr(cluster, "daskflow_dashboard_pages", None)
                if pages is not None:
                    pages.stop()

    def make_cluster(self, request: ResourceRequest, *, name: str) -> Any:
        kwargs = self.cluster_kwargs(request, name=name)
        security = cluster_security()  # the run's credentials: not a translation of request
        if security is not None:
            kwargs["security"] = security
        if request.gpu:
            return _cuda_cluster_class(request)(**kwargs)
        forked = forked_worker_kwargs()  # the driver's environment, under the request's
        if forked:
            kwargs["env"] = {**forked["env"], **kwargs.get("env", {})}
        from .open_store import store_opener  # distributed's plugin: only now
        opener = store_opener(current_labels().datastore)  # the run's, when it has one
        if opener is not None:
            kwargs["plugins"] = (opener,)
        from distributed import LocalCluster
        if kwargs["dashboard_address"] is None:
            return LocalCluster(**kwargs)
        # The dashboard's Bokeh import costs the driver about 0.4 s of CPU (a third of a
        # small flow's run) and 60 MB: the scheduler's HTTP server (and so the link, and
        # the flow page) exists at once, and Dask's own pages are added to it when they
        # are first asked for, or after local.dashboard-delay where one is set.
        delay = self.dashboard_delay()
        kwargs["scheduler_kwargs"] = {**kwargs.get("scheduler_kwargs", {}), "dashboard": False}
        cluster = LocalCluster(**kwargs)
        cluster.daskflow_dashboard_pages = pages = DaskPages(cluster)
        cluster.loop.add_callback(_serve_starting_page, cluster.scheduler, pages.load)
        if delay is not None:  # after the starting page's callback: the loop runs it first
            pages.load_after(delay)
        return cluster


STARTING_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<meta http-equiv="refresh" content="1"><title>Dask dashboard</title></head>
<body><p>The Dask dashboard is starting; this page reloads itself in a second.</p></body>
</html>"""


#: Dask's own pages (``distributed.dashboard.scheduler``'s applications): until they are
#: loaded, asking for one loads them and answers with the starting page
DASK_PAGES = r"/(?:(?:status|system|shuffle|stealing|workers|exceptions|events|counters" \
    r"|tasks|profile|profile-server|graph|hardware|groups|gpu|individual-[\w-]+)/?)?"


def _serve_starting_page(scheduler: Any, load: Any) -> None:
    """Until Dask's pages exist, asking for one starts ``load`` and gets a page that
    reloads itself; asking for the list of Dask's plots (``/individual-plots.json``,
    which dask-labextension's panel reads) starts it too, and is answered once they
    are there (by Dask's own handler: the request is sent to it again)."""
    import asyncio
    import time

    from tornado.web import RequestHandler

    app = scheduler.http_application

    def loading() -> bool:
        return getattr(scheduler, "_daskflow_starting_rule", None) in app.default_router.rules

    class Starting(RequestHandler):
        def get(self, *args: Any) -> None:
            load()
            self.set_status(503)
            self.set_header("Retry-After", "1")
            self.write(STARTING_PAGE)

    class PlotsOnceLoaded(RequestHandler):
        async def get(self) -> None:
            load()
            deadline = time.monotonic() + 30
            while loading() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            if loading():  # they did not load (no Bokeh): none, as Dask answers then
                self.write({})
            else:
                self.redirect(self.request.uri)

    before = list(app.default_router.rules)
    app.add_handlers(r".*", [(DASK_PAGES, Starting),
                             (r"/individual-plots\.json", PlotsOnceLoaded)])
    added = [rule for rule in app.default_router.rules if rule not in before]
    scheduler._daskflow_starting_rule = added[0] if added else None


class DaskPages:
    """Loads Dask's own dashboard pages into a local cluster's running HTTP server, once:
    when one is first asked for (:meth:`load`), or after a delay (:meth:`load_after`),
    in a thread of its own (Bokeh's import)."""

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster
        self.loader: threading.Thread | None = None
        self._lock = threading.Lock()
        self.timer: threading.Timer | None = None

    def load_after(self, delay: float) -> None:
        self.timer = threading.Timer(delay, self.load)
        self.timer.name, self.timer.daemon = "daskflow-dashboard", True
        self.timer.start()

    def load(self) -> None:
        with self._lock:
            if self.loader is None:
                self.loader = threading.Thread(target=_add_dashboard, args=(self.cluster,),
                                               name="daskflow-dashboard", daemon=True)
                self.loader.start()

    def stop(self) -> None:
        """The cluster closes: no timer thread stays behind it. A load under way ends by
        itself, finding the cluster closed: the run does not wait for Bokeh's import."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer.join(1)


def _add_dashboard(cluster: Any) -> None:
    """Serve the Bokeh dashboard from the cluster's running HTTP server, as
    ``Scheduler(dashboard=True)`` (with its default prefix) does from the start."""
    scheduler = cluster.scheduler
    if scheduler.status.name != "running":
        return  # the run ended first: nothing to show
    try:
        import distributed.dashboard.scheduler as dashboard
    except ImportError:  # bokeh is a dependency of daskflow; without it, no pages
        return

    def connect() -> None:
        if scheduler.status.name not in ("closing", "closed", "failed"):
            dashboard.connect(scheduler.http_application, scheduler.http_server, scheduler,
                              prefix="/")
            starting = getattr(scheduler, "_daskflow_starting_rule", None)
            if starting in scheduler.http_application.default_router.rules:
                scheduler.http_application.default_router.rules.remove(starting)

    try:
        cluster.loop.add_callback(connect)
    except RuntimeError:  # the cluster closed already
        pass


def config_local_directory() -> str:
    import dask.config
    return dask.config.get("temporary-directory", None) or tempfile.gettempdir()
