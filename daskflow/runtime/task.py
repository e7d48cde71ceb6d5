"""One task = one step execution = one Dask task.

:func:`execute_task` runs on a worker: it claims an attempt, loads what the
step reads (lazily), runs the body with its output captured, stores the
artifacts and the task's record, and returns a small :class:`TaskRef`.  Big
data never travels back through the scheduler.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import cloudpickle

from ..current import bind as bind_current
from ..datastore import ArtifactRef, ArtifactStore
from ..exceptions import ForeachError, TaskFailed, UnhandledTransitionError
from ..flowspec import FlowSpec, ForeachFrame, Inputs, InputView
from ..graph import FOREACH, SWITCH, FlowGraph, StepNode
from .capture import capture_output


@dataclass
class RunContext:
    """What every task of a run shares; sent to the cluster once (scattered)."""

    flow_cls: type
    graph: FlowGraph
    store_root: str
    run_id: str
    params: dict[str, ArtifactRef]
    tags: list[str] = field(default_factory=list)
    username: str = ""
    max_num_splits: int = 100
    stream_output: bool = True
    origin_run_id: str | None = None

    @property
    def flow_name(self) -> str:
        return self.flow_cls.__name__

    # The flow class always travels by cloudpickle: plain pickle would refer to a
    # module (a flow file loaded by path, a notebook) that workers cannot import.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["flow_cls"] = cloudpickle.dumps(self.flow_cls)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["flow_cls"] = cloudpickle.loads(state["flow_cls"])
        self.__dict__.update(state)

    def store(self) -> ArtifactStore:
        key = (self.store_root, self.flow_name)
        store = _STORES.get(key)
        if store is None:
            store = _STORES[key] = ArtifactStore(self.store_root, self.flow_name)
        return store


_STORES: dict[tuple[str, str], ArtifactStore] = {}


class TaskSpec(NamedTuple):
    """Which task to run: its step, id and the foreach splits it sits in."""

    step: str
    task_id: str
    frames: tuple[ForeachFrame, ...] = ()


class TaskRef(NamedTuple):
    """What a finished task returns: where its results are, never the results."""

    step: str
    task_id: str
    attempt: int
    artifacts: dict[str, ArtifactRef]
    frames: tuple[ForeachFrame, ...]
    num_splits: int | None = None      # a foreach step: how many splits it fans out to
    next_step: str | None = None       # a switch step: the step it chose


def execute_task(ctx: RunContext, spec: TaskSpec, *parents: TaskRef) -> TaskRef:
    """Run one step as one task; raises :class:`TaskFailed` (plain text) on failure."""
    store = ctx.store()
    node = ctx.graph[spec.step]
    pathspec = f"{ctx.flow_name}/{ctx.run_id}/{spec.step}/{spec.task_id}"
    started = time.time()
    attempt = store.claim_attempt(ctx.run_id, spec.step, spec.task_id, {
        "started_at": started, "host": socket.gethostname(), "pid": os.getpid(),
        "worker": _worker_address(), "frames": [list(f) for f in spec.frames],
        "parents": [f"{p.step}/{p.task_id}" for p in parents],
    })
    record: dict[str, Any] = {"attempt": attempt, "started_at": started,
                              "frames": [list(f) for f in spec.frames],
                              "parents": [f"{p.step}/{p.task_id}" for p in parents]}
    error: TaskFailed | None = None
    with capture_output(pathspec, ctx.stream_output) as out:
        try:
            ref = _run_step(ctx, store, node, spec, attempt, parents)
            record.update(status="ok", artifacts=_index_record({**ref.artifacts, **ctx.params}),
                          num_splits=ref.num_splits, next_step=ref.next_step)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt are task failures too
            tb = format_user_traceback(exc, ctx.graph.file)
            error = TaskFailed(pathspec, type(exc).__name__, str(exc), tb)
            record.update(status="failed", error={"type": type(exc).__name__,
                                                  "message": str(exc), "traceback": tb})
            out.buffers["stderr"].write(tb)  # into the log; the driver prints it once
    record["finished_at"] = time.time()
    store.write_log(ctx.run_id, spec.step, spec.task_id, attempt, "stdout",
                    out.buffers["stdout"].getvalue())
    store.write_log(ctx.run_id, spec.step, spec.task_id, attempt, "stderr",
                    out.buffers["stderr"].getvalue())
    store.write_done(ctx.run_id, spec.step, spec.task_id, attempt, record)
    if error is not None:
        raise error
    return ref


def _run_step(ctx: RunContext, store: ArtifactStore, node: StepNode, spec: TaskSpec,
              attempt: int, parents: Iterable[TaskRef]) -> TaskRef:
    parents = list(parents)
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
        if inputs is not None:
            body(inputs)
        else:
            body()
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
    artifacts = dict(flow._df_refs)
    for name, value in flow._df_artifacts().items():
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


def _worker_address() -> str | None:
    try:
        from distributed import get_worker
        return get_worker().address
    except (ImportError, ValueError):
        return None
