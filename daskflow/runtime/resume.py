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
keeps its join's graph small.  So are the clones of a batched chain's later steps
(``b`` of ``foreach -> a -> b -> join``): the walk asks for all of a step's at once,
each with its own parent.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgpack

from ..datastore import ArtifactRef, ArtifactStore
from ..datastore.batches import collector_paused, packed, whole
from ..datastore.store import REUSED_PER_OBJECT
from ..exceptions import DataNotFoundError, FlowDefinitionError, ResumeError, did_you_mean
from ..liveness import driver_alive
from ..graph import FlowGraph
from .context import SplitBatch, TaskRef, TaskSpec, parent_names
from .walk import goes_to_join

#: origin tasks unpacked at a time while cloning (their logs read together)
LOGS_CHUNK = 1024

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
        self.commons: list[dict[str, Any]] = []   # what each batch object's records share
        self.origin = self._index_origin()
        self.cloned = TaskIdSpans()   # the tasks of the new run that are clones

    def waits(self) -> frozenset[str]:
        """Clones follow clones only: no step's followers need to wait for its refs."""
        return frozenset()

    def reuse(self, specs: Sequence[TaskSpec],
              parents: Sequence[Sequence[Any]]) -> list[TaskRef | None]:
        """The walk's :class:`~daskflow.runtime.walk.TaskReuse`: clone each of ``specs``
        (one step's) whose place the origin finished, if all of its ``parents`` are
        clones too (a batch of splits that ran in this run: never).  The clones of one
        call are written together as batch objects (``ArtifactStore.write_reused``): a
        foreach's splits, or a chain's later step after its earlier one (``b[i]`` of
        each ``a[i]``)."""
        step = specs[0].step
        if step in self.excluded:
            return [None] * len(specs)
        names = self._parent_names(parents)
        common = names[0] if names and all(n is names[0] for n in names) else None
        refs: list[TaskRef | None] = []
        stretch: list[dict[str, Any]] = []   # written a batch object's worth at a time
        shared: dict[str, Any] = {}          # what its records share
        after = None                         # the origin object its clones come from
        with collector_paused():   # many small records, none in a cycle
            for (spec, held), own in zip(self._origins(step, specs, names), names):
                if held is None:
                    refs.append(None)
                    continue
                number, entry = self._clone(spec, held, own, in_common=common is not None)
                if number != after or len(stretch) == REUSED_PER_OBJECT:
                    self._write(step, stretch, shared)
                    stretch, after = [], number
                    shared = self._shared(number, common)
                stretch.append(entry)
                refs.append(TaskRef(step, spec.task_id, 0, {}, spec.frames)
                            if step in self.to_join else
                            TaskRef.from_record(step, spec.task_id,
                                                whole(entry["done"], shared["done"]) or {},
                                                self.params))
            self._write(step, stretch, shared)
        return refs

    def _parent_names(self, parents: Sequence[Sequence[Any]]) -> list[list[str] | None]:
        """Each spec's parents' names (one list per distinct sequence of parents, as the
        splits of a foreach share theirs), or None where one of them is no clone."""
        seen: dict[int, list[str] | None] = {}
        names = []
        for plist in parents:
            if id(plist) not in seen:
                seen[id(plist)] = parent_names(list(plist)) \
                    if all(self._is_clone(p) for p in plist) else None
            names.append(seen[id(plist)])
        return names

    def _origins(self, step: str, specs: Sequence[TaskSpec],
                 names: Sequence[list[str] | None]) -> Iterator[
            tuple[TaskSpec, list[Any] | None]]:
        """Each of ``specs`` with the origin's task in its place, unpacked (None: none,
        or its parents are no clones: ``names`` None); cloned once, its place is not
        asked again.  The logs of those that ran alone (files of their own) are read a
        chunk at a time, in threads on an object store."""
        for first in range(0, len(specs), LOGS_CHUNK):
            chunk = specs[first:first + LOGS_CHUNK]
            helds = [self.origin.pop((step, tuple((f.step, f.index) for f in spec.frames),
                                      spec.iteration), None) if own is not None else None
                     for spec, own in zip(chunk, names[first:first + LOGS_CHUNK])]
            held = [msgpack.unpackb(h) if h is not None else None for h in helds]
            alone = [h for h in held if h is not None and h[2] < 0]
            if alone:
                for h, logs in zip(alone, self._logs(step, alone)):
                    h[4], h[5] = logs
            yield from zip(chunk, held)

    def _logs(self, step: str, alone: list[list[Any]]) -> list[tuple[str, str]]:
        def read(h: list[Any]) -> tuple[str, str]:
            return tuple(self.store.read_log(self.origin_run_id, step, h[0], h[1], stream)
                         for stream in ("stdout", "stderr"))  # type: ignore[return-value]
        return self._each(read, alone)

    def _latest_success(self, step: str, task_id: str) -> tuple[int, dict[str, Any]] | None:
        """The origin task's latest successful attempt and its record (None: none)."""
        store, run = self.store, self.origin_run_id
        for attempt in reversed(store.list_attempts(run, step, task_id)):
            record = store.read_done(run, step, task_id, attempt)
            if record is not None and record.get("status") == "ok":
                return attempt, record
        return None

    def _each(self, read: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """``read`` of each of ``items``, in order: in 8 threads on an object store (each
        read a request or two, waited on), in turn on a local folder."""
        if self.store.local or len(items) < 2:
            return [read(item) for item in items]
        with ThreadPoolExecutor(8, thread_name_prefix="daskflow-resume-reads") as pool:
            return list(pool.map(read, items))

    def _shared(self, number: int, parents: list[str] | None) -> dict[str, Any]:
        """What the records of the clones of origin object ``number`` (-1: of tasks that
        ran alone) share: the origin's common part, their attempt and their parents."""
        done = {**(self.commons[number] if number >= 0 else {}), "attempt": 0}
        if parents:  # the new run's own parent tasks, not the origin's
            done["parents"] = parents
        return {"start": {"attempt": 0}, "done": done}

    def _write(self, step: str, entries: list[dict[str, Any]], shared: dict[str, Any]) -> None:
        if entries:
            self.store.write_reused(self.run_id, step, entries, shared)
            self.cloned.add(step, [int(e["task_id"]) for e in entries])

    def _is_clone(self, parent: Any) -> bool:
        if isinstance(parent, SplitBatch):
            return all(self.cloned.holds(parent.step, int(t)) for t in parent.task_ids)
        return isinstance(parent, TaskRef) and self.cloned.holds(parent.step,
                                                                 int(parent.task_id))

    def _index_origin(self) -> dict[Position, bytes]:
        """The origin's finished task at each place, packed (msgpack: one object per task
        that the garbage collector never walks): ``[task id, attempt, number, done record,
        stdout, stderr]``.  A batched task's record is kept as its batch object stores
        it, without what the object's entries share (``self.commons[number]``), read
        one object at a time; a task that ran alone has number -1 and its logs None
        (read when it is cloned); the records of those are read in threads on an
        object store."""
        found: dict[Position, bytes] = {}
        store, run = self.store, self.origin_run_id
        store.stored.settle(run)  # it has ended (a running one is refused): one look a step
        for step in store.list_steps(run):
            own = store.stored.task_folders(run, step)
            for task_id, ok in zip(own, self._each(
                    lambda t, s=step: self._latest_success(s, t), own)):
                if ok is not None:
                    attempt, record = ok
                    self._take(found, step, [task_id, attempt, -1, record, None, None],
                               record)
            alone = set(own)
            with collector_paused():
                for common, entries in store.stored.batch_objects(run, step):
                    self._take_object(found, step, common, entries, alone)
        return found

    def _take_object(self, found: dict[Position, bytes], step: str, common: dict[str, Any],
                     entries: list[dict[str, Any]], own: set[str]) -> None:
        """Index the tasks of one batch object (not those with a folder of their own)."""
        number = len(self.commons)
        self.commons.append(common.get("done") or {})
        shared = self.commons[number]
        latest: dict[str, dict[str, Any]] = {}   # each task's latest successful attempt
        for entry in entries:
            task_id, done = str(entry["task_id"]), entry.get("done")
            if task_id not in own and done is not None and \
                    done.get("status", shared.get("status")) == "ok" and \
                    entry["attempt"] >= latest.get(task_id, entry)["attempt"]:
                latest[task_id] = entry
        for task_id, entry in latest.items():
            done = entry["done"]
            self._take(found, step, [task_id, entry["attempt"], number, done,
                                     entry.get("stdout", ""), entry.get("stderr", "")],
                       done, shared)

    def _take(self, found: dict[Position, bytes], step: str, held: list[Any],
              record: dict[str, Any], shared: dict[str, Any] | None = None) -> None:
        """Index a task's latest successful attempt (``held``, its ``record``, less what
        its object's records ``shared``), unless ``@catch`` caught it and those rerun."""
        shared = shared or {}
        if self.rerun_caught and record.get("caught", shared.get("caught")):
            self.caught += 1
            return
        frames = record["frames"] if "frames" in record else shared.get("frames", ())
        key = (step, tuple((f[0], f[3]) for f in frames),
               record.get("iteration", shared.get("iteration", 0)))
        found[key] = packed(held)

    def _clone(self, spec: TaskSpec, held: list[Any], parents: list[str] | None,
               in_common: bool) -> tuple[int, dict[str, Any]]:
        """The batch entry of ``spec``'s clone of the origin's task ``held`` (its logs
        read, :meth:`_origins`): its records with ``clone_of`` and its logs, without what
        :meth:`_shared` gives every clone of its origin object (whose number comes with
        it; with its ``parents`` where they are ``in_common``); a foreach step's items
        are copied to the clone's folder."""
        origin_task, origin_attempt, number, record, stdout, stderr = held
        store, step = self.store, spec.step
        shared = self.commons[number] if number >= 0 else {}
        if record.get("num_splits", shared.get("num_splits")) is not None:
            store.foreach.copy(self.origin_run_id, step, origin_task, origin_attempt,
                               self.run_id, spec.task_id, 0)  # its splits read them here
        origin = f"{store.flow_name}/{self.origin_run_id}/{step}/{origin_task}"
        done = dict(record, frames=[list(f) for f in spec.frames], clone_of=origin)
        done.pop("attempt", None)
        if parents and in_common:
            done.pop("parents", None)
        elif parents:   # the new run's own parent tasks, not the origin's
            done["parents"] = parents
        entry = {"task_id": spec.task_id, "attempt": 0, "done": done,
                 "start": {"started_at": record.get("started_at", shared.get("started_at")),
                           "clone_of": origin}}
        for stream, text in (("stdout", stdout), ("stderr", stderr)):
            if text:
                entry[stream] = text
        return number, entry


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
