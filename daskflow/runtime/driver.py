"""Drives one run on a Dask cluster.

The flow becomes Dask tasks as soon as their inputs are known: a linear
stretch, branches and the joins that close them are submitted at once as one
graph (each task depends on its parents' futures), so the scheduler runs them
without waiting for the driver.  A foreach expands when its step has finished
(its width is known only then) and a switch follows the step it chose.  On
resume, tasks whose results the origin run already has are cloned instead of
run, and their refs join the graph as plain values.  The driver only ever
holds small :class:`TaskRef` results.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from ..exceptions import TaskFailed
from ..flowspec import ForeachFrame
from ..graph import FOREACH, SWITCH, FlowGraph
from .capture import OUTPUT_TOPIC
from .context import RunContext, TaskRef, TaskSpec, load_context
from .events import RunObserver
from .resume import ResumePlan
from .task import execute_task

Parent = Any  # a distributed.Future of a TaskRef, or a TaskRef itself (cloned on resume)


@dataclass
class _Join:
    expected: int
    arrivals: dict[tuple[int, ...], Parent] = field(default_factory=dict)


@dataclass
class RunOutcome:
    successful: bool
    failure: TaskFailed | None = None
    tasks: int = 0
    seconds: float = 0.0


class RunDriver:
    """Submits the tasks of one run and watches them until ``end`` or a failure."""

    def __init__(self, ctx: RunContext, client: Any, observer: RunObserver,
                 resume: ResumePlan | None = None) -> None:
        self.ctx = ctx
        self.graph: FlowGraph = ctx.graph
        self.client = client
        self.observer = observer
        self.resume = resume
        self.futures: dict[str, Any] = {}
        self.dynamic: dict[str, tuple[str, tuple[ForeachFrame, ...]]] = {}
        self.joins: dict[tuple[str, tuple[ForeachFrame, ...]], _Join] = {}
        self.cloned: set[tuple[str, str]] = set()
        self.next_task_id = 1
        self.done = 0
        self.end_future: Any = None

    def execute(self) -> RunOutcome:
        from distributed import as_completed

        started = time.time()
        # A task rather than scattered data: if the worker holding it dies, Dask
        # recomputes it instead of failing every task that needs it.
        self.ctx_future = self.client.submit(
            load_context, cloudpickle.dumps(self.ctx), key=f"context-{self.ctx.run_id}",
            pure=False)
        self.completed = as_completed()
        if self.ctx.stream_output:
            self.client.subscribe_topic(OUTPUT_TOPIC, self._print_output)
        try:
            self._submit("start", (), [])
            for future in self.completed:
                if future.status != "finished":
                    step, task_id = future.key.split("-")[:2]
                    self.observer.task_finished(step=step, task_id=task_id, ok=False,
                                                foreach_depth=self.graph.foreach_depth(step))
                    failure = self._failure(future)
                    self._cancel_all()
                    return RunOutcome(False, failure, self.done, time.time() - started)
                self.done += 1
                step, task_id = future.key.split("-")[:2]
                self.observer.task_finished(step=step, task_id=task_id, ok=True,
                                            foreach_depth=self.graph.foreach_depth(step))
                if future.key in self.dynamic:
                    step, frames = self.dynamic.pop(future.key)
                    self._expand(step, frames, future, future.result())
                if future is self.end_future:
                    return RunOutcome(True, None, self.done, time.time() - started)
            return RunOutcome(False, None, self.done, time.time() - started)
        except BaseException:
            self._cancel_all()
            raise
        finally:
            if self.ctx.stream_output:
                try:
                    self.client.unsubscribe_topic(OUTPUT_TOPIC)
                except Exception:
                    pass

    # -- submission ---------------------------------------------------------------

    def _submit(self, step: str, frames: tuple[ForeachFrame, ...],
                parents: list[Parent]) -> None:
        task_id = str(self.next_task_id)
        self.next_task_id += 1
        if self.resume is not None and self._reusable(parents):
            ref = self.resume.clone(step, frames, task_id)
            if ref is not None:
                self.cloned.add((step, task_id))
                self.observer.task_finished(step=step, task_id=task_id, ok=True,
                                            foreach_depth=self.graph.foreach_depth(step))
                self._follow(step, frames, ref, ref)
                return
        spec = TaskSpec(step, task_id, frames)
        future = self.client.submit(
            execute_task, self.ctx_future, spec, *parents,
            key=f"{step}-{task_id}-{self.ctx.run_id}", pure=False)
        self.futures[future.key] = future
        self.observer.task_submitted(step=step, task_id=task_id,
                                     foreach_depth=self.graph.foreach_depth(step))
        if step == "end":
            self.end_future = future
        self.completed.add(future)
        if self.graph[step].transition in (FOREACH, SWITCH):
            self.dynamic[future.key] = (step, frames)  # expands when it has finished
        else:
            self._follow(step, frames, future, None)

    def _reusable(self, parents: list[Parent]) -> bool:
        return all(isinstance(p, TaskRef) and (p.step, p.task_id) in self.cloned
                   for p in parents)

    def _follow(self, step: str, frames: tuple[ForeachFrame, ...], parent: Parent,
                ref: TaskRef | None) -> None:
        """Submit what comes after ``step``; ``ref`` is needed for foreach and switch."""
        node = self.graph[step]
        if node.transition in (FOREACH, SWITCH):
            assert ref is not None
            self._expand(step, frames, parent, ref)
            return
        for target in node.out_funcs:
            self._arrive(target, frames, parent, step)

    def _expand(self, step: str, frames: tuple[ForeachFrame, ...], parent: Parent,
                ref: TaskRef) -> None:
        node = self.graph[step]
        if node.transition == SWITCH:
            assert ref.next_step is not None
            self._arrive(ref.next_step, frames, parent, step)
            return
        count = ref.num_splits or 0
        target = node.out_funcs[0]
        self.observer.foreach_expanded(step=step, target=target, count=count)
        frames_list = [frames + (ForeachFrame(step, ref.task_id, ref.attempt, index, count),)
                       for index in range(count)]
        self._submit_many(target, frames_list, parent)

    def _submit_many(self, step: str, frames_list: list[tuple[ForeachFrame, ...]],
                     parent: Parent) -> None:
        """Submit the splits of a foreach as one batch: one message to the scheduler."""
        if self.resume is not None and self._reusable([parent]):
            for frames in frames_list:
                self._submit(step, frames, [parent])
            return
        first = self.next_task_id
        self.next_task_id += len(frames_list)
        specs = [TaskSpec(step, str(first + i), frames) for i, frames in enumerate(frames_list)]
        keys = [f"{step}-{spec.task_id}-{self.ctx.run_id}" for spec in specs]
        futures = self.client.map(execute_task, [self.ctx_future] * len(specs), specs,
                                  [parent] * len(specs), key=keys, pure=False)
        depth = self.graph.foreach_depth(step)
        dynamic = self.graph[step].transition in (FOREACH, SWITCH)
        for spec, future in zip(specs, futures):
            self.futures[future.key] = future
            self.observer.task_submitted(step=step, task_id=spec.task_id, foreach_depth=depth)
            if dynamic:
                self.dynamic[future.key] = (step, spec.frames)
        self.completed.update(futures)
        if not dynamic:
            for spec, future in zip(specs, futures):
                self._follow(step, spec.frames, future, None)

    def _arrive(self, target: str, frames: tuple[ForeachFrame, ...], parent: Parent,
                source: str) -> None:
        node = self.graph[target]
        if not node.is_join:
            self._submit(target, frames, [parent])
            return
        split = self.graph[node.matching_split or ""]
        if split.transition == FOREACH:
            join_frames, slot, expected = frames[:-1], (frames[-1].index,), frames[-1].num_splits
        else:
            join_frames, expected = frames, len(split.out_funcs)
            slot = (node.in_funcs.index(source),)
        pending = self.joins.setdefault((target, join_frames), _Join(expected))
        pending.arrivals[slot] = parent
        if len(pending.arrivals) == pending.expected:
            del self.joins[(target, join_frames)]
            ordered = [pending.arrivals[k] for k in sorted(pending.arrivals)]
            self._submit(target, join_frames, ordered)

    # -- reporting ----------------------------------------------------------------

    def _failure(self, future: Any) -> TaskFailed:
        exc = future.exception() if future.status == "error" else None
        if isinstance(exc, TaskFailed):
            return exc
        step, task_id = future.key.split("-")[:2]
        pathspec = f"{self.ctx.flow_name}/{self.ctx.run_id}/{step}/{task_id}"
        if exc is None:
            return TaskFailed(pathspec, "Cancelled", "the task was cancelled")
        name = type(exc).__name__
        if name == "KilledWorker":
            return TaskFailed(pathspec, "WorkerDied",
                              "Dask gave up on it: the workers running it kept dying "
                              f"(killed, segfault, os.abort() or out of memory). {exc}")
        return TaskFailed(pathspec, name, str(exc))

    def _cancel_all(self) -> None:
        pending = [f for f in self.futures.values() if not f.done()]
        if pending:
            try:
                self.client.cancel(pending)
            except Exception:
                pass

    def _print_output(self, event: Any) -> None:
        _, msg = event
        self.observer.task_output(pathspec=msg["p"], stream=msg["s"], text=msg["t"])
