"""Resume: a new run that reuses what an earlier run already finished.

A task of the new run is cloned from the origin run instead of run when the
origin has a successful task at the same place (same step, same foreach
indices, same pass of a recursive switch's loop), all of its parents were cloned too, and its step is not the step
the user resumes from or after it.  So successful splits of a foreach whose
other splits failed are kept, and everything downstream of a failure reruns.
With ``rerun_caught``, a task whose failure ``@catch`` caught counts as not
finished: only those splits run again (and what follows them).
Cloning copies the small records and logs; artifacts are content-addressed
and shared, never copied or recomputed.  The clones of one step found at once (a
foreach's splits) are written as batch objects, as the records of a batch of
splits are (``ArtifactStore.write_reused``), and go to their join a chunk at a
time (``walk.ReusedSplits``), so cloning a wide foreach costs a few writes and
keeps its join's graph small.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from typing import Any

import msgpack

from ..datastore import ArtifactRef, ArtifactStore
from ..datastore.batches import collector_paused
from ..datastore.store import REUSED_PER_OBJECT
from ..exceptions import DataNotFoundError, FlowDefinitionError, ResumeError, did_you_mean
from ..liveness import driver_alive
from ..graph import FlowGraph
from .context import SplitBatch, TaskRef, TaskSpec, parent_names
from .walk import goes_to_join

#: a task's place in a run: its step, its foreach indices, and its pass of a loop
Position = tuple[str, tuple[tuple[str, int], ...], int]


class ResumePlan:
    """Which tasks of ``origin_run_id`` the new run reuses, and how to clone them."""

    source = "resume"
    in_batches = True   # a wide foreach's clones go to their join a chunk at a time

    def __init__(self, store: ArtifactStore, graph: FlowGraph, origin_run_id: str,
                 run_id: str | None, params: dict[str, ArtifactRef],
                 from_step: str | None = None, *, rerun_caught: bool = False) -> None:
        self.store = store
        self.origin_run_id = origin_run_id
        self.run_id = run_id  # may be claimed once the plan is known to be worth a run
        self.params = params
        self.excluded = descendants(graph, from_step) if from_step else set()
        # steps whose clones reach their join as batches: it reads their records
        self.to_join = {node.name for node in graph if goes_to_join(graph, node.name)}
        self.rerun_caught = rerun_caught
        self.caught = 0  # tasks of the origin that @catch caught, rerun (rerun_caught)
        self.origin = self._index_origin()
        self.cloned = TaskIdSpans()   # the tasks of the new run that are clones

    def waits(self) -> frozenset[str]:
        """Clones follow clones only: no step's followers need to wait for its refs."""
        return frozenset()

    def reuse(self, specs: Sequence[TaskSpec],
              parents: Sequence[Any]) -> list[TaskRef | None]:
        """The walk's :class:`~daskflow.runtime.walk.TaskReuse`: clone each of ``specs``
        (one step's) whose place the origin finished, if all of ``parents`` are clones
        too (a batch of splits that ran in this run: never).  The clones of one call are
        written together as batch objects (``ArtifactStore.write_reused``)."""
        step = specs[0].step
        if step in self.excluded or not all(self._is_clone(p) for p in parents):
            return [None] * len(specs)
        names = parent_names(list(parents)) if parents else None
        refs: list[TaskRef | None] = []
        stretch: list[dict[str, Any]] = []   # written a batch object's worth at a time
        with collector_paused():   # many small records, none in a cycle
            for spec in specs:
                held = self.origin.get(
                    (step, tuple((f.step, f.index) for f in spec.frames), spec.iteration))
                if held is None:
                    refs.append(None)
                    continue
                entry = self._clone(spec, held, names)
                if len(stretch) == REUSED_PER_OBJECT:
                    self._write(step, stretch)
                    stretch = []
                stretch.append(entry)
                refs.append(TaskRef(step, spec.task_id, 0, {}, spec.frames)
                            if step in self.to_join else
                            TaskRef.from_record(step, spec.task_id, entry["done"],
                                                self.params))
            self._write(step, stretch)
        return refs

    def _write(self, step: str, entries: list[dict[str, Any]]) -> None:
        self.store.write_reused(self.run_id, step, entries)
        self.cloned.add(step, [int(e["task_id"]) for e in entries])

    def _is_clone(self, parent: Any) -> bool:
        if isinstance(parent, SplitBatch):
            return all(self.cloned.holds(parent.step, int(t)) for t in parent.task_ids)
        return isinstance(parent, TaskRef) and self.cloned.holds(parent.step,
                                                                 int(parent.task_id))

    def _index_origin(self) -> dict[Position, bytes]:
        """The origin's finished task at each place, packed (msgpack: one object per task
        that the garbage collector never walks): ``[task id, attempt, done record,
        stdout, stderr]``, the logs None for a task that ran alone (read when cloned).
        Batched tasks are read one batch object at a time."""
        found: dict[Position, bytes] = {}
        store, run = self.store, self.origin_run_id
        for step in store.list_steps(run):
            own = store.stored.task_folders(run, step)
            for task_id in own:
                self._take(found, step, task_id, (
                    (attempt, store.read_done(run, step, task_id, attempt), None, None)
                    for attempt in reversed(store.list_attempts(run, step, task_id))))
            with collector_paused():
                for task_id, entries in store.stored.batched_tasks(run, step, set(own)):
                    self._take(found, step, task_id, (
                        (attempt, entry.get("done"), entry.get("stdout", ""),
                         entry.get("stderr", ""))
                        for attempt, entry in sorted(entries.items(), reverse=True)))
        return found

    def _take(self, found: dict[Position, bytes], step: str, task_id: str,
              attempts: Iterator[tuple[int, dict[str, Any] | None, str | None, str | None]]
              ) -> None:
        """Index the latest successful of a task's ``attempts`` (latest first: attempt,
        done record, logs), unless ``@catch`` caught it and those rerun."""
        for attempt, record, stdout, stderr in attempts:
            if record is None or record.get("status") != "ok":
                continue
            if self.rerun_caught and record.get("caught"):
                self.caught += 1
                return
            key = (step, tuple((f[0], f[3]) for f in record.get("frames", [])),
                   record.get("iteration", 0))
            found[key] = msgpack.packb([task_id, attempt, record, stdout, stderr])
            return

    def _clone(self, spec: TaskSpec, held: bytes, parents: list[str] | None) -> dict[str, Any]:
        """The batch entry of ``spec``'s clone of the origin's task ``held``: its records
        with ``clone_of``, its logs; a foreach step's items copied to the clone's folder."""
        origin_task, origin_attempt, record, stdout, stderr = msgpack.unpackb(held)
        store, step = self.store, spec.step
        if stdout is None:  # a task that ran alone: its logs are files
            stdout, stderr = (store.read_log(self.origin_run_id, step, origin_task,
                                             origin_attempt, stream)
                              for stream in ("stdout", "stderr"))
        if record.get("num_splits") is not None:  # its splits read its items here
            store.foreach.copy(self.origin_run_id, step, origin_task, origin_attempt,
                               self.run_id, spec.task_id, 0)
        origin = f"{store.flow_name}/{self.origin_run_id}/{step}/{origin_task}"
        done = dict(record, attempt=0, frames=[list(f) for f in spec.frames],
                    clone_of=origin)
        if parents is not None:  # the new run's own parent tasks, not the origin's
            done["parents"] = parents
        entry = {"task_id": spec.task_id, "attempt": 0, "done": done,
                 "start": {"attempt": 0, "started_at": record.get("started_at"),
                           "clone_of": origin}}
        for stream, text in (("stdout", stdout), ("stderr", stderr)):
            if text:
                entry[stream] = text
        return entry


class TaskIdSpans:
    """Task ids of each step, as sorted spans of consecutive ids: the clones of a
    million splits are a few spans, not a million entries."""

    def __init__(self) -> None:
        self.spans: dict[str, list[tuple[int, int]]] = {}

    def add(self, step: str, task_ids: Sequence[int]) -> None:
        spans = self.spans.setdefault(step, [])
        for task_id in task_ids:
            if spans and spans[-1][1] + 1 == task_id:   # the common case: the next one
                spans[-1] = (spans[-1][0], task_id)
            elif not self.holds(step, task_id):
                bisect.insort(spans, (task_id, task_id))

    def holds(self, step: str, task_id: int) -> bool:
        spans = self.spans.get(step, ())
        at = bisect.bisect_right(spans, (task_id, float("inf"))) - 1
        return at >= 0 and spans[at][0] <= task_id <= spans[at][1]


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
