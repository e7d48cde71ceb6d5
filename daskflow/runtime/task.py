"""One task = one step execution = one Dask task.

:func:`execute_task` runs on a worker.  It counts the task's earlier attempts
in the datastore (exceptions, timeouts, and attempts whose process died: each
is one failed attempt, as in Metaflow), runs a new attempt while the step's
plan allows, and otherwise gives up, or goes on when a decorator's
``task_exception`` hook handles the failure (``@catch``).  An attempt loads what the step
reads (lazily), runs the body with its output captured, stores the artifacts
and its record, and returns a small :class:`TaskRef`.  Big data never travels
back through the scheduler.
"""

from __future__ import annotations

import ctypes
import os
import reprlib
import sys
import signal
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from .. import causes, config
from ..collections.foreach import CollectionFanOut, fan_out_of
from ..dask_client import current_worker
from ..tracebacks import format_user_stack, format_user_traceback
from ..current import bind as bind_current
from ..datastore import ArtifactRef, ArtifactStore
from ..datastore.layout import performance_file
from ..exceptions import (
    ArtifactError,
    DaskflowException,
    ForeachError,
    RunFailed,
    StepError,
    TaskFailed,
    UnhandledTransitionError,
    did_you_mean,
)
from ..scratch import owned_prefix
from ..secrets import reveal
from ..inputs import Inputs
from ..graph import FOREACH, SWITCH, StepNode
from ..steps import StepPlan, TaskContext, TaskError, iter_hooks
from ..steps.failure import handled_by_catch
from .attempts import TaskResources, death_record, error_of, \
    keep_spooled_output, lost_message, process_alive, worker_resources
from .cache_keys import entry_of_run
from .capture import announce, bind_capture, capture_output, note_spool, scratch_spool, \
    spool_folder
from .context import RunContext, TaskRef, TaskSpec, parent_names
from .environ import task_environment
from .join_inputs import JoinInputs

if TYPE_CHECKING:  # the flow class comes in the run's context: typed by FlowSpec's base, as
    # nothing under runtime/ imports flowspec (its entry points import the runtime)
    from ..inputs import ArtifactSource as FlowSpec


def execute_task(ctx: RunContext, spec: TaskSpec, *parents: TaskRef) -> TaskRef:
    """Run one step as one task; raises :class:`TaskFailed` (plain text) on failure."""
    return run_task(ctx, ctx.store(), spec, parents)


class EarlierAttempt(Exception):
    """A task's first claim found its attempt 0 stored: Dask ran the task before."""


def run_task(ctx: RunContext, store: ArtifactStore, spec: TaskSpec,
             parents: tuple[Any, ...]) -> TaskRef:
    """One task with its attempts, its records going to ``store`` (a batch of splits
    passes one that holds them until the batch commits).

    A task whose attempts are all in its own folder (``spec.own_folder``) has none stored
    unless its attempt 0 is: it claims that one first, with no listing of its folder or
    of the step's batch objects (on an object store, four requests fewer on the run's
    path), and reads its history only when the claim finds it taken."""
    plan = ctx.plan(spec.step)
    if spec.own_folder and spec.parallel is None and not _batched(store):
        try:
            return _attempts(ctx, store, spec, parents, plan, [], first=True)
        except EarlierAttempt:
            pass  # Dask runs it again (its worker died, or its result was lost with it)
    history = _history(store, ctx, spec)
    _keep_output_of_dead_attempts(store, ctx, spec, history)
    if spec.parallel is None:
        history = _end_dead_attempts(store, ctx, spec, history)
    if spec.parallel is not None:  # a gang node: its round is its attempt (see driver)
        return _gang_node(ctx, store, spec, parents, plan, history)
    for _, record in reversed(history):
        if record is not None and record.get("status") == "ok":
            # Dask recomputes a finished task whose result was on a worker that died:
            # the stored result stands, the step does not run twice.
            return TaskRef.from_record(spec.step, spec.task_id, record, ctx.params)
    return _attempts(ctx, store, spec, parents, plan, history)


def _attempts(ctx: RunContext, store: ArtifactStore, spec: TaskSpec,
              parents: tuple[Any, ...], plan: StepPlan,
              history: list[tuple[int, dict[str, Any] | None]], first: bool = False) -> TaskRef:
    """Attempts after ``history`` while the plan allows (``first``: the first one claims
    attempt 0 or raises :class:`EarlierAttempt`); then give up."""
    while True:
        if len(history) > plan.retries:
            return _give_up(ctx, store, spec, parents, plan, history)
        if history:
            announce("retrying", spec.step, spec.task_id, history[-1][0], ctx.run_id,
                     causes.of_record(history[-1][1]) or causes.WORKER_LOST)
            if plan.retry_delay:
                last = history[-1][1] or {}
                wait = last.get("finished_at", time.time()) + plan.retry_delay - time.time()
                if wait > 0:
                    time.sleep(wait)
        last = len(history) >= plan.retries  # a failure of the last attempt is caught in it
        if ctx.slots is not None:  # --max-workers on a cluster daskflow did not size
            with ctx.slots:
                ref = _attempt(ctx, store, spec, parents, plan, last, first)
        else:
            ref = _attempt(ctx, store, spec, parents, plan, last, first)
        if ref is not None:
            return ref
        first = False
        history = _history(store, ctx, spec)


def _gang_node(ctx: RunContext, store: ArtifactStore, spec: TaskSpec,
               parents: tuple[TaskRef, ...], plan: StepPlan,
               history: list[tuple[int, dict[str, Any] | None]]) -> TaskRef:
    """One attempt per gang round: @retry reruns the whole gang (the driver does), never
    one node alone, since a framework's rendezvous needs them all; @catch catches a node's
    failure in the last round only, as Metaflow does."""
    gang_round = spec.parallel.round if spec.parallel else 0
    last = gang_round >= plan.retries
    this_round = []
    for attempt, record in history:
        claim = store.read_start(ctx.run_id, spec.step, spec.task_id, attempt)
        if claim.get("gang_round", 0) == gang_round:
            this_round.append((attempt, record))
    for _, record in reversed(this_round):
        if record is not None and record.get("status") == "ok":
            return TaskRef.from_record(spec.step, spec.task_id, record, ctx.params)
    if not this_round:
        ref = _attempt(ctx, store, spec, parents, plan, last)
        if ref is not None:
            return ref
        history = _history(store, ctx, spec)
    once = replace(plan, retries=0, retry_delay=0.0)
    return _give_up(ctx, store, spec, parents, once, history, catch=last)


def _batched(store: ArtifactStore) -> bool:
    """Whether the task runs in a batch of splits (its records held until the batch ends)."""
    return store.defers_records


def _spool_path(store: ArtifactStore) -> str | None:
    """Where this attempt's output also goes as it comes: a private folder on this host
    (not the worker's own folder, which Dask clears when a dead worker is replaced)."""
    if current_worker() is None or _batched(store):
        return None  # a batch of splits keeps its output in memory until it commits
    folder = spool_folder()
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return None
    # named by this process: a sweep finds the spools of processes that died
    return os.path.join(folder, owned_prefix("") + uuid.uuid4().hex)


def _recorded_spool(store: ArtifactStore, spool: str | None) -> str | None:
    """The spool an attempt's start record names: its own, or in a batch of splits on a
    worker, this thread's scratch files (what reached its descriptors before a crash)."""
    if spool is None and _batched(store) and current_worker() is not None:
        return scratch_spool()
    return spool


def _keep_output_of_dead_attempts(store: ArtifactStore, ctx: RunContext, spec: TaskSpec,
                                  history: list[tuple[int, dict[str, Any] | None]]) -> None:
    """An attempt whose process died left its output in its spool on that host: store it
    as the attempt's log (as Metaflow's logs keep a crashed task's output), its stderr
    ending as Metaflow's does (``Task failed with a segmentation fault.``)."""
    for attempt, record in history:
        if record is None or (record.get("status") == "failed" and
                              record.get("cause") in causes.DEATHS):
            keep_spooled_output(store, ctx.run_id, spec.step, spec.task_id, attempt,
                                _start_of(store, ctx, spec, attempt))


def _end_dead_attempts(store: ArtifactStore, ctx: RunContext, spec: TaskSpec,
                       history: list[tuple[int, dict[str, Any] | None]]
                       ) -> list[tuple[int, dict[str, Any] | None]]:
    """Earlier attempts without a done record died (this task runs again only once they
    ended): give each the ``worker-lost`` record that the driver writes, with what it
    found out, on the clusters it started.  Here: Dask ran the task again by itself."""
    ended = []
    for attempt, record in history:
        if record is None:
            start = _start_of(store, ctx, spec, attempt)
            if process_alive(start.get("pid")) and start.get("host") == socket.gethostname():
                ended.append((attempt, record))  # still running (a zombie): leave it be
                continue
            record = death_record(start, attempt, causes.WORKER_LOST,
                                  lost_message(start, attempt))
            store.write_done(ctx.run_id, spec.step, spec.task_id, attempt, record)
        ended.append((attempt, record))
    return ended


def _history(store: ArtifactStore, ctx: RunContext,
             spec: TaskSpec) -> list[tuple[int, dict[str, Any] | None]]:
    """Earlier attempts with their final record (None: the attempt's worker died)."""
    return [(a, store.read_done(ctx.run_id, spec.step, spec.task_id, a))
            for a in store.list_attempts(ctx.run_id, spec.step, spec.task_id)]


def _pathspec(ctx: RunContext, spec: TaskSpec) -> str:
    return f"{ctx.flow_name}/{ctx.run_id}/{spec.step}/{spec.task_id}"


def _attempt(ctx: RunContext, store: ArtifactStore, spec: TaskSpec,
             parents: tuple[TaskRef, ...], plan: StepPlan, last: bool,
             first: bool = False) -> TaskRef | None:
    """Run one attempt; its record says how it ended.  None when it failed.  The
    ``last`` attempt's failure goes to the ``task_exception`` hooks (``@catch``) in the
    attempt itself, as in Metaflow: the attempt is then caught, and goes on.  ``first``:
    it claims attempt 0, or raises :class:`EarlierAttempt` before anything runs."""
    node = ctx.graph[spec.step]
    pathspec = _pathspec(ctx, spec)
    frames = [list(f) for f in spec.frames]
    parents_named = parent_names(parents)
    started = time.time()
    spool = _spool_path(store)
    start = {"started_at": started, "host": socket.gethostname(), "pid": os.getpid(),
             "worker": _worker_address(), "frames": frames, "parents": parents_named,
             "spool": _recorded_spool(store, spool),
             "gang_round": spec.parallel.round if spec.parallel else 0,
             "resources": worker_resources(current_worker()),
             "node_index": spec.parallel.node_index if spec.parallel else None}
    if not first:
        attempt = store.claim_attempt(ctx.run_id, spec.step, spec.task_id, start)
    elif store.claim_first(ctx.run_id, spec.step, spec.task_id, start):
        attempt = 0
    else:
        raise EarlierAttempt(pathspec)
    record: dict[str, Any] = {"attempt": attempt, "started_at": started, "frames": frames,
                              "parents": parents_named, "worker": _worker_address()}
    if spool is not None:
        note_spool(spool, {"root": ctx.store_root, "flow": ctx.flow_name,
                           "run_id": ctx.run_id, "step": spec.step, "task_id": spec.task_id,
                           "attempt": attempt})
    if node.recursive:  # which pass of its loop: resume clones each pass in its place
        record["iteration"] = spec.iteration
    if ctx.announce_starts and not _batched(store):  # a batch announces its splits at once
        announce("started", spec.step, spec.task_id, attempt, ctx.run_id)
    ref: TaskRef | None = None
    cached: dict[str, Any] | None = None   # its cache index entry (@cache)
    with capture_output(pathspec, ctx.stream_output, spool) as out:
        watchdog = _Watchdog(plan.timeout, lambda stack: _timed_out(
            ctx, store, spec, parents, plan, record, out, stack, last)) \
            if plan.timeout else None
        try:
            env = {**plan.env, **reveal(plan.secret_env)}
            if spec.parallel:
                env.update(spec.parallel.environ())
            with task_environment(env):
                ref, cached = _run_step(ctx, store, node, spec, attempt, parents, plan, record)
            record.update(status="ok", artifacts=_index_record({**ref.artifacts, **ctx.params}),
                          num_splits=ref.num_splits, next_step=ref.next_step)
            if cached is not None:
                record["cache_key"] = cached["key"]
        except BaseException as exc:  # SystemExit and KeyboardInterrupt are task failures too
            if watchdog is not None and watchdog.fired:
                return watchdog.result  # the watchdog recorded the timeout already
            error = error_record(exc, ctx.graph.file)
            out.buffers["stderr"].write(error["traceback"])  # the driver prints it once
            record.update(status="failed", cause=causes.EXCEPTION, error=error)
            ref = _caught(ctx, store, spec, parents, plan, record, out) if last else None
        if watchdog is not None and not watchdog.finish():
            return watchdog.result
    _write_attempt(store, ctx, spec, attempt, record, out)
    if cached is not None and record["status"] == "ok":  # after its record: an entry
        # always names a finished task (a failure @catch caught is never reused)
        try:
            store.cache.add(spec.step, ctx.cache[spec.step], [cached])
        except Exception as exc:  # noqa: BLE001  a later cache miss, never a failed task
            print(f"daskflow: @cache could not record {pathspec} ({type(exc).__name__}: "
                  f"{exc}); a later run will run it again.", file=sys.stderr)
    return ref


def error_record(exc: BaseException, flow_file: str) -> dict[str, str]:
    """How an attempt failed, as plain text: never fails, whatever the exception does."""
    cls = type(exc)
    module = cls.__module__
    if module.startswith("daskflow_flow_"):  # a flow file loaded by path runs as __main__
        module = "__main__"
    try:
        message = str(exc)
    except BaseException as err:  # noqa: BLE001  a __str__ that raises must not lose the failure
        message = f"<str() of the exception failed: {type(err).__name__}>"
    if isinstance(exc, SystemExit):
        message = f"the step called sys.exit({exc.code!r})"
    limit = int(config.get("run.max-error-chars"))
    return {"type": cls.__name__, "qualified_type": f"{module}.{cls.__qualname__}",
            "message": cap_text(message, limit),
            "traceback": cap_text(format_user_traceback(exc, flow_file), limit),
            # daskflow's own refusal of what the step did: its message is the whole story
            "input_error": isinstance(exc, DaskflowException)
            and not isinstance(exc, (RunFailed, StepError, TaskFailed))}


def cap_text(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters, keeping its head and its tail.

    >>> cap_text("a" * 10 + "b" * 10, 8)
    'aaaa\n[... 12 characters cut ...]\nbbbb'
    """
    if len(text) <= limit:
        return text
    half = max(limit // 2, 1)
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters cut ...]\n{text[-half:]}"


@contextmanager
def _performance_report(store: ArtifactStore, ctx: RunContext, spec: TaskSpec,
                        attempt: int, record: dict[str, Any]) -> Iterator[None]:
    """Keep a Dask performance report (task stream, profile, bandwidth) with the task.

    ``mode="inline"`` bundles BokehJS, so the page opens offline. The scheduler renders
    it with bokeh: where its image has none, the task says so in its stderr and its
    outcome stands.
    """
    from distributed import performance_report

    name = performance_file(attempt)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, name)
        report = performance_report(filename=path, mode="inline")
        report.__enter__()
        try:
            yield
        finally:
            try:
                report.__exit__(None, None, None)
            except Exception as exc:  # noqa: BLE001  a report never fails the step
                print(f"daskflow: no Dask performance report for {spec.step}: the cluster's "
                      f"scheduler could not make one ({type(exc).__name__}: {exc}). Install "
                      f"bokeh in its image to get one.", file=sys.stderr)
            if os.path.exists(path):
                with open(path, "rb") as f:
                    record["performance_report"] = store.write_task_file(  # run-relative
                        ctx.run_id, spec.step, spec.task_id, name, f.read())


def _write_attempt(store: ArtifactStore, ctx: RunContext, spec: TaskSpec, attempt: int,
                   record: dict[str, Any], out: Any) -> None:
    record["finished_at"] = time.time()
    for stream in ("stdout", "stderr"):
        store.write_log(ctx.run_id, spec.step, spec.task_id, attempt, stream,
                        out.buffers[stream].getvalue())
    store.write_done(ctx.run_id, spec.step, spec.task_id, attempt, record)  # last


def _give_up(ctx: RunContext, store: ArtifactStore, spec: TaskSpec,
             parents: tuple[TaskRef, ...], plan: StepPlan,
             history: list[tuple[int, dict[str, Any] | None]], *,
             catch: bool = True) -> TaskRef:
    """No attempts left: fail.  But when the last attempt's process died (it raised
    nothing to catch in it), a ``task_exception`` hook (``@catch``) gets Metaflow's
    ``FailureHandledByCatch`` in one more attempt, and the task goes on."""
    pathspec = _pathspec(ctx, spec)
    last_attempt, last = history[-1]
    if catch and (last is None or causes.of_record(last) in causes.DEATHS):
        attempt = last_attempt + 1
        failure = handled_by_catch(attempt)
        error = {"type": failure.type.rsplit(".", 1)[1], "qualified_type": failure.type,
                 "message": failure.message, "traceback": ""}
        record: dict[str, Any] = {"attempt": attempt, "started_at": time.time(),
                                  "frames": [list(f) for f in spec.frames],
                                  "parents": parent_names(parents), "error": error}
        with capture_output(pathspec, ctx.stream_output) as out:
            ref = _caught(ctx, store, spec, parents, plan, record, out)
        if ref is not None:
            record["attempt"] = store.claim_attempt(
                ctx.run_id, spec.step, spec.task_id,
                {"started_at": record["started_at"], "caught": True})
            _write_attempt(store, ctx, spec, record["attempt"], record, out)
            return ref._replace(attempt=record["attempt"])
    error = error_of(last, _start_of(store, ctx, spec, last_attempt), last_attempt)
    raise TaskFailed(pathspec, error["type"], error["message"], error.get("traceback", ""),
                     bool(error.get("input_error")), causes.of_record(last) or causes.WORKER_LOST)


def _caught(ctx: RunContext, store: ArtifactStore, spec: TaskSpec,
            parents: tuple[TaskRef, ...], plan: StepPlan, record: dict[str, Any],
            out: Any) -> TaskRef | None:
    """Hand the attempt's ``record["error"]`` to the ``task_exception`` hooks
    (``@catch``): when one handles it, ``record`` becomes a caught attempt's (the step's
    input, what it assigned before it failed, and what the hooks give: the artifacts the
    flow goes on with) and its ref is returned; None when none does."""
    attempt, error = record["attempt"], record["error"]
    partial = record.pop("partial_artifacts", None) or {}
    handlers = list(iter_hooks(plan.decorators, "task_exception"))
    if not handlers:
        return None
    pathspec = _pathspec(ctx, spec)
    task = TaskContext(None, spec.step, spec.task_id, attempt, pathspec, plan)
    failure = TaskError(error.get("qualified_type", error["type"]), error["message"],
                        error.get("traceback", ""))
    handled: dict[str, Any] | None = None
    for hook in handlers:  # what they print goes to the attempt's output (``out``)
        result = _in_capture(out, hook, task=task, error=failure)
        if result is not None:
            handled = {**(handled or {}), **result}
    if handled is None:
        return None
    announce("caught", spec.step, spec.task_id, attempt, ctx.run_id)  # ahead of its result
    node = ctx.graph[spec.step]
    artifacts = {} if node.is_join or not parents else dict(parents[0].artifacts)
    # As Metaflow, what the step assigned before it failed is kept.
    artifacts.update({name: ArtifactRef(*ref) for name, ref in partial.items()})
    for name, value in handled.items():
        artifacts[name] = store.put_artifact(value, name)
    del record["error"]  # caught: the attempt did not fail (Metaflow's Task.exception is None)
    record.pop("cause", None)
    record.update(status="ok", caught=error,
                  artifacts=_index_record({**artifacts, **ctx.params}))
    return TaskRef(spec.step, spec.task_id, attempt, artifacts, spec.frames,
                   iteration=spec.iteration)


def _in_capture(out: Any, hook: Any, **kwargs: Any) -> Any:
    """Call ``hook`` with what it prints going to ``out`` (an attempt's capture), from
    whichever thread calls it (the watchdog's, for a timeout)."""
    with bind_capture(out):
        return hook(**kwargs)


def _start_of(store: ArtifactStore, ctx: RunContext, spec: TaskSpec,
              attempt: int) -> dict[str, Any]:
    try:
        return store.read_start(ctx.run_id, spec.step, spec.task_id, attempt)
    except Exception:  # noqa: BLE001  no claim to read: the error says less
        return {}


class _Watchdog:
    """Calls ``on_fire`` once, with the step's stack frame, if the attempt is still
    running after ``seconds``; keeps what it returns (a caught attempt's ref, or None)."""

    def __init__(self, seconds: float | None, on_fire: Any) -> None:
        self.lock = threading.Lock()
        self.fired = False
        self.finished = False
        self.result: TaskRef | None = None
        self.thread_id = threading.get_ident()
        self.worker = current_worker()  # get_worker() only works in the task's thread
        from ..remote.calls import in_package
        # on a scheduler that runs share, other runs' tasks live in this process too
        self.shared = in_package() is not None
        self.on_fire = on_fire
        self.timer = threading.Timer(seconds or 0, self._fire)
        self.timer.daemon = True
        self.timer.start()

    def _fire(self) -> None:
        with self.lock:
            if self.finished:
                return
            self.fired = True
        self.result = self.on_fire(sys._current_frames().get(self.thread_id))
        if self.shared or not _kill_worker_process(self.worker):
            # No nanny to replace this worker, or other runs' tasks in it: interrupt the
            # step's thread instead (takes effect at its next Python instruction).
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self.thread_id), ctypes.py_object(TimeoutError))

    def finish(self) -> bool:
        """Stop the watchdog; False if it already fired."""
        with self.lock:
            self.finished = True
            self.timer.cancel()
            return not self.fired


def _timed_out(ctx: RunContext, store: ArtifactStore, spec: TaskSpec,
               parents: tuple[TaskRef, ...], plan: StepPlan, record: dict[str, Any],
               out: Any, frame: Any, last: bool) -> TaskRef | None:
    """The attempt ran past its ``@timeout``: record how, as the timeout hook says
    (Metaflow's ``TimeoutException``, with where the step's code was), caught in the
    attempt if it is the last; its process is stopped next."""
    stack = format_user_stack(frame, ctx.graph.file) if frame is not None else ""
    task = TaskContext(None, spec.step, spec.task_id, record["attempt"], _pathspec(ctx, spec),
                       plan)
    failure = next((error for hook in iter_hooks(plan.decorators, "timed_out")
                    if (error := hook(task=task, stack=stack)) is not None), None) or \
        TaskError("builtins.TimeoutError", f"step '{spec.step}' ran longer than its "
                  f"time limit of {plan.timeout or 0:g}s and was stopped")
    short = failure.type.rsplit(".", 1)[-1]
    out.buffers["stderr"].write(failure.traceback or f"{short}: {failure.message}\n")
    record.update(status="failed", cause=causes.TIMEOUT,
                  error={"type": short, "qualified_type": failure.type,
                         "message": failure.message, "traceback": failure.traceback})
    ref = _caught(ctx, store, spec, parents, plan, record, out) if last else None
    _write_attempt(store, ctx, spec, record["attempt"], record, out)
    return ref


def _kill_worker_process(worker: Any) -> bool:
    """Replace this worker process (its nanny starts a fresh one); False if it has no nanny."""
    if worker is None or not getattr(worker, "nanny", None):
        return False
    os.kill(os.getpid(), signal.SIGKILL)
    return True


def _run_step(ctx: RunContext, store: ArtifactStore, node: StepNode, spec: TaskSpec,
              attempt: int, parents: tuple[TaskRef, ...], plan: StepPlan,
              record: dict[str, Any]) -> tuple[TaskRef, dict[str, Any] | None]:
    """The body, its artifacts stored; with the task's cache index entry (@cache)."""
    inputs = None
    refs: dict[str, ArtifactRef] = {}
    reads: set[str] | None = set() if spec.step in ctx.cache else None  # names it reads
    if node.is_join:
        inputs = Inputs(JoinInputs(store, ctx.run_id, ctx.params, parents, reads), reads)
    elif parents:
        refs = parents[0].artifacts
    flow: FlowSpec = ctx.flow_cls._for_task(store, ctx.run_id, node, refs, ctx.params,
                                            spec.frames, reads)
    try:
        _run_body(ctx, store, flow, spec, attempt, plan, inputs, record)
        if node.name != "end" and flow._df_transition is None:
            raise UnhandledTransitionError(
                f"Step '{node.name}' finished without calling self.next(); it must end with "
                f"self.next({', '.join('self.' + s for s in node.out_funcs)}).")
    except BaseException:
        if any(True for _ in iter_hooks(plan.decorators, "task_exception")):
            # kept for a handler (@catch): what the step assigned before it failed
            record["partial_artifacts"] = _index_record(_store_artifacts(store, flow, True))
        raise
    num_splits = next_step = None
    items: list[Any] | CollectionFanOut = []
    if node.transition == FOREACH:
        items = _foreach_items(flow, node, ctx.max_num_splits)
    elif node.transition == SWITCH:
        next_step = _switch_choice(flow, node)
    artifacts = _store_artifacts(store, flow)
    if node.transition == FOREACH:
        if isinstance(items, CollectionFanOut):  # one item per partition, once it is stored
            items = items.parts(store, artifacts.get(items.var))
            _check_width(node, len(items), ctx.max_num_splits)
        store.write_foreach_items(ctx.run_id, node.name, spec.task_id, attempt, items,
                                  node.foreach_var or "",
                                  digests=node.out_funcs[0] in ctx.cache)
        num_splits = len(items)
    ref = TaskRef(node.name, spec.task_id, attempt, artifacts, spec.frames, num_splits,
                  next_step, spec.iteration)
    if reads is None:
        return ref, None
    try:
        return ref, entry_of_run(ctx.cache[spec.step], store, ctx.run_id, ctx.params,
                                 node.is_join, spec.frames, parents, reads, spec.task_id,
                                 attempt, ref, flow._df_artifacts())
    except Exception as exc:  # noqa: BLE001  unkeyed: a later cache miss, not a failure
        print(f"daskflow: @cache could not key {_pathspec(ctx, spec)} "
              f"({type(exc).__name__}: {exc}); a later run will run it again.",
              file=sys.stderr)
        return ref, None


def _run_body(ctx: RunContext, store: ArtifactStore, flow: FlowSpec, spec: TaskSpec,
              attempt: int, plan: StepPlan, inputs: Inputs | None,
              record: dict[str, Any]) -> None:
    """The step's body, inside its decorators' ``around_task`` hooks."""
    task = TaskContext(flow, spec.step, spec.task_id, attempt, _pathspec(ctx, spec), plan)
    on_own_cluster = plan.own_cluster and current_worker() is not None
    with ExitStack() as stack, bind_current(
            flow_name=ctx.flow_name, run_id=ctx.run_id, step_name=spec.step,
            task_id=spec.task_id, retry_count=attempt, tags=ctx.tags,
            username=ctx.username, origin_run_id=ctx.origin_run_id,
            parameter_names=sorted(ctx.params), parallel=spec.parallel,
            resources=TaskResources.from_record(worker_resources(current_worker())),
            make_run=partial(_client_object, "Run", f"{ctx.flow_name}/{ctx.run_id}", ctx),
            make_task=partial(_client_object, "Task", task.pathspec, ctx),
            **(ctx.project or {})):
        if on_own_cluster:
            stack.enter_context(_performance_report(store, ctx, spec, attempt, record))
        for hook in iter_hooks(plan.decorators, "around_task"):
            wrapper = hook(task=task)
            if wrapper is not None:
                stack.enter_context(wrapper)
        body = getattr(flow, spec.step)
        # On its own cluster the step drives the workers (current.client): leave the
        # worker's thread pool so its own slot does not hold up the work it submits.
        if on_own_cluster:
            from distributed import rejoin, secede
            secede()
            stack.callback(rejoin)
        if inputs is not None:
            body(inputs)
        else:
            body()


def _client_object(kind: str, pathspec: str, ctx: RunContext) -> Any:
    """``current.run`` / ``current.task``: the client's view of this run or task."""
    from .. import client  # the read side, only when a step asks
    return getattr(client, kind)(pathspec, _namespace_check=False, _root=ctx.store_root)


def _store_artifacts(store: ArtifactStore, flow: FlowSpec,
                     partial: bool = False) -> dict[str, ArtifactRef]:
    """Store what the step assigned; for a failed attempt, skip what cannot be stored."""
    artifacts = dict(flow._df_refs)
    for name, value in flow._df_artifacts().items():
        try:
            artifacts[name] = store.put_artifact(value, name)
        except ArtifactError as exc:
            if not partial:  # say which step: the datastore knows only the name
                raise ArtifactError(f"Step '{flow._df_node.name}': {exc}") from exc
            print(f"artifact '{name}' of the failed attempt was not kept: {exc}",
                  file=sys.stderr)
        except Exception as exc:
            if not partial:
                raise
            print(f"artifact '{name}' of the failed attempt was not kept: {exc}",
                  file=sys.stderr)
    return artifacts


def _foreach_items(flow: FlowSpec, node: StepNode,
                   max_num_splits: int) -> list[Any] | CollectionFanOut:
    """The foreach list; for a Dask collection, its partitions (split once stored)."""
    if node.parallel:  # a gang: its nodes' indices
        return list(range(flow.__dict__["_df_num_parallel"]))
    var = node.foreach_var or ""
    try:
        value = getattr(flow, var)
    except AttributeError:
        known = [*flow._df_artifacts(), *flow._df_refs]
        raise ForeachError(
            f"Step '{node.name}' fans out with foreach='{var}' but never sets self.{var}."
            f"{did_you_mean(var, known)} Assign the list to self.{var} before "
            f"self.next().") from None
    items: list[Any] | CollectionFanOut | None = fan_out_of(value, var)
    if items is None:
        try:
            items = list(value)
        except TypeError:
            kind = type(value).__name__
            raise ForeachError(
                f"Step '{node.name}': foreach='{var}' needs a list (or a range, or another "
                f"iterable) to fan out over, but self.{var} is "
                f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind} "
                f"({reprlib.repr(value)}). Assign the items to self.{var}, e.g. "
                f"self.{var} = list(range(...)).") from None
    if not len(items):
        raise ForeachError(
            f"Step '{node.name}': foreach list self.{var} is empty, so '{node.out_funcs[0]}' "
            f"would never run. Give it at least one item.")
    _check_width(node, len(items), max_num_splits)
    return items


def _check_width(node: StepNode, count: int, max_num_splits: int) -> None:
    if count > max_num_splits:
        raise ForeachError(
            f"Step '{node.name}': foreach over self.{node.foreach_var} would start {count} "
            f"tasks, more than --max-num-splits {max_num_splits}. Raise it (run "
            f"--max-num-splits {count}) or fan out over fewer items.")


def free_port() -> int:
    """A TCP port free on this worker's host, for a gang's rendezvous."""
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def _switch_choice(flow: FlowSpec, node: StepNode) -> str:
    var = node.condition_var or ""
    try:
        value = getattr(flow, var)
    except AttributeError:
        raise UnhandledTransitionError(
            f"Step '{node.name}' switches on condition='{var}' but never sets self.{var}.") \
            from None
    for key in (value, str(value)):
        if isinstance(key, str) and key in node.switch_cases:
            return node.switch_cases[key]
    raise UnhandledTransitionError(
        f"Step '{node.name}': condition self.{var} is {value!r}, which is none of the "
        f"choices {sorted(node.switch_cases)}.")


def _index_record(refs: dict[str, ArtifactRef]) -> dict[str, list[Any]]:
    return {name: ref.as_record() for name, ref in refs.items()}


def _worker_address() -> str | None:
    worker = current_worker()
    return worker.address if worker is not None else None
