"""The small values a run passes around: its shared context, task specs and refs."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import cloudpickle

from ..datastore import ArtifactRef, ArtifactStore
from ..inputs import ForeachFrame
from ..graph import FlowGraph
from ..steps import StepPlan


@dataclass
class RunContext:
    """What every task of a run shares; sent to the cluster once per run."""

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
    project: dict[str, Any] | None = None   # @project: what current says of it
    plans: dict[str, StepPlan] = field(default_factory=dict)
    slots: Any = None                # a distributed.Semaphore bounding tasks at once, or None
    announce_starts: bool = True     # send a "started" event per attempt (a live view shows it)
    metaflow_alias: bool = False     # a Metaflow flow file: `import metaflow` is daskflow's
    cache: dict[str, str] = field(default_factory=dict)  # @cache: step -> its code key

    @property
    def flow_name(self) -> str:
        return self.flow_cls.__name__

    def plan(self, step: str) -> StepPlan:
        return self.plans.get(step) or StepPlan(step, self.graph[step], self.graph)

    # The flow class always travels by cloudpickle: plain pickle would refer to a
    # module (a flow file loaded by path, a notebook) that workers cannot import. So do
    # the plans, whose decorators may name classes of modules that import `metaflow`
    # (a card type written for Metaflow): both are loaded once the alias is in place.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["flow_cls"] = cloudpickle.dumps(self.flow_cls)
        state["plans"] = cloudpickle.dumps(self.plans)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if state.get("metaflow_alias"):  # before the class: its module may name `metaflow`
            from ..compat import install_metaflow_alias
            install_metaflow_alias()
        state["flow_cls"] = cloudpickle.loads(state["flow_cls"])
        state["plans"] = cloudpickle.loads(state["plans"])
        self.__dict__.update(state)

    def store(self) -> ArtifactStore:
        key = (self.store_root, self.flow_name)
        store = _STORES.get(key)
        if store is None:
            store = _STORES[key] = ArtifactStore(self.store_root, self.flow_name)
        return store


_STORES: dict[tuple[str, str], ArtifactStore] = {}


class TaskKey(NamedTuple):
    """A task's Dask key, ``<step>-<task id>-<run id>``, and back."""

    step: str
    task_id: str
    run_id: str

    def __str__(self) -> str:
        return f"{self.step}-{self.task_id}-{self.run_id}"

    @classmethod
    def parse(cls, key: str) -> TaskKey:
        step, task_id, run_id = key.split("-", 2)  # step names are identifiers: no '-'
        return cls(step, task_id, run_id)


class ParallelInfo(NamedTuple):
    """A task's place in a gang (``num_parallel``), as ``current.parallel`` gives it."""

    main_ip: str
    num_nodes: int
    node_index: int
    control_task_id: str
    main_port: int
    round: int = 0          # the gang's attempt: @retry reruns the whole gang

    def environ(self) -> dict[str, str]:
        """The variables Metaflow sets for a gang's tasks (frameworks read them)."""
        return {"MF_PARALLEL_MAIN_IP": self.main_ip,
                "MF_PARALLEL_NUM_NODES": str(self.num_nodes),
                "MF_PARALLEL_NODE_INDEX": str(self.node_index),
                "MF_PARALLEL_CONTROL_TASK_ID": self.control_task_id,
                "MF_PARALLEL_MAIN_PORT": str(self.main_port)}


class TaskSpec(NamedTuple):
    """Which task to run: its step, id and the foreach splits it sits in.

    ``own_folder``: its step never runs in batches in this run, so every attempt of it
    is claimed in the task's own folder, attempt 0 first (the driver says so as it sends
    it): its claim tries attempt 0 with no listing, and only an earlier run of the task
    that claimed it sends it to its history (``task.run_task``).
    """

    step: str
    task_id: str
    frames: tuple[ForeachFrame, ...] = ()
    parallel: ParallelInfo | None = None   # its place in a num_parallel gang
    iteration: int = 0                     # a recursive switch's step: its pass, from 0
    own_folder: bool = False


#: the steps that follow a foreach's split in its batch (``foreach -> a -> b -> join``:
#: ``b``), each with the task id its split 0 gets (split ``i`` gets that id plus ``i``)
Chain = tuple[tuple[str, int], ...]


def chained(spec: TaskSpec, chain: Chain) -> list[TaskSpec]:
    """``spec`` (a split) and the tasks of ``chain`` that follow it, in order: its
    frames, their task ids by its split index."""
    index = spec.frames[-1].index
    return [spec, *(TaskSpec(step, str(first + index), spec.frames) for step, first in chain)]


class TaskRef(NamedTuple):
    """What a finished task returns: where its results are, never the results."""

    step: str
    task_id: str
    attempt: int
    artifacts: dict[str, ArtifactRef]
    frames: tuple[ForeachFrame, ...]
    num_splits: int | None = None      # a foreach step: how many splits it fans out to
    next_step: str | None = None       # a switch step: the step it chose
    iteration: int = 0                 # a recursive switch's step: its pass, from 0

    @classmethod
    def from_record(cls, step: str, task_id: str, record: dict[str, Any],
                    params: dict[str, ArtifactRef]) -> TaskRef:
        """Rebuild the ref of a finished task from its stored record."""
        artifacts = {name: ArtifactRef(*ref) for name, ref in record["artifacts"].items()
                     if name not in params}
        frames = tuple(ForeachFrame(*f) for f in record.get("frames", []))
        return cls(step, task_id, record["attempt"], artifacts, frames,
                   record.get("num_splits"), record.get("next_step"),
                   record.get("iteration", 0))

    def as_record(self) -> dict[str, Any]:
        """What :meth:`from_record` rebuilds this ref from (a done record's part)."""
        record: dict[str, Any] = {
            "attempt": self.attempt, "frames": [list(f) for f in self.frames],
            "artifacts": {name: ref.as_record() for name, ref in self.artifacts.items()}}
        for key, value in (("num_splits", self.num_splits), ("next_step", self.next_step),
                           ("iteration", self.iteration)):
            if value:
                record[key] = value
        return record


class SplitBatch(NamedTuple):
    """What a batch of foreach splits returns (``runtime/batch.py``): which tasks it
    finished and, packed small, their done records (artifact refs, small values inline),
    which its join takes instead of reading them back from the batch object."""

    step: str
    task_ids: tuple[str, ...]
    attempts: tuple[int, ...]      # each task's finished attempt
    seconds: float                 # its splits' wall time on the worker, for sizing
    fixed: float = 0.0             # its own look and write (requests on an object store)
    results: bytes | None = None   # its done records (``datastore.unpack_results``)

    @property
    def names(self) -> list[str]:
        """``step/task_id`` of each split, as a join's record names its parents."""
        return [f"{self.step}/{t}" for t in self.task_ids]


def parent_names(parents: tuple[Any, ...] | list[Any]) -> list[str]:
    """``step/task_id`` of each parent task, the splits of a batch one by one."""
    names: list[str] = []
    for parent in parents:
        if isinstance(parent, SplitBatch):
            names.extend(parent.names)
        else:
            names.append(f"{parent.step}/{parent.task_id}")
    return names


def load_context(data: bytes) -> RunContext:
    """Rebuild the run's context on a worker (a task, so Dask can recompute it if lost)."""
    return cloudpickle.loads(data)


def without_secret_values(ctx: RunContext) -> RunContext:
    """``ctx`` with no step's secret values (their references stay)."""
    return replace(ctx, plans={name: replace(plan, secret_env={})
                               for name, plan in ctx.plans.items()})


def submit_context(client: Any, data: bytes, key: str, calls: Any = None) -> Any:
    """The run's context as a task on ``client``'s cluster, copied to every worker.

    A task rather than scattered data: if the workers holding it die, Dask recomputes
    it instead of failing every task that needs it.
    Every task needs it, and Dask places a task next to its inputs: held by one worker
    only, it would pin a small foreach (too few splits for Dask's queuing) or a branch
    to that worker, and work stealing often leaves them all there. Held by every
    worker, tasks go where there are free threads. The copy takes a few milliseconds
    and only steers placement: if it fails, the tasks still run. ``calls``: how tasks go
    to this cluster (``remote/calls.py``; default: as they are).
    """
    future = calls.submit(client, load_context, data, key=key) if calls is not None \
        else client.submit(load_context, data, key=key, pure=False)
    if len(client.scheduler_info().get("workers", {})) > 1:
        try:
            client.replicate([future])
        except Exception:  # noqa: BLE001  a worker left meanwhile: placement only
            pass
    return future
