"""Resume: a new run that reuses what an earlier run already finished.

A task of the new run is cloned from the origin run instead of run when the
origin has a successful task at the same place (same step, same foreach
indices, same pass of a recursive switch's loop), all of its parents were cloned too, and its step is not the step
the user resumes from or after it.  So successful splits of a foreach whose
other splits failed are kept, and everything downstream of a failure reruns.
With ``rerun_caught``, a task whose failure ``@catch`` caught counts as not
finished: only those splits run again (and what follows them).
Cloning copies the small records and logs; artifacts are content-addressed
and shared, never copied or recomputed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..datastore import ArtifactRef, ArtifactStore
from ..exceptions import DataNotFoundError, FlowDefinitionError, ResumeError, did_you_mean
from ..liveness import driver_alive
from ..inputs import ForeachFrame
from ..graph import FlowGraph
from .context import TaskRef, TaskSpec

#: a task's place in a run: its step, its foreach indices, and its pass of a loop
Position = tuple[str, tuple[tuple[str, int], ...], int]


class ResumePlan:
    """Which tasks of ``origin_run_id`` the new run reuses, and how to clone them."""

    source = "resume"

    def __init__(self, store: ArtifactStore, graph: FlowGraph, origin_run_id: str,
                 run_id: str | None, params: dict[str, ArtifactRef],
                 from_step: str | None = None, *, rerun_caught: bool = False) -> None:
        self.store = store
        self.origin_run_id = origin_run_id
        self.run_id = run_id  # may be claimed once the plan is known to be worth a run
        self.params = params
        self.excluded = descendants(graph, from_step) if from_step else set()
        self.rerun_caught = rerun_caught
        self.caught = 0  # tasks of the origin that @catch caught, rerun (rerun_caught)
        self.origin = self._index_origin()
        self.cloned: set[tuple[str, str]] = set()   # (step, task id) of the new run

    def waits(self) -> frozenset[str]:
        """Clones follow clones only: no step's followers need to wait for its refs."""
        return frozenset()

    def reuse(self, specs: Sequence[TaskSpec],
              parents: Sequence[Any]) -> list[TaskRef | None]:
        """The walk's :class:`~daskflow.runtime.walk.TaskReuse`: clone each of ``specs``
        whose place the origin finished, if all of ``parents`` are clones too (a batch of
        splits ran in this run: never)."""
        if not all(isinstance(p, TaskRef) and (p.step, p.task_id) in self.cloned
                   for p in parents):
            return [None] * len(specs)
        refs = [self.clone(s.step, s.frames, s.task_id, parents, s.iteration) for s in specs]
        self.cloned.update((s.step, s.task_id) for s, ref in zip(specs, refs) if ref)
        return refs

    def _index_origin(self) -> dict[Position, tuple[str, int, dict[str, Any]]]:
        found: dict[Position, tuple[str, int, dict[str, Any]]] = {}
        store, run = self.store, self.origin_run_id
        for step in store.list_steps(run):
            for task_id in store.list_tasks(run, step):
                for attempt in reversed(store.list_attempts(run, step, task_id)):
                    record = store.read_done(run, step, task_id, attempt)
                    if record is not None and record.get("status") == "ok":
                        if self.rerun_caught and record.get("caught"):
                            self.caught += 1
                            break
                        key = (step, tuple((f[0], f[3]) for f in record.get("frames", [])),
                               record.get("iteration", 0))
                        found[key] = (task_id, attempt, record)
                        break
        return found

    def clone(self, step: str, frames: tuple[ForeachFrame, ...], task_id: str,
              parents: Sequence[TaskRef] = (), iteration: int = 0) -> TaskRef | None:
        """Copy the origin's task at this place into the new run; None if there is none."""
        if step in self.excluded:
            return None
        hit = self.origin.get((step, tuple((f.step, f.index) for f in frames), iteration))
        if hit is None:
            return None
        origin_task, origin_attempt, record = hit
        store = self.store
        for stream in ("stdout", "stderr"):  # from its files or its batch object
            text = store.read_log(self.origin_run_id, step, origin_task, origin_attempt, stream)
            store.write_log(self.run_id, step, task_id, 0, stream, text)
        store.foreach.copy(self.origin_run_id, step, origin_task, origin_attempt,  # if any
                           self.run_id, task_id, 0)
        origin = f"{store.flow_name}/{self.origin_run_id}/{step}/{origin_task}"
        clone = dict(record, attempt=0, frames=[list(f) for f in frames], clone_of=origin)
        if parents:  # the new run's own parent tasks, not the origin's
            clone["parents"] = [f"{p.step}/{p.task_id}" for p in parents]
        store.claim_attempt(self.run_id, step, task_id,
                            {"started_at": record.get("started_at"), "clone_of": origin})
        store.write_done(self.run_id, step, task_id, 0, clone)
        return TaskRef.from_record(step, task_id, clone, self.params)


def descendants(graph: FlowGraph, step: str) -> set[str]:
    """``step`` and every step after it."""
    if step not in graph:
        raise FlowDefinitionError(
            f"Cannot resume from '{step}': {graph.flow_name} has no such step."
            f"{did_you_mean(step, graph.nodes)}")
    seen = {step}
    todo = [step]
    while todo:
        for nxt in graph[todo.pop()].out_funcs:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def pick_origin(store: ArtifactStore, origin_run_id: str | None) -> tuple[str, dict[str, Any]]:
    """The run to resume: the one asked for, else the latest recorded run of the flow.

    A run whose driver still runs it (in another process) is refused: resuming it
    would recompute what that process is computing.
    """
    if origin_run_id is None:
        for run_id in sorted(store.list_runs(), key=int, reverse=True):
            record = store.read_run(run_id)
            if record:  # an id claimed by a run that stopped before its record: skip
                origin_run_id = run_id
                break
        else:
            raise DataNotFoundError(
                f"Flow {store.flow_name} has no runs in {store.flow_root} to resume.")
        origin = record
    else:
        origin = store.read_run(origin_run_id)
    if driver_alive(origin):
        driver = origin.get("driver") or {}
        raise ResumeError(
            f"Run {store.flow_name}/{origin_run_id} is still running (driver pid "
            f"{driver.get('pid', '?')} on {driver.get('host', '?')}): resuming it would redo "
            f"its work. Wait for it to end, or stop it, then resume.")
    return origin_run_id, origin
