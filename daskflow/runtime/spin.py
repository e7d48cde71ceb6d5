"""``spin``: run one step of a past run again, on that task's inputs (Metaflow 2.19).

``python flow.py spin RUN/STEP/TASK`` (or ``STEP``, ``RUN/STEP``, ``FLOW/RUN/STEP[/TASK]``,
as Metaflow parses them) reruns the step's current code in this process, with the
inputs the task had: its parents' artifacts, its foreach item and index, the run's
parameters and configs; ``--artifacts-module PATH`` replaces some of them
(``ARTIFACTS = {"name": value}`` in that file). It is for iterating on one step
quickly: no cluster starts and nothing is recorded unless ``--persist`` keeps the task
as a run of its own in the spin datastore (the datastore root with ``_spin`` appended,
as Metaflow keeps ``.metaflow_spin`` beside ``.metaflow``), where
:func:`inspect_spin` points the client. Of the step's decorators only those Metaflow
keeps in a spin apply (``@environment``, ``@timeout``, ``@card``, ``@project``); a
``num_parallel`` gang step is refused, as Metaflow refuses ``@parallel``.

The task runs through the worker's own code (:func:`daskflow.runtime.task.run_task`),
on a store that writes where the spin goes and reads everything else from the run it
spins (:class:`SpinStore`).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from .. import config
from ..datastore import ArtifactRef, ArtifactStore, resolve_root
from ..exceptions import DaskflowException, DataNotFoundError, TaskFailed
from ..inputs import ForeachFrame
from ..steps import StepPlan, iter_hooks
from .context import RunContext, TaskRef, TaskSpec

#: Metaflow 2.19's SPIN_ALLOWED_DECORATORS that daskflow has; the others are left out
SPIN_DECORATORS = ("environment", "project", "timeout", "card")
SPIN_TASK_ID = "0"                # Metaflow's spin task is task 0 of its own run


class SpinError(DaskflowException, ValueError):
    """The task to spin cannot be found or spun."""

    headline = "Spin error"


@dataclass
class SpinResult:
    """What a spin did: the task's pathspec, whether it was kept (and where), its output."""

    pathspec: str
    spun: str                     # the task whose inputs it used
    root: str | None              # the spin datastore, when --persist kept it
    stdout: str = ""
    stderr: str = ""
    artifacts: dict[str, Any] = field(default_factory=dict)   # what the step set
    failure: TaskFailed | None = None

    @property
    def successful(self) -> bool:
        return self.failure is None


def spin_root(root: str | None = None) -> str:
    """Where kept spins go: the datastore root with ``_spin`` appended."""
    return resolve_root(root).rstrip("/").rstrip(os.sep) + "_spin"


def inspect_spin(datastore_root: str | None = None) -> str:
    """Point the client at the spins ``--persist`` kept (Metaflow's ``inspect_spin``)."""
    import dask.config
    root = spin_root(datastore_root)
    dask.config.set({"daskflow.datastore.root": root})
    return root


def parse_spin_pathspec(pathspec: str, flow_name: str) -> tuple[str | None, str, str | None]:
    """``(run_id, step, task_id)`` of the forms Metaflow's ``spin`` takes (None: latest)."""
    parts = pathspec.strip("/").split("/")
    if len(parts) == 4 or (len(parts) == 3 and parts[0] == flow_name):
        if parts[0] != flow_name:
            raise SpinError(f"Flow name '{parts[0]}' in pathspec does not match current flow "
                            f"'{flow_name}'.")
        parts = parts[1:]
    if len(parts) == 1:
        return None, parts[0], None
    if len(parts) == 2:
        return parts[0], parts[1], None
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    raise SpinError(f"Invalid pathspec format: '{pathspec}'. Give STEP, RUN_ID/STEP, "
                    f"RUN_ID/STEP/TASK_ID or {flow_name}/RUN_ID/STEP[/TASK_ID].")


class SpinStore:
    """The spun task's records and artifacts go to ``target``; what it reads of any
    other task (its parents, their foreach items) comes from the run it spins."""

    def __init__(self, origin: ArtifactStore, target: ArtifactStore, origin_run: str,
                 run_id: str, step: str) -> None:
        self.origin, self.target = origin, target
        self.origin_run, self.run_id, self.step = origin_run, run_id, step
        self.written: set[str] = set()

    def _where(self, run_id: str, step: str, task_id: str) -> tuple[ArtifactStore, str]:
        if run_id == self.run_id and (step, task_id) == (self.step, SPIN_TASK_ID):
            return self.target, run_id
        return self.origin, self.origin_run if run_id == self.run_id else run_id

    def _routed(name: str) -> Any:  # a factory of the read methods below (no self)
        def read(self: SpinStore, run_id: str, step: str, task_id: str, *args: Any,
                 **kwargs: Any) -> Any:
            store, run_id = self._where(run_id, step, task_id)
            return getattr(store, name)(run_id, step, task_id, *args, **kwargs)
        read.__name__ = name
        return read

    read_done = _routed("read_done")
    read_start = _routed("read_start")
    list_attempts = _routed("list_attempts")
    file_attempts = _routed("file_attempts")
    read_log = _routed("read_log")
    read_task_file = _routed("read_task_file")
    read_foreach_item = _routed("read_foreach_item")
    iter_foreach_items = _routed("iter_foreach_items")
    del _routed

    def put_artifact(self, value: Any, name: str = "?", inline: bool = False) -> ArtifactRef:
        ref = self.target.put_artifact(value, name, inline=inline)
        self.written.add(ref.sha)
        return ref

    def _of(self, ref: ArtifactRef) -> ArtifactStore:
        return self.target if ref.sha in self.written else self.origin

    def get_artifact(self, ref: ArtifactRef, name: str = "?") -> Any:
        return self._of(ref).get_artifact(ref, name)

    def frame_files(self, ref: ArtifactRef, name: str = "?") -> Any:
        return self._of(ref).frame_files(ref, name)

    def __getattr__(self, name: str) -> Any:  # writes, paths: the target's
        return getattr(self.target, name)


def spin_task(flow_cls: type, pathspec: str, *, root: str | None = None,
              persist: bool = False, artifacts_module: str | None = None,
              skip_decorators: bool = False) -> SpinResult:
    """Run the step of ``pathspec`` (see :func:`parse_spin_pathspec`) again here."""
    from .task import run_task

    graph = flow_cls._flow_graph()
    origin = ArtifactStore(resolve_root(root), flow_cls.__name__)
    run_id, step, task_id = parse_spin_pathspec(pathspec, flow_cls.__name__)
    if step not in graph:
        raise SpinError(f"Step '{step}' not found in flow '{flow_cls.__name__}'. Please "
                        f"provide a valid step name.")
    if any(graph[p].parallel for p in graph[step].in_funcs):
        raise SpinError("Spinning steps with @parallel decorator is not supported.")
    run_id, step, task_id = _find_task(origin, flow_cls.__name__, run_id, step, task_id)
    record = _done_record(origin, run_id, step, task_id)
    run = origin.read_run(run_id)
    params = {k: ArtifactRef(*v) for k, v in run.get("parameter_refs", {}).items()}
    _use_run_configs(flow_cls, origin, params)
    target_root = spin_root(root) if persist else tempfile.mkdtemp(prefix="daskflow-spin-")
    target = ArtifactStore(target_root, flow_cls.__name__)
    spin_id = target.new_run_id()
    store = SpinStore(origin, target, run_id, spin_id, step)
    parents = [_parent_ref(origin, run_id, name, params) for name in record.get("parents", [])]
    params, parents = _override(store, artifacts_module, params, parents)
    ctx = RunContext(flow_cls, graph, target_root, spin_id, params,
                     username=run.get("user", ""), stream_output=False,
                     max_num_splits=int(config.get("run.max-num-splits")),
                     plans={step: _spin_plan(flow_cls, graph, step, skip_decorators)},
                     announce_starts=False)
    from ..compat import alias_active
    ctx.metaflow_alias = alias_active()
    spec = TaskSpec(step, SPIN_TASK_ID, tuple(ForeachFrame(*f) for f in record.get("frames", [])))
    result = SpinResult(f"{flow_cls.__name__}/{spin_id}/{step}/{SPIN_TASK_ID}",
                        f"{flow_cls.__name__}/{run_id}/{step}/{task_id}",
                        target_root if persist else None)
    started = time.time()
    try:
        ref = run_task(ctx, store, spec, tuple(parents))
        given = {(name, r.sha) for p in parents for name, r in p.artifacts.items()}
        result.artifacts = {name: store.get_artifact(r, name)
                            for name, r in ref.artifacts.items()
                            if name != "name" and (name, r.sha) not in given
                            and name not in params}
    except TaskFailed as exc:
        result.failure = exc
    finally:
        _collect_output(result, target, spin_id, step)
        if persist:
            _write_run(target, ctx, run, result, started)
        else:
            shutil.rmtree(target_root, ignore_errors=True)
    return result


def _find_task(store: ArtifactStore, flow: str, run_id: str | None, step: str,
               task_id: str | None) -> tuple[str, str, str]:
    """The task to spin: the one named, else (as Metaflow) the first task of the step in
    the run named, else in the latest run of the current namespace."""
    if run_id is None:
        from ..client import Flow
        latest = Flow(flow, _root=store.root_url).latest_run if store.flow_exists() else None
        if latest is None:
            raise SpinError(f"No run found for flow {flow}; run it first.")
        run_id = latest.id
    if task_id is None:
        tasks = sorted(store.list_tasks(run_id, step), key=int)
        if not tasks:
            raise SpinError(f"No task found for step {step} in run {run_id}")
        task_id = tasks[0]
    return run_id, step, task_id


def _done_record(store: ArtifactStore, run_id: str, step: str, task_id: str) -> dict[str, Any]:
    try:
        attempts = store.list_attempts(run_id, step, task_id)
    except DataNotFoundError:
        attempts = []
    for attempt in reversed(attempts):
        record = store.read_done(run_id, step, task_id, attempt)
        if record is not None:
            return record
    raise SpinError(f"Invalid pathspec: {store.flow_name}/{run_id}/{step}/{task_id} has no "
                    f"finished attempt to take inputs from.")


def _parent_ref(store: ArtifactStore, run_id: str, name: str,
                params: dict[str, ArtifactRef]) -> TaskRef:
    step, task_id = name.split("/")
    return TaskRef.from_record(step, task_id, _done_record(store, run_id, step, task_id),
                               params)


def _use_run_configs(flow_cls: type, store: ArtifactStore,
                     params: dict[str, ArtifactRef]) -> None:
    """The spun run's configs, as resume keeps them (its decorators depend on them)."""
    from ..configs import flow_configs
    from ..steps import apply_configs
    names = flow_configs(flow_cls)
    apply_configs(flow_cls, {attr: store.get_artifact(params[attr], attr) if attr in params
                             else None for attr in names})


def _spin_plan(flow_cls: type, graph: Any, step: str, skip: bool) -> StepPlan:
    from ..steps import step_decorators
    from .plan import resolve_secrets
    kept = () if skip else tuple(d for d in step_decorators(getattr(flow_cls, step))
                                 if d.name in SPIN_DECORATORS)
    plan = StepPlan(step, graph[step], graph, kept)
    for hook in iter_hooks(kept, "plan"):
        hook(step=plan)
    plan.request = None  # runs here: no cluster of its own
    resolve_secrets({step: plan})
    return plan


def _override(store: SpinStore, module_path: str | None, params: dict[str, ArtifactRef],
              parents: list[TaskRef]) -> tuple[dict[str, ArtifactRef], list[TaskRef]]:
    """``--artifacts-module``: its ``ARTIFACTS`` replace inputs of the same name."""
    if module_path is None:
        return params, parents
    spec = importlib.util.spec_from_file_location("daskflow_spin_artifacts", module_path)
    if spec is None or spec.loader is None or not os.path.isfile(module_path):
        raise SpinError(f"--artifacts-module {module_path}: no such Python file.")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    given = getattr(module, "ARTIFACTS", None)
    if not isinstance(given, dict):
        raise SpinError(f"--artifacts-module {module_path} must define ARTIFACTS, a dict of "
                        f"artifact names to values.")
    refs = {name: store.put_artifact(value, name) for name, value in given.items()}
    params = {**params, **{k: v for k, v in refs.items() if k in params}}
    parents = [p._replace(artifacts={**p.artifacts, **{k: v for k, v in refs.items()
                                                        if k not in params}})
               for p in parents]
    return params, parents


def _collect_output(result: SpinResult, target: ArtifactStore, run_id: str,
                    step: str) -> None:
    attempts = target.list_attempts(run_id, step, SPIN_TASK_ID)
    if attempts:
        result.stdout = target.read_log(run_id, step, SPIN_TASK_ID, attempts[-1], "stdout")
        result.stderr = target.read_log(run_id, step, SPIN_TASK_ID, attempts[-1], "stderr")


def _write_run(target: ArtifactStore, ctx: RunContext, run: dict[str, Any],
               result: SpinResult, started: float) -> None:
    """The kept spin's run record, so the client reads it as a run of one task."""
    record = dict(run, run_id=ctx.run_id, status="success" if result.successful else "failed",
                  started_at=started, finished_at=time.time(), clusters=[],
                  origin_run_id=None, spun=result.spun, code=None)
    record["system_tags"] = [*run.get("system_tags", []), "spin"]
    target.write_run(ctx.run_id, record)
