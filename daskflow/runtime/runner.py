"""Start a run: check parameters, record it, get a cluster, drive it, record the end.

:class:`Runner` is what both ``python flow.py run`` and ``MyFlow.run(...)`` use.
"""

from __future__ import annotations

import inspect
import os
import signal
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import dask.config

from .. import config
from ..clusters import ClusterBackend, get_backend
from ..clusters.labels import labelled_step
from ..clusters.local.forkserver import is_warm
from ..compat import alias_active
from ..configs import flow_configs, load_configs
from ..current import username
from ..dashboard import enabled as flow_page_enabled
from ..datastore import ArtifactRef, ArtifactStore, resolve_root
from ..datastore.files import filesystem_modules
from ..datastore.names import check_run_id
from ..datastore.store import check_settings
from ..exceptions import (
    ConfigurationError,
    DaskflowException,
    DatastoreUnavailable,
    ResumeError,
    RunFailed,
    RunOptionError,
    StepError,
    TaskFailed,
)
from ..parameters import resolve_parameters
from ..project import project_facts, project_tags
from ..steps import apply_configs
from ..tracebacks import add_source_lines
from .context import RunContext
from .diagnosis import quiet_once_lost, run_stopped
from .display import choose_observer
from .driver import RunDriver
from .events import Observers
from .flowpage import FlowPageFeed
from .flowfile import flow_file_of, load_flow
from .diagnosis import watch_exits
from .idle import idle_release_for
from .lifecycle import RunLifecycle, RunOutcome
from .options import RUN_OPTIONS, checked_int, command_line, delayed_options, options_doc, \
    runner_options
from .plan import (
    drop_local_retry_delays,
    parse_with,
    placement_of,
    plan_steps,
    resolve_secrets,
)
from .preflight import connect_scheduler, probe_scheduler_sees, refuse_unreachable_datastore
from .process import settled
from .cache import TaskCache
from .cache_keys import code_keys
from .resume import ResumePlan, descendants, pick_origin


class Runner:
    """Run a flow in this process and get its :class:`~daskflow.client.Run` back.

    The options are the rows of :data:`~daskflow.runtime.options.RUN_OPTIONS`, as
    keywords; the command line's ``run`` takes the same ones as flags.

    Parameters
    ----------
    flow : FlowSpec subclass or str
        The flow class, or the path of a flow file.
    {options}

    >>> run = Runner(HelloFlow, max_workers=4).run(alpha=0.5)    # doctest: +SKIP
    >>> run.data.result
    """

    def __init__(self, flow: Any, **options: Any) -> None:
        values = runner_options(options)
        self.options = values  # as given: async_run's command line and delayed() read it
        self.client = client = values["client"]
        scheduler_address = values["scheduler_address"]
        if client is not None:
            scheduler_address = values["scheduler_address"] = client.scheduler.address
        self.flow_file = os.fspath(flow) if isinstance(flow, (str, os.PathLike)) else None
        self.flow_cls = load_flow(flow) if isinstance(flow, (str, os.PathLike)) else flow
        self.graph = self.flow_cls._flow_graph()
        self.max_workers = checked_int("max_workers", values["max_workers"])
        self.max_num_splits = checked_int("max_num_splits", values["max_num_splits"])
        self.share = checked_int("share", values["share"])
        self.tags = list(values["tags"])
        self.cluster = cluster = values["cluster"]
        self.run_id_file = values["run_id_file"]
        self.scheduler_address = scheduler_address
        self.page: FlowPageFeed | None = None   # the flow page's feed, made per run
        get_backend(cluster)  # an unknown backend or missing extra fails before anything runs
        # Configs first: the decorators and @project may read them (a bad one fails now).
        self.configs_given = bool(values["config"] or values["config_value"])
        self.configs = load_configs(self.flow_cls, values["config"], values["config_value"])
        self._plan(self.configs)
        self.datastore_root = resolve_root(values["datastore_root"])
        self.stream_output = bool(config.get("output.stream-task-output",
                                             override_with=values["stream_output"]))
        self.no_cache = bool(values["no_cache"])
        self.cache_from = values["cache_from"]
        # A live view on a terminal, plain lines in CI and pipes.
        self.observer = values["observer"] or choose_observer(
            quiet=values["quiet"], stream_output=self.stream_output)

    def _plan(self, configs: dict[str, Any]) -> None:
        """With ``configs``: the run's @project branch and each step's plan and placement.

        Every decorator's plan hook runs here: a bad one fails before anything is stored,
        and so does a secret that cannot be read."""
        values = self.options
        apply_configs(self.flow_cls, configs)
        # @project: the branch this run is on (a bad name or a stray --branch fails now)
        self.project = project_facts(self.flow_cls, branch=values["branch"],
                                     production=values["production"], user=username())
        self.plans = plan_steps(self.flow_cls, self.graph,
                                parse_with(values["with_decorators"]), self.cluster)
        drop_local_retry_delays(self.plans, self.cluster, bool(self.scheduler_address))
        resolve_secrets(self.plans)
        self.placements = {name: placement_of(plan) for name, plan in self.plans.items()}
        for placement in self.placements.values():
            if placement is not None:
                get_backend(placement.backend)

    def delayed(self, **params: Any) -> Any:
        """The run as a ``dask.delayed`` value: computing it runs the flow on the
        cluster that computes it and gives its :class:`~daskflow.client.Run`.

        A parameter may be another delayed value (checked when it is known); the
        others are checked now, as :meth:`run` checks them. See
        :mod:`daskflow.runtime.delayed`.

        >>> runs = dask.compute(*[Runner(Train).delayed(alpha=a) for a in (0.1, 0.5)])
        ... # doctest: +SKIP
        """
        from .delayed import flow_delayed
        return flow_delayed(type(self), self.flow_cls, delayed_options(self.options), params)

    def run(self, **params: Any) -> Any:
        """Start the run with ``params`` (by parameter name) and wait for it to end.

        Returns the :class:`~daskflow.client.Run`; raises :class:`RunFailed` (with
        ``.run``) when a task failed.
        """
        values = resolve_parameters(self.flow_cls, params)  # before anything is stored
        values.update(self.configs)  # stored as parameters are: resume and spin reuse them
        self._preflight()
        store = ArtifactStore(self.datastore_root, self.flow_cls.__name__)
        self._check_cache_from(store)
        settled()  # the store's modules (s3fs, botocore): distributed's import walks less
        run_id = store.new_run_id()
        refs = {name: store.put_artifact(value, name) for name, value in values.items()}
        shown = {k: _short_repr(v) for k, v in values.items()}
        return self._execute(store, run_id, refs, shown)

    def resume(self, step: str | None = None, origin_run_id: str | None = None, *,
               caught: bool = False) -> Any:
        """Rerun a run from the step that failed (or from ``step``), reusing the rest.

        The new run takes the origin's parameters; tasks before the resume point
        (and the successful splits of a partly failed foreach) are cloned, not rerun.
        ``caught``: the tasks whose failure ``@catch`` caught rerun too (and what
        follows them), the origin's other splits are cloned.
        """
        store = ArtifactStore(self.datastore_root, self.flow_cls.__name__)
        origin_id, origin = pick_origin(store, origin_run_id)
        if step is None and origin.get("status") == "success" and not caught:
            raise ResumeError(
                f"Run {self.flow_cls.__name__}/{origin_id} succeeded: there is no failed "
                f"step to resume from. Name a step to rerun from: resume STEP, or rerun "
                f"the tasks @catch caught: resume --caught.")
        if step is not None:
            descendants(self.graph, step)  # a clear error for an unknown step
        if "parameter_refs" not in origin:
            raise ResumeError(
                f"Run {self.flow_cls.__name__}/{origin_id} was not recorded with its "
                f"parameters, so it cannot be resumed.")
        refs = {k: ArtifactRef(*v) for k, v in origin["parameter_refs"].items()}
        self._reuse_configs(store, origin_id, refs)
        self._preflight()
        self._check_cache_from(store)
        plan = ResumePlan(store, self.graph, origin_id, None, refs, step, rerun_caught=caught)
        if caught and not plan.caught and step is None and origin.get("status") == "success":
            raise ResumeError(
                f"Run {self.flow_cls.__name__}/{origin_id} has no task whose failure @catch "
                f"caught: there is nothing to rerun. Name a step to rerun from: resume STEP.")
        run_id = plan.run_id = store.new_run_id()
        return self._execute(store, run_id, refs, origin.get("parameters", {}), plan)

    def _reuse_configs(self, store: ArtifactStore, origin_id: str,
                       refs: dict[str, ArtifactRef]) -> None:
        """A resumed run keeps its origin's configs (and so its decorators), as Metaflow's."""
        names = flow_configs(self.flow_cls)
        if not names:
            return
        if self.configs_given:
            raise ResumeError(
                "Cannot specify --config or --config-value with 'resume': the resumed run "
                f"keeps the configs of {self.flow_cls.__name__}/{origin_id}.")
        self.configs = {attr: store.get_artifact(refs[attr], attr) if attr in refs else None
                        for attr in names}
        self._plan(self.configs)

    # -- in a subprocess, awaited (Metaflow's async runner API) ------------------------

    async def async_run(self, **params: Any) -> Any:
        """Start the run in a subprocess (``python FLOW_FILE run ...``) and return an
        :class:`~daskflow.runtime.executing.ExecutingRun` once it has its id.

        >>> executing = await Runner("flow.py").async_run(alpha=0.5)   # doctest: +SKIP
        >>> await executing.wait()
        """
        from .executing import cli_value
        resolve_parameters(self.flow_cls, params)  # a bad one fails here, as in run()
        values = [a for name, value in params.items()
                  for a in (f"--{name}", cli_value(value))]
        return await self._start(["run", *command_line(self.options, "run"), *values])

    async def async_resume(self, step: str | None = None, origin_run_id: str | None = None,
                           *, caught: bool = False) -> Any:
        """:meth:`resume` in a subprocess, as :meth:`async_run` starts a run."""
        return await self._start(["resume", *([step] if step else []),
                                  *(["--origin-run-id", origin_run_id] if origin_run_id
                                    else []), *(["--caught"] if caught else []),
                                  *command_line(self.options, "run")])

    async def _start(self, command: list[str]) -> Any:
        from .executing import start
        flow_file = self.flow_file or flow_file_of(self.flow_cls, self.graph)
        # the root as this process resolved it: the run is stored where it looks
        group = command_line({**self.options, "datastore_root": self.datastore_root}, "group")
        return await start([*group, *command], flow_file, self.flow_cls.__name__,
                           self.datastore_root)

    # -- before anything is stored ------------------------------------------------------

    def _backends(self) -> list[ClusterBackend]:
        """Every backend the run may start clusters on, the default one first."""
        names = [] if self.scheduler_address else [self.cluster]
        names += [p.backend for p in self.placements.values() if p is not None]
        found: dict[str, ClusterBackend] = {}
        for name in names:
            backend = get_backend(name)
            found.setdefault(backend.name, backend)
        return list(found.values())

    def check(self) -> None:
        """Refuse, as :meth:`run` would before it starts, without starting anything:
        what ``python flow.py check`` does. The constructor has already checked the
        options, every decorator's plan and the secrets; this adds the datastore, the
        code package and every cluster request."""
        backends = self._backends()
        refuse_unreachable_datastore(self.datastore_root, self._where())
        check_settings()  # a bad setting is refused now, not in a join or a claim
        self._code_package(backends)
        self._check_requests()

    def _preflight(self) -> None:
        """Every check that can refuse the run, before its id is claimed.

        Backends prepare first (the local one starts its fork server, which then
        loads in the background while the rest is checked), unless the run may need no
        cluster at all (:meth:`_may_need_none`): then the default cluster's backend
        prepares when a task first needs it.
        """
        backends = self._backends()
        refuse_unreachable_datastore(self.datastore_root, self._where())
        check_settings()  # a bad setting is refused now, not in a join or a claim
        if not self._may_need_none():
            for backend in backends:
                backend.prepare(imports=self._worker_imports())
        self.code = self._code_package(backends)
        if self.run_id_file:
            folder = os.path.dirname(os.path.abspath(self.run_id_file))
            if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
                raise ConfigurationError(
                    f"--run-id-file {self.run_id_file}: the folder {folder} does not exist "
                    f"or is not writable. Create it or give another path.")
        self._check_requests()
        if self.scheduler_address:
            probe_scheduler_sees(self.datastore_root, self.scheduler_address,
                                 config.get("run.scheduler-timeout"), client=self.client)

    def _worker_imports(self) -> list[str]:
        """What every task imports to reach the datastore (``s3fs``): a backend whose
        workers start from a warm process imports it there, not in each first task."""
        return filesystem_modules(self.datastore_root)

    def _may_need_none(self) -> bool:
        """Whether @cache may reuse every task, so that no cluster starts: the default
        one is then started (and its backend prepared) only when a task needs it. Step
        clusters start from the driver's threads and want theirs prepared: not then."""
        return not self.scheduler_address and not self.no_cache \
            and any(plan.cache is not None for plan in self.plans.values()) \
            and all(placement is None for placement in self.placements.values())

    def _where(self) -> dict[str, ClusterBackend]:
        """Where each step runs ("" for the default cluster), for the datastore's reach:
        known from the backends alone."""
        where = {} if self.scheduler_address else {"": get_backend(self.cluster)}
        where.update({step: get_backend(p.backend) for step, p in self.placements.items()
                      if p is not None})
        return where

    def _code_package(self, backends: list[ClusterBackend]) -> Any:
        """The run's code for workers elsewhere (None when every worker is on this
        machine); too big a package is refused here, before anything is stored."""
        if not self.scheduler_address and all(b.local_machine for b in backends):
            return None
        from ..remote import build_code_package  # distributed's plugins: only now
        return build_code_package(self.graph.file if os.path.isfile(self.graph.file) else None)

    def _check_cache_from(self, store: ArtifactStore) -> None:
        """``--cache-from RUN`` names a run of this flow."""
        if self.cache_from is None:
            return
        try:
            store.read_run(check_run_id(str(self.cache_from)))
        except DaskflowException as exc:
            raise RunOptionError(f"--cache-from {self.cache_from}: {exc} Name a run of "
                                 f"{self.flow_cls.__name__} to reuse results of.") from None

    def _flow_files(self) -> dict[str, str] | None:
        """The flow's files and their hashes for the run's record (``report --compare``
        names the files two runs differ in); None for a flow without a file."""
        if not os.path.isfile(self.graph.file):
            return None
        from ..remote.codepackage import flow_files
        try:
            return flow_files(self.graph.file)
        except OSError:  # a file that went meanwhile: nothing to compare by
            return None

    def _check_requests(self) -> None:
        """Each backend refuses what it can never give: the default cluster and every
        step's own."""
        if not self.scheduler_address:
            default = get_backend(self.cluster)
            default.check(default.default_request(self.max_workers))
        for placement in self.placements.values():
            if placement is not None:
                get_backend(placement.backend).check(placement.request)

    # -- the run ------------------------------------------------------------------------

    def _execute(self, store: ArtifactStore, run_id: str, refs: dict[str, ArtifactRef],
                 shown: dict[str, str], plan: ResumePlan | None = None) -> Any:
        if self.run_id_file:
            with open(self.run_id_file, "w") as f:
                f.write(run_id)
        origin_run_id = plan.origin_run_id if plan else None
        # temp files of writers killed mid-write (older than datastore.orphan-age) go, and
        # what processes that died left on this machine (runtime/leftovers.py)
        threading.Thread(target=_sweep_orphans, args=(store,), daemon=True,
                         name="daskflow-sweep").start()
        code = self.calls = None
        if self.code is not None:
            from ..remote import store_code
            code = store_code(self.code, store)
            # A scheduler other runs may share, given by address: each task sealed with
            # its package. Through the caller's client (a notebook's, or a worker's for
            # Flow.delayed) the code is installed on it as on a cluster of the run's own.
            if self.scheduler_address and self.client is None:
                self.calls = _package_calls(store, code)
        # the flow page on the Dask dashboard of each cluster hears the run too
        self.page = FlowPageFeed(self.graph) if flow_page_enabled() else None
        observer = self.observer if self.page is None else Observers(self.observer, self.page)
        life = RunLifecycle(store, run_id, graph=self.graph, observer=observer,
                            tags=self.tags, parameters=shown, parameter_refs=refs,
                            max_workers=self.max_workers,
                            max_num_splits=self.max_num_splits, origin_run_id=origin_run_id,
                            code=code, extra_system_tags=project_tags(self.project),
                            code_files=self._flow_files())
        codes = code_keys(self.flow_cls, self.graph, self.plans, self.graph.file)
        ctx = RunContext(self.flow_cls, self.graph, self.datastore_root, run_id, refs,
                         tags=self.tags, username=life.user,
                         max_num_splits=self.max_num_splits,
                         stream_output=self.stream_output, origin_run_id=origin_run_id,
                         project=self.project,
                         plans=self.plans,
                         announce_starts=observer.wants_task_started(),
                         metaflow_alias=alias_active(), cache=codes)
        reuse: list[Any] = [plan] if plan is not None else []
        if codes and not self.no_cache:
            reuse.append(TaskCache(store, self.graph, run_id, codes, refs, self.cache_from,
                                   self.max_num_splits))
        outcome = RunOutcome(False)
        interrupted = False
        self.idle = None
        self.default_cluster: tuple[Any, Any] | None = None
        try:
            life.begin()
            with ExitStack() as stack:
                def open_default() -> tuple[Any, Any]:
                    # once: it may have waited till now
                    get_backend(self.cluster).prepare(imports=self._worker_imports())
                    opened = stack.enter_context(self._default_cluster(life))
                    settled()  # distributed, the cluster's scheduler: as long as the run
                    return opened, self.idle
                client = None
                if self.scheduler_address:  # a scheduler we did not start: connect now
                    client = open_default()[0]
                    # The local cluster is sized to --max-workers; a cluster we did not
                    # start is bounded by a semaphore each task holds while it runs.
                    from distributed import Semaphore
                    ctx.slots = Semaphore(max_leases=self.max_workers,
                                          name=f"daskflow-{life.pathspec}")
                elif not reuse:  # every task runs: start it now, as the run starts
                    client = open_default()[0]
                # else the driver starts it when a task first needs it: maybe never
                outcome = RunDriver(ctx, client, observer, reuse, self.placements,
                                    life.cluster_changed, self.max_workers,
                                    self._setup_cluster, self.idle,
                                    open_default=open_default, calls=self.calls,
                                    share=self.share if self.scheduler_address else None,
                                    default_cluster=lambda: self.default_cluster
                                    ).execute()
        except KeyboardInterrupt:
            interrupted = True
            raise
        except DatastoreUnavailable as exc:  # the driver's own read or write of the store
            outcome = RunOutcome(False, TaskFailed(life.pathspec, type(exc).__name__, str(exc)))
        finally:
            if outcome.failure is not None:  # the scheduler or the store gone: say so
                outcome.failure = run_stopped(outcome.failure, life.pathspec, self.graph.file,
                                              self.scheduler_address)
            life.finish(outcome, interrupted=interrupted)

        from ..client import Run  # the read side, for the caller
        failure = outcome.failure
        store_down = failure is not None and failure.type_name == "DatastoreUnavailable"
        run = None if store_down else Run(life.pathspec, _namespace_check=False,
                                          _root=self.datastore_root)
        if not outcome.successful:
            message = f"Run {life.pathspec} failed" + (
                "." if failure is None else f": {failure.message}"
                if failure.pathspec == life.pathspec else  # the run's own: one line
                f": task {failure.pathspec} {failure.explained()}")
            if failure is not None and failure.traceback_text:
                # a notebook cell's lines: only this process's linecache has them
                failure.traceback_text = add_source_lines(failure.traceback_text)
            exc = RunFailed(message, run_pathspec=life.pathspec, failure=failure)
            exc.run = run  # type: ignore[attr-defined]
            # the step's traceback as the cause: what a notebook or script shows first
            raise exc from (StepError(failure) if failure is not None else None)
        return run

    @contextmanager
    def _default_cluster(self, life: RunLifecycle) -> Iterator[Any]:
        """The run's default cluster: an existing scheduler (through the caller's client,
        which stays open), or one started for the run."""
        if self.scheduler_address:
            with ExitStack() as stack:
                quiet = stack.enter_context(quiet_once_lost())  # left after the client closes
                client = quiet.client = self.client or stack.enter_context(
                    connect_scheduler(self.scheduler_address))
                closing = self._setup_cluster(client, None, cluster="default", step="start")
                life.default_cluster_up(client, backend=self.scheduler_address,
                                        description="existing scheduler")
                try:
                    yield client
                finally:
                    life.default_cluster_down()
                    _call(closing)
            return
        backend = get_backend(self.cluster)
        request = backend.default_request(self.max_workers)
        # distributed's defaults first: a run that needed no cluster until now has not
        # imported it, and dask.config.set below would drop the keys loaded inside it
        import distributed  # noqa: F401
        # A task whose worker dies fails at once (KilledWorker), also on the step
        # clusters started meanwhile: the driver finds out why, records the attempt and
        # decides where it runs again (runtime/diagnosis.py); @retry counts attempts.
        # Its tasks hand each other small refs, and every task needs the run context,
        # copied to every worker (context.submit_context) so tasks go where threads are
        # free: Dask's active memory manager would drop those copies after 2 s.
        with dask.config.set({"distributed.scheduler.allowed-failures": 0,
                              "distributed.scheduler.active-memory-manager.start": False}), \
                labelled_step(life.run_id, None), \
                _workers_ignore_ctrl_c(backend.open(request)) as cluster, \
                _connected(cluster) as client:
            closing = self._setup_cluster(client, backend, cluster="default", step="start")
            life.default_cluster_up(client, backend=backend.name,
                                    description=backend.describe(request),
                                    price=backend.hourly_price(request))
            self.idle = idle_release_for(backend, cluster, request.workers)
            self.default_cluster = (backend, cluster)
            try:
                yield client
            finally:
                if self.idle is not None:
                    self.idle.close()
                life.default_cluster_down()
                _call(closing)


    def _setup_cluster(self, client: Any, backend: ClusterBackend | None, *, cluster: str,
                       step: str) -> Callable[[], None] | None:
        """Before a cluster's first task: check its workers' versions against ours and
        install the run's code package there (workers that join later get it too;
        clusters on this machine run our own interpreter and files), and serve the flow
        page on its scheduler. Returns what to call before the cluster closes.

        On an existing scheduler (``backend`` None), which other runs may share, each
        task names its package (``remote/calls.py``); the package is also installed there,
        last on the workers' path, for the tasks of dask collections that steps compute
        (the scheduler unpickles their graphs, which name daskflow's and the flow's
        functions): those import the newest run's package.  Every cluster's nannies say
        how their worker processes end (``_exit_watch.py``)."""
        watch_exits(client, by_value=backend is None or not backend.local_machine)
        if self.code is not None and not (backend is not None and backend.local_machine):
            from ..remote import check_worker_environment, install_code, prepare_cluster
            if backend is None and self.calls is not None:
                check_worker_environment(client, cluster=cluster, step=step,
                                         datastore_root=self.datastore_root)
                self.calls.install(client)
                install_code(client, self.code, cluster=cluster, behind=True)
            else:
                prepare_cluster(client, self.code, cluster=cluster, step=step,
                                datastore_root=self.datastore_root)
        if self.page is None:
            return None
        return self.page.attach(client, cluster, ends_run=cluster == "default")


@contextmanager
def _connected(cluster: Any) -> Iterator[Any]:
    """A client of the run's default cluster; the workers' versions are compared by
    :meth:`Runner._setup_cluster`, not by distributed's warning."""
    from distributed import Client

    from ..remote.environment import our_version_check
    with our_version_check():
        client = Client(cluster)
    with client:
        yield client


def _package_calls(store: ArtifactStore, code: dict[str, Any]) -> Any:
    """How the run's tasks go to a shared scheduler: sealed with its code package,
    which each worker reads from the datastore at its first task there."""
    from ..remote import code_url
    from ..remote.calls import PackageCalls, package_of
    return PackageCalls(package_of(code["sha"], code_url(store, code),
                                   max_packages=int(config.get("code.max-packages"))))


def _signature_of_options() -> inspect.Signature:
    """``Runner(flow, *, max_workers=None, ...)`` as ``help()`` and editors show it."""
    keywords = [inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=o.default)
                for o in RUN_OPTIONS if o.keyword]
    return inspect.Signature([inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY),
                              inspect.Parameter("flow", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                              *keywords])


Runner.__init__.__signature__ = _signature_of_options()  # type: ignore[attr-defined]
Runner.__doc__ = (Runner.__doc__ or "").format(
    options=textwrap.indent(options_doc(), "    ").lstrip())


def _call(closing: Callable[[], None] | None) -> None:
    if closing is not None:
        closing()


def _sweep_orphans(store: ArtifactStore) -> None:
    from .leftovers import sweep
    for housekeeping in (store.remove_orphaned_temp_files, sweep):
        try:
            housekeeping()
        except Exception:  # noqa: BLE001  housekeeping never fails a run
            pass


@contextmanager
def _workers_ignore_ctrl_c(opening: Any) -> Iterator[Any]:
    """Start worker processes that ignore SIGINT: Ctrl-C in a terminal reaches the
    whole process group, and only the driver should handle it (cancel, close, record).

    Spawned workers inherit the driver's disposition, so SIGINT is ignored while they
    start. Forked from the fork server, they ignore it already: a Ctrl-C meanwhile is
    held until the cluster is up (a fraction of a second), then interrupts the run, so
    the half-started cluster is closed cleanly rather than abandoned.
    """
    if threading.current_thread() is not threading.main_thread():
        with opening as cluster:
            yield cluster
        return
    held: list[int] = []
    handler = (lambda signum, frame: held.append(signum)) if is_warm() else signal.SIG_IGN
    previous = signal.signal(signal.SIGINT, handler)
    try:
        cluster = opening.__enter__()
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        if held:
            raise KeyboardInterrupt
        yield cluster
    except BaseException:
        if not opening.__exit__(*sys.exc_info()):
            raise
    else:
        opening.__exit__(None, None, None)


def _short_repr(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
