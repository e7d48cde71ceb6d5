"""Start a run: check parameters, record it, get a cluster, drive it, record the end.

:class:`Runner` is what both ``python flow.py run`` and ``MyFlow.run(...)`` use.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import platform
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import cloudpickle
import dask.config

from .. import __version__, config
from ..clusters import ResourceRequest, get_backend
from ..clusters.forkserver import is_warm, warm_up
from ..clusters.local import default_request
from ..current import username
from ..datastore import ArtifactRef, ArtifactStore, resolve_root
from ..exceptions import ClusterError, FlowDefinitionError, ResumeError, RunFailed
from ..graph import FOREACH, SWITCH, FlowGraph, StepNode
from ..parameters import resolve_parameters
from ..steps import KNOWN_DECORATORS, StepDecorator, parse_decospec, step_decorators
from .context import RunContext, StepPolicy
from .driver import RunDriver, RunOutcome
from .events import RunObserver, choose_observer
from .placement import step_placements
from .resume import ResumePlan, descendants, pick_origin


class Runner:
    """Run a flow in this process and get its :class:`~daskflow.client.Run` back.

    Parameters
    ----------
    flow : FlowSpec subclass or str
        The flow class, or the path of a flow file.
    max_workers : int, optional
        At most this many tasks at once (default ``daskflow.run.max-workers``, 16).
    max_num_splits : int, optional
        The widest foreach allowed (default 100).
    tags : sequence of str
        Tags recorded on the run.
    scheduler_address : str, optional
        Run on this existing Dask scheduler instead of a new local cluster.
    datastore_root : str, optional
        Folder or fsspec URL for runs (default ``.daskflow``).
    cluster : str, optional
        The run's default backend (``local``, ``slurm``, a dotted path...); steps with
        ``@resources`` get their own cluster from it unless they name another.
    with_decorators : sequence of str
        Decorators for every step, as ``run --with`` takes them: ``"retry:times=2"``.
    observer : RunObserver, optional
        Receives the run's events (default: :class:`PlainLog` lines on stdout;
        ``quiet=True`` keeps only the tasks' output).

    >>> run = Runner(HelloFlow, max_workers=4).run(alpha=0.5)    # doctest: +SKIP
    >>> run.data.result
    """

    def __init__(self, flow: Any, *, max_workers: int | None = None,
                 max_num_splits: int | None = None, tags: Sequence[str] = (),
                 run_id_file: str | None = None, scheduler_address: str | None = None,
                 datastore_root: str | None = None, quiet: bool = False,
                 stream_output: bool | None = None,
                 with_decorators: Sequence[str] = (), cluster: str | None = None,
                 observer: RunObserver | None = None) -> None:
        self.flow_cls = load_flow(flow) if isinstance(flow, (str, os.PathLike)) else flow
        self.graph = self.flow_cls._flow_graph()
        self.max_workers = int(config.get("run.max-workers", override_with=max_workers))
        self.max_num_splits = int(config.get("run.max-num-splits",
                                             override_with=max_num_splits))
        for name, value in (("max_workers", self.max_workers),
                            ("max_num_splits", self.max_num_splits)):
            if value < 1:
                raise FlowDefinitionError(f"{name} must be at least 1, got {value}.")
        self.tags = list(tags)
        self.with_decorators = [parse_decospec(spec, KNOWN_DECORATORS)
                                for spec in with_decorators]
        self.cluster = cluster
        get_backend(cluster)  # an unknown backend or missing extra fails before anything runs
        self.placements = step_placements(self.flow_cls, self.graph, self.with_decorators,
                                          cluster)
        for placement in self.placements.values():
            if placement is not None:
                get_backend(placement.backend)
        self._record_lock = threading.Lock()
        self.run_id_file = run_id_file
        self.scheduler_address = scheduler_address
        self.datastore_root = resolve_root(datastore_root)
        self.stream_output = bool(config.get("output.stream-task-output",
                                             override_with=stream_output))
        # A live view on a terminal, plain lines in CI and pipes.
        self.observer = observer or choose_observer(quiet=quiet,
                                                    stream_output=self.stream_output)

    def run(self, **params: Any) -> Any:
        """Start the run with ``params`` (by parameter name) and wait for it to end.

        Returns the :class:`~daskflow.client.Run`; raises :class:`RunFailed` (with
        ``.run``) when a task failed.
        """
        policies = self._policies()
        values = resolve_parameters(self.flow_cls, params)  # before anything is stored
        self._warm_up_local_workers()
        store = ArtifactStore(self.datastore_root, self.flow_cls.__name__)
        run_id = store.new_run_id()
        refs = {name: store.put_artifact(value, name) for name, value in values.items()}
        shown = {k: _short_repr(v) for k, v in values.items()}
        return self._execute(store, run_id, refs, shown, policies)

    def resume(self, step: str | None = None, origin_run_id: str | None = None) -> Any:
        """Rerun a run from the step that failed (or from ``step``), reusing the rest.

        The new run takes the origin's parameters; tasks before the resume point
        (and the successful splits of a partly failed foreach) are cloned, not rerun.
        """
        policies = self._policies()
        store = ArtifactStore(self.datastore_root, self.flow_cls.__name__)
        origin_id, origin = pick_origin(store, origin_run_id)
        if step is None and origin.get("status") == "success":
            raise ResumeError(
                f"Run {self.flow_cls.__name__}/{origin_id} succeeded: there is no failed "
                f"step to resume from. Name a step to rerun from: resume STEP.")
        if step is not None:
            descendants(self.graph, step)  # a clear error for an unknown step
        if "parameter_refs" not in origin:
            raise ResumeError(
                f"Run {self.flow_cls.__name__}/{origin_id} was not recorded with its "
                f"parameters, so it cannot be resumed.")
        refs = {k: ArtifactRef(*v) for k, v in origin["parameter_refs"].items()}
        self._warm_up_local_workers()
        run_id = store.new_run_id()
        plan = ResumePlan(store, self.graph, origin_id, run_id, refs, step)
        return self._execute(store, run_id, refs, origin.get("parameters", {}), policies,
                             plan)

    def _warm_up_local_workers(self) -> None:
        """Start the fork server of local workers now, so it loads while the run sets up;
        then refuse, before anything is stored, a default cluster that cannot start."""
        backends = {p.backend for p in self.placements.values() if p is not None}
        if not self.scheduler_address:
            backends.add(get_backend(self.cluster).name)
        if any(get_backend(name).name == "local" for name in backends):
            warm_up()
        default = get_backend(self.cluster)
        if not self.scheduler_address and default.name == "local":
            default.check(default_request(self.max_workers))

    def _policies(self) -> dict[str, StepPolicy]:
        """Each step's failure handling, from its decorators and ``--with``; also refuses,
        before anything is stored, a step cluster its backend can never give."""
        for step, placement in self.placements.items():
            if placement is not None:
                get_backend(placement.backend).check(placement.request)
        policies = {}
        for node in self.graph:
            decorators = {d.name: d for d in step_decorators(getattr(self.flow_cls, node.name))}
            for extra in self.with_decorators:
                decorators.setdefault(extra.name, extra)  # the flow's own options win
            policy = policy_for(node, decorators, self.graph)
            if self.placements.get(node.name) is not None:
                policy = replace(policy, own_cluster=True)
            policies[node.name] = policy
        return policies

    def _execute(self, store: ArtifactStore, run_id: str, refs: dict[str, ArtifactRef],
                 shown: dict[str, str], policies: dict[str, StepPolicy],
                 plan: ResumePlan | None = None) -> Any:
        flow_name = self.flow_cls.__name__
        if self.run_id_file:
            with open(self.run_id_file, "w") as f:
                f.write(run_id)
        user = username()
        system_tags = [f"user:{user}", f"daskflow_version:{__version__}",
                       f"python_version:{platform.python_version()}"]
        origin_run_id = plan.origin_run_id if plan else None
        record: dict[str, Any] = {
            "flow": flow_name, "run_id": run_id, "status": "running",
            "started_at": time.time(), "finished_at": None, "user": user,
            "tags": self.tags, "system_tags": system_tags, "parameters": shown,
            "parameter_refs": {k: list(v) for k, v in refs.items()},
            "max_workers": self.max_workers, "max_num_splits": self.max_num_splits,
            "origin_run_id": origin_run_id, "clusters": [],
        }
        store.write_run(run_id, record)
        ctx = RunContext(self.flow_cls, self.graph, self.datastore_root, run_id, refs,
                         tags=self.tags, username=user, max_num_splits=self.max_num_splits,
                         stream_output=self.stream_output, origin_run_id=origin_run_id,
                         policies=policies,
                         announce_starts=self.observer.wants_task_started())
        self.observer.run_started(flow_name=flow_name, run_id=run_id,
                                  datastore=store.flow_root, graph=self.graph)
        outcome = RunOutcome(False)
        interrupted = False
        try:
            with self._client(record, store, run_id) as client:
                if self.scheduler_address:
                    # The local cluster is sized to --max-workers; a cluster we did not
                    # start is bounded by a semaphore each task holds while it runs.
                    from distributed import Semaphore
                    ctx.slots = Semaphore(max_leases=self.max_workers,
                                          name=f"daskflow-{flow_name}-{run_id}")
                on_cluster = functools.partial(self._cluster_changed, record, store, run_id)
                outcome = RunDriver(ctx, client, self.observer, plan, self.placements,
                                    on_cluster, self.max_workers).execute()
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            record.update(status="success" if outcome.successful else "failed",
                          finished_at=time.time(), interrupted=interrupted)
            if outcome.failure is not None:
                record["failure"] = {"pathspec": outcome.failure.pathspec,
                                     "type": outcome.failure.type_name,
                                     "message": outcome.failure.message}
            store.write_run(run_id, record)
            from ..report import write_report_after_run  # never raises
            report = write_report_after_run(self.datastore_root, flow_name, run_id,
                                            graph=self.graph)
            self.observer.run_finished(flow_name=flow_name, run_id=run_id,
                                       successful=outcome.successful, tasks=outcome.tasks,
                                       seconds=outcome.seconds, failure=outcome.failure,
                                       report=report)
            self.observer.close()

        from ..client import Run  # the read side, for the caller
        run = Run(f"{flow_name}/{run_id}", _namespace_check=False,
                  _root=self.datastore_root)
        if not outcome.successful:
            failure = outcome.failure
            message = (f"Run {flow_name}/{run_id} failed"
                       + (f": task {failure.pathspec} raised {failure.type_name}: "
                          f"{failure.message}" if failure else "."))
            exc = RunFailed(message, run_pathspec=f"{flow_name}/{run_id}", failure=failure)
            exc.run = run  # type: ignore[attr-defined]
            raise exc
        return run

    @contextmanager
    def _client(self, record: dict[str, Any], store: ArtifactStore,
                run_id: str) -> Iterator[Any]:
        """The run's default cluster: an existing scheduler, or one started for the run."""
        from distributed import Client

        if self.scheduler_address:
            try:
                client = Client(self.scheduler_address, timeout="10s")
            except OSError as exc:
                raise ClusterError(
                    f"Cannot reach the Dask scheduler at {self.scheduler_address}: {exc}. "
                    f"Check the address (tcp://host:8786) and that the scheduler runs.") \
                    from exc
            with client:
                self._announce(client, record, store, run_id, "existing scheduler")
                try:
                    yield client
                finally:
                    _cluster_closed(record, "default")
            return
        backend = get_backend(self.cluster)
        if backend.name == "local":
            request = default_request(self.max_workers)
        else:
            request = ResourceRequest(cpu=1, workers=min(os.cpu_count() or 1,
                                                         self.max_workers))
        started = time.time()
        # A worker replaced after a @timeout or a crash counts against a task's
        # allowed failures in the scheduler; daskflow counts attempts itself.
        # Its tasks hand each other small refs, and every task needs the run context,
        # copied to every worker (context.submit_context) so tasks go where threads are
        # free: Dask's active memory manager would drop those copies after 2 s.
        with dask.config.set({"distributed.scheduler.allowed-failures": 50,
                              "distributed.scheduler.active-memory-manager.start": False}), \
                _workers_ignore_ctrl_c(backend.open(request)) as cluster, \
                Client(cluster) as client:
            self._announce(client, record, store, run_id, backend.describe(request))
            try:
                yield client
            finally:
                _cluster_closed(record, "default")
                self.observer.cluster_stopped(name="default", seconds=time.time() - started)

    def _announce(self, client: Any, record: dict[str, Any], store: ArtifactStore,
                  run_id: str, what: str) -> None:
        link = client.dashboard_link
        workers = len(client.scheduler_info().get("workers", {}))
        record.update(scheduler=client.scheduler.address, dashboard=link, cluster=what)
        # Every cluster of the run, for the run report: lifetime, size and dashboard.
        record["clusters"].append({
            "name": "default", "backend": self.scheduler_address or self.cluster or
            config.get("cluster.backend"), "description": what, "step": None,
            "workers": workers, "started_at": record["started_at"], "ready_at": time.time(),
            "stopped_at": None, "dashboard": link})
        store.write_run(run_id, record)
        self.observer.cluster_started(name="default", description=what, dashboard=link,
                                      workers=workers)

    def _cluster_changed(self, record: dict[str, Any], store: ArtifactStore, run_id: str,
                         info: dict[str, Any]) -> None:
        """A step cluster started or stopped: say so, and keep it in the run's record."""
        with self._record_lock:
            if info not in record["clusters"]:
                record["clusters"].append(info)
            store.write_run(run_id, record)
        if info.get("stopped_at"):
            self.observer.cluster_stopped(name=info["name"],
                                          seconds=info["stopped_at"] - info["started_at"])


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


def _cluster_closed(record: dict[str, Any], name: str) -> None:
    """Note when cluster ``name`` closed (the run's record is written at its end)."""
    for cluster in reversed(record.get("clusters", [])):
        if cluster["name"] == name and cluster["stopped_at"] is None:
            cluster["stopped_at"] = time.time()
            return


def policy_for(node: StepNode, decorators: dict[str, StepDecorator],
               graph: FlowGraph) -> StepPolicy:
    """Translate a step's failure decorators into what the runtime does."""
    retry, catch, timeout = (decorators.get(n) for n in ("retry", "catch", "timeout"))
    if catch is not None and node.transition in (FOREACH, SWITCH):
        kind = "foreach" if node.transition == FOREACH else "switch"
        raise FlowDefinitionError(
            f"@catch cannot be used on step '{node.name}': a {kind} step that failed has no "
            f"{'list to fan out over' if kind == 'foreach' else 'choice to follow'}. Put "
            f"@catch on the steps it leads to instead.", step=node.name, file=graph.file,
            lineno=node.lineno)
    return StepPolicy(
        retries=retry.options.times if retry is not None else 0,
        retry_delay=60 * float(retry.options.minutes_between_retries) if retry else 0.0,
        timeout=timeout.total_seconds if timeout is not None else None,  # type: ignore[attr-defined]
        catch=catch is not None,
        catch_var=catch.options.var if catch is not None else None,
        print_exception=catch.options.print_exception if catch is not None else True)


def load_flow(path: str | os.PathLike) -> type:
    """Import a flow file (its ``__main__`` guard keeps it from running) and return its class."""
    path = os.path.abspath(os.fspath(path))
    if not os.path.exists(path):
        raise FlowDefinitionError(f"Flow file {path} does not exist.")
    name = "daskflow_flow_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    cloudpickle.register_pickle_by_value(module)  # workers need not import the file
    from ..flowspec import FlowSpec
    found = [v for v in vars(module).values()
             if isinstance(v, type) and issubclass(v, FlowSpec) and v is not FlowSpec
             and v.__module__ == name]
    if len(found) != 1:
        raise FlowDefinitionError(
            f"{path} defines {len(found)} FlowSpec subclasses; expected exactly one.")
    return found[0]


def _short_repr(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
