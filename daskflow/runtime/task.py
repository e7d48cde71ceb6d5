"""One task = one step execution = one Dask task.

:func:`execute_task` runs on a worker.  It counts the task's earlier attempts
in the datastore (exceptions, timeouts, and attempts whose worker died), runs
a new attempt if ``@retry`` allows, and otherwise gives up, or goes on with
the exception stored if ``@catch`` says so.  An attempt loads what the step
reads (lazily), runs the body with its output captured, stores the artifacts
and its record, and returns a small :class:`TaskRef`.  Big data never travels
back through the scheduler.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..current import bind as bind_current
from ..datastore import ArtifactRef, ArtifactStore
from ..exceptions import ForeachError, TaskFailed, UnhandledTransitionError
from ..flowspec import FlowSpec, Inputs, InputView
from ..graph import FOREACH, SWITCH, StepNode
from .capture import announce, capture_output
from .context import RunContext, StepPolicy, TaskRef, TaskSpec


def execute_task(ctx: RunContext, spec: TaskSpec, *parents: TaskRef) -> TaskRef:
    """Run one step as one task; raises :class:`TaskFailed` (plain text) on failure."""
    store = ctx.store()
    policy = ctx.policy(spec.step)
    history = _history(store, ctx, spec)
    for _, record in reversed(history):
        if record is not None and record.get("status") == "ok":
            # Dask recomputes a finished task whose result was on a worker that died:
            # the stored result stands, the step does not run twice.
            return TaskRef.from_record(spec.step, spec.task_id, record, ctx.params)
    while True:
        if not _attempts_left(history, policy, ctx):
            return _give_up(ctx, store, spec, parents, policy, history)
        if history:
            announce("retrying", spec.step, spec.task_id, history[-1][0])
            if policy.retry_delay:
                last = history[-1][1] or {}
                wait = last.get("finished_at", time.time()) + policy.retry_delay - time.time()
                if wait > 0:
                    time.sleep(wait)
        if ctx.slots is not None:  # --max-workers on a cluster daskflow did not size
            with ctx.slots:
                ref = _attempt(ctx, store, spec, parents, policy)
        else:
            ref = _attempt(ctx, store, spec, parents, policy)
        if ref is not None:
            return ref
        history = _history(store, ctx, spec)


def _attempts_left(history: list[tuple[int, dict[str, Any] | None]], policy: StepPolicy,
                   ctx: RunContext) -> bool:
    """Whether @retry (for failures) and the death limit (for dead workers) allow another."""
    failures = sum(1 for _, r in history if r is not None)
    deaths = sum(1 for _, r in history if r is None)
    return failures <= policy.retries and deaths <= ctx.death_retries


def _history(store: ArtifactStore, ctx: RunContext,
             spec: TaskSpec) -> list[tuple[int, dict[str, Any] | None]]:
    """Earlier attempts with their final record (None: the attempt's worker died)."""
    return [(a, store.read_done(ctx.run_id, spec.step, spec.task_id, a))
            for a in store.list_attempts(ctx.run_id, spec.step, spec.task_id)]


def _pathspec(ctx: RunContext, spec: TaskSpec) -> str:
    return f"{ctx.flow_name}/{ctx.run_id}/{spec.step}/{spec.task_id}"


def _attempt(ctx: RunContext, store: ArtifactStore, spec: TaskSpec,
             parents: tuple[TaskRef, ...], policy: StepPolicy) -> TaskRef | None:
    """Run one attempt; its record says how it ended.  None when it failed."""
    node = ctx.graph[spec.step]
    pathspec = _pathspec(ctx, spec)
    frames = [list(f) for f in spec.frames]
    parent_names = [f"{p.step}/{p.task_id}" for p in parents]
    started = time.time()
    attempt = store.claim_attempt(ctx.run_id, spec.step, spec.task_id, {
        "started_at": started, "host": socket.gethostname(), "pid": os.getpid(),
        "worker": _worker_address(), "frames": frames, "parents": parent_names})
    record: dict[str, Any] = {"attempt": attempt, "started_at": started, "frames": frames,
                              "parents": parent_names, "worker": _worker_address()}
    if ctx.announce_starts:
        announce("started", spec.step, spec.task_id, attempt)
    ref: TaskRef | None = None
    with capture_output(pathspec, ctx.stream_output) as out:
        watchdog = _Watchdog(policy.timeout, lambda: _timed_out(
            ctx, store, spec, attempt, record, out, policy.timeout or 0)) \
            if policy.timeout else None
        try:
            if policy.own_cluster and _current_worker() is not None:
                with _performance_report(store, ctx, spec, attempt, record):
                    ref = _run_step(ctx, store, node, spec, attempt, parents, policy)
            else:
                ref = _run_step(ctx, store, node, spec, attempt, parents, policy)
            record.update(status="ok", artifacts=_index_record({**ref.artifacts, **ctx.params}),
                          num_splits=ref.num_splits, next_step=ref.next_step)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt are task failures too
            if watchdog is not None and watchdog.fired:
                return None  # the watchdog recorded the timeout already
            tb = format_user_traceback(exc, ctx.graph.file)
            message = str(exc)
            if isinstance(exc, SystemExit):
                message = f"the step called sys.exit({exc.code!r})"
            record.update(status="failed", error={"type": type(exc).__name__,
                                                  "message": message, "traceback": tb})
            out.buffers["stderr"].write(tb)  # into the log; the driver prints it once
        if watchdog is not None and not watchdog.finish():
            return None
    _write_attempt(store, ctx, spec, attempt, record, out)
    return ref if record["status"] == "ok" else None


@contextmanager
def _performance_report(store: ArtifactStore, ctx: RunContext, spec: TaskSpec,
                        attempt: int, record: dict[str, Any]) -> Iterator[None]:
    """Keep a Dask performance report (task stream, profile, bandwidth) with the task.

    ``mode="inline"`` bundles BokehJS, so the page opens offline.
    """
    from distributed import performance_report

    name = f"{attempt}.performance.html"
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, name)
        try:
            with performance_report(filename=path, mode="inline"):
                yield
        finally:
            if os.path.exists(path):
                with open(path, "rb") as f:
                    store.write_task_file(ctx.run_id, spec.step, spec.task_id, name, f.read())
                record["performance_report"] = f"{spec.step}/{spec.task_id}/{name}"


def _write_attempt(store: ArtifactStore, ctx: RunContext, spec: TaskSpec, attempt: int,
                   record: dict[str, Any], out: Any) -> None:
    record["finished_at"] = time.time()
    for stream in ("stdout", "stderr"):
        store.write_log(ctx.run_id, spec.step, spec.task_id, attempt, stream,
                        out.buffers[stream].getvalue())
    store.write_done(ctx.run_id, spec.step, spec.task_id, attempt, record)  # last


def _give_up(ctx: RunContext, store: ArtifactStore, spec: TaskSpec,
             parents: tuple[TaskRef, ...], policy: StepPolicy,
             history: list[tuple[int, dict[str, Any] | None]]) -> TaskRef:
    """No attempts left: go on with the exception stored (``@catch``) or fail."""
    pathspec = _pathspec(ctx, spec)
    last_attempt, last = history[-1]
    if last is None:
        deaths = sum(1 for _, r in history if r is None)
        error = {"type": "WorkerDied", "traceback": "",
                 "message": f"the worker process running it died {deaths} time(s) (killed, "
                            f"crashed by a segfault or os.abort(), or out of memory); "
                            f"attempt {last_attempt} left no result"}
    else:
        error = last["error"]
    if not policy.catch:
        raise TaskFailed(pathspec, error["type"], error["message"], error.get("traceback", ""))
    from ..steps import CaughtException

    node = ctx.graph[spec.step]
    artifacts = {} if node.is_join or not parents else dict(parents[0].artifacts)
    if policy.catch_var:
        caught = CaughtException(error["type"], error["message"], error.get("traceback", ""))
        artifacts[policy.catch_var] = store.put_artifact(caught, policy.catch_var)
    now = time.time()
    attempt = store.claim_attempt(ctx.run_id, spec.step, spec.task_id,
                                  {"started_at": now, "caught": True})
    record = {"attempt": attempt, "started_at": now, "finished_at": now, "status": "ok",
              "caught": error, "frames": [list(f) for f in spec.frames],
              "parents": [f"{p.step}/{p.task_id}" for p in parents],
              "artifacts": _index_record({**artifacts, **ctx.params})}
    if policy.print_exception:
        store.write_log(ctx.run_id, spec.step, spec.task_id, attempt, "stderr",
                        f"@catch: step '{spec.step}' failed with {error['type']}: "
                        f"{error['message']}; the flow goes on.\n")
    store.write_done(ctx.run_id, spec.step, spec.task_id, attempt, record)
    return TaskRef(spec.step, spec.task_id, attempt, artifacts, spec.frames)


class _Watchdog:
    """Calls ``on_fire`` once if the attempt is still running after ``seconds``."""

    def __init__(self, seconds: float | None, on_fire: Any) -> None:
        self.lock = threading.Lock()
        self.fired = False
        self.finished = False
        self.thread_id = threading.get_ident()
        self.worker = _current_worker()  # get_worker() only works in the task's thread
        self.on_fire = on_fire
        self.timer = threading.Timer(seconds or 0, self._fire)
        self.timer.daemon = True
        self.timer.start()

    def _fire(self) -> None:
        with self.lock:
            if self.finished:
                return
            self.fired = True
        self.on_fire()
        if not _kill_worker_process(self.worker):
            # No nanny to replace this worker: interrupt the step's thread instead
            # (takes effect at its next Python instruction).
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self.thread_id), ctypes.py_object(TimeoutError))

    def finish(self) -> bool:
        """Stop the watchdog; False if it already fired."""
        with self.lock:
            self.finished = True
            self.timer.cancel()
            return not self.fired


def _timed_out(ctx: RunContext, store: ArtifactStore, spec: TaskSpec, attempt: int,
               record: dict[str, Any], out: Any, seconds: float) -> None:
    message = (f"step '{spec.step}' ran longer than its @timeout of {seconds:g}s and was "
               f"stopped")
    out.buffers["stderr"].write(f"TimeoutError: {message}\n")
    record.update(status="failed", error={"type": "TimeoutError", "message": message,
                                          "traceback": ""})
    _write_attempt(store, ctx, spec, attempt, record, out)


def _kill_worker_process(worker: Any) -> bool:
    """Replace this worker process (its nanny starts a fresh one); False if it has no nanny."""
    if worker is None or not getattr(worker, "nanny", None):
        return False
    os.kill(os.getpid(), signal.SIGKILL)
    return True


def _run_step(ctx: RunContext, store: ArtifactStore, node: StepNode, spec: TaskSpec,
              attempt: int, parents: tuple[TaskRef, ...], policy: StepPolicy) -> TaskRef:
    inputs = None
    refs: dict[str, ArtifactRef] = {}
    if node.is_join:
        inputs = Inputs([InputView(store, ctx.run_id, p.step, p.task_id, p.artifacts, p.frames)
                         for p in parents])
    elif parents:
        refs = parents[0].artifacts
    flow: FlowSpec = ctx.flow_cls._for_task(store, ctx.run_id, node, refs, ctx.params,
                                            spec.frames)
    with bind_current(flow_name=ctx.flow_name, run_id=ctx.run_id,
                      step_name=node.name, task_id=spec.task_id,
                      retry_count=attempt, tags=ctx.tags, username=ctx.username,
                      origin_run_id=ctx.origin_run_id):
        body = getattr(flow, node.name)
        # On its own cluster the step drives the workers (current.client): leave the
        # worker's thread pool so its own slot does not hold up the work it submits.
        seceded = policy.own_cluster and _current_worker() is not None
        if seceded:
            from distributed import rejoin, secede
            secede()
        try:
            if inputs is not None:
                body(inputs)
            else:
                body()
        finally:
            if seceded:
                rejoin()
    if node.name != "end" and flow._df_transition is None:
        raise UnhandledTransitionError(
            f"Step '{node.name}' finished without calling self.next(); it must end with "
            f"self.next({', '.join('self.' + s for s in node.out_funcs)}).")
    num_splits = next_step = None
    if node.transition == FOREACH:
        items = _foreach_items(flow, node, ctx.max_num_splits)
        store.write_foreach_items(ctx.run_id, node.name, spec.task_id, attempt, items,
                                  node.foreach_var or "")
        num_splits = len(items)
    elif node.transition == SWITCH:
        next_step = _switch_choice(flow, node)
    values = flow._df_artifacts()
    if policy.catch_var and policy.catch_var not in values:
        values[policy.catch_var] = None  # as in Metaflow: `if self.error:` works after success
    artifacts = dict(flow._df_refs)
    for name, value in values.items():
        artifacts[name] = store.put_artifact(value, name)
    return TaskRef(node.name, spec.task_id, attempt, artifacts, spec.frames,
                   num_splits, next_step)


def _foreach_items(flow: FlowSpec, node: StepNode, max_num_splits: int) -> list[Any]:
    var = node.foreach_var or ""
    try:
        value = getattr(flow, var)
    except AttributeError:
        raise ForeachError(
            f"Step '{node.name}' fans out with foreach='{var}' but never sets self.{var}; "
            f"assign the list to self.{var} before self.next().") from None
    try:
        items = list(value)
    except TypeError:
        raise ForeachError(
            f"Step '{node.name}': foreach='{var}' needs an iterable (list, range, ...), but "
            f"self.{var} is a {type(value).__name__}.") from None
    if not items:
        raise ForeachError(
            f"Step '{node.name}': foreach list self.{var} is empty, so '{node.out_funcs[0]}' "
            f"would never run. Give it at least one item.")
    if len(items) > max_num_splits:
        raise ForeachError(
            f"Step '{node.name}': foreach over self.{var} would start {len(items)} tasks, more "
            f"than --max-num-splits {max_num_splits}. Raise it (run --max-num-splits "
            f"{len(items)}) or fan out over fewer items.")
    return items


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


def format_user_traceback(exc: BaseException, flow_file: str) -> str:
    """The traceback from the step body down, with the flow file's real name.

    The flow class travels to workers by value (cloudpickle), which names its
    code ``<dynamic-code>``; the line numbers are right, so the file name is
    put back and the source lines read from it where it exists.
    """
    summary = traceback.TracebackException.from_exception(exc)
    frames = list(summary.stack)
    internal = os.path.dirname(os.path.abspath(__file__))
    while len(frames) > 1 and frames[0].filename.startswith(internal):
        frames.pop(0)
    fixed = [traceback.FrameSummary(flow_file, f.lineno, f.name) if f.filename ==
             "<dynamic-code>" else f for f in frames]
    summary.stack = traceback.StackSummary.from_list(fixed)
    return "".join(summary.format())


def _index_record(refs: dict[str, ArtifactRef]) -> dict[str, list[Any]]:
    return {name: list(ref) for name, ref in refs.items()}


def _current_worker() -> Any:
    try:
        from distributed import get_worker
        return get_worker()
    except (ImportError, ValueError):
        return None  # not on a Dask worker


def _worker_address() -> str | None:
    worker = _current_worker()
    return worker.address if worker is not None else None
