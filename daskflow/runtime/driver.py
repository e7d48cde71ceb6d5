"""Drives one run on Dask clusters.

The flow becomes Dask tasks as soon as their inputs are known: a linear
stretch, branches and the joins that close them are submitted at once as one
graph (each task depends on its parents' futures), so the scheduler runs them
without waiting for the driver.  A foreach expands when its step has finished
(its width is known only then) and a switch follows the step it chose.  A
step with ``@resources`` runs on its own cluster: its parents' small refs are
fetched and handed over as values.  On resume, tasks the origin run already
finished are cloned instead of run and join the graph as values too.  The
driver only ever holds small :class:`TaskRef` results, and learns of every
finished task, started cluster and failure through one event queue.
The splits of a foreach whose tasks are short run several to a Dask task
(``batch.py``): the driver sends such batches a few at a time, sized from the
splits' measured durations, and holds per batch only what it takes to send it
again; the join gets each batch's :class:`SplitBatch` as a value.
"""

from __future__ import annotations

import queue
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import cloudpickle
from dask.utils import parse_timedelta

from .. import config
from ..exceptions import TaskFailed
from ..inputs import ForeachFrame
from ..graph import FOREACH, SWITCH, FlowGraph
from .batch import BatchSizer, execute_batch
from .capture import OUTPUT_TOPIC, TASK_TOPIC
from .context import (
    ParallelInfo,
    RunContext,
    SplitBatch,
    TaskKey,
    TaskRef,
    TaskSpec,
    submit_context,
    without_secret_values,
)
from .events import RunObserver
from .lifecycle import RunOutcome
from .placement import ClusterFailed, ClusterPool, ClusterReady, StepCluster
from .plan import Placement
from .resume import ResumePlan
from .splits import SplitResourcesError, SplitsSized, size_splits, split_groups
from .task import execute_task

Parent = Any  # a distributed.Future of a TaskRef, or a TaskRef itself
DEFAULT = "default"


@dataclass
class _Join:
    expected: int
    arrivals: dict[tuple[int, ...], Parent] = field(default_factory=dict)
    count: int = 0    # inputs arrived (a batch of splits brings many)


@dataclass
class _Waiting:
    """Tasks for a step cluster, waiting for their cluster and their parents' refs."""

    step: str
    specs: list[TaskSpec]
    parents: list[list[Parent]]
    cluster: str
    workers: int = 1
    missing: set[str] = field(default_factory=set)   # keys of parents not finished yet
    placement: Placement | None = None


@dataclass(frozen=True)
class TaskDone:
    """A task's future finished, failed or was cancelled."""

    future: Any

    @property
    def key(self) -> TaskKey:
        return TaskKey.parse(self.future.key)


@dataclass
class _Fanout:
    """The splits of one foreach step, sent to the default cluster in batches."""

    step: str
    parent: TaskRef
    pending: deque[TaskSpec]
    sizer: BatchSizer
    first: str             # the first split's task id: names the fan-out
    in_flight: int = 0


@dataclass(frozen=True)
class BatchDone:
    """A batch of splits finished or failed."""

    future: Any
    fanout: _Fanout
    specs: list[TaskSpec]


Event = TaskDone | BatchDone | ClusterReady | ClusterFailed | SplitsSized


@dataclass
class _Gang:
    """A num_parallel gang sent to its cluster: what it takes to send it again."""

    step: str
    specs: list[TaskSpec]
    parents: list[list[Any]]
    cluster: str
    round: int
    keys: list[str]


class RunDriver:
    """Submits the tasks of one run and watches them until ``end`` or a failure."""

    def __init__(self, ctx: RunContext, client: Any, observer: RunObserver,
                 resume: ResumePlan | None = None,
                 placements: dict[str, Placement | None] | None = None,
                 on_cluster: Any = None, max_workers: int = 16,
                 setup: Any = None, idle: Any = None) -> None:
        # on_cluster(info) hears of every step cluster that starts or stops; setup
        # prepares each step cluster before its first task (code, environment check)
        self.ctx = ctx
        self.graph: FlowGraph = ctx.graph
        self.client = client
        self.observer = observer
        self.resume = resume
        self.placements = placements or {}
        self.max_workers = max_workers
        self.reuse = bool(config.get("cluster.reuse-adjacent"))
        self.events: queue.Queue[Event] = queue.Queue()
        self.idle = idle  # the default cluster's IdleRelease, or None
        self.gangs: dict[str, _Gang] = {}   # a gang node's future key -> its gang
        self.superseded: set[str] = set()   # keys of a gang round that was replaced
        secret = any(plan.secret_env for plan in ctx.plans.values())
        self.pool = ClusterPool(cloudpickle.dumps(ctx), ctx.run_id, self.events,
                                on_cluster or (lambda info: None), setup,
                                ctx_bytes_by_reference=cloudpickle.dumps(
                                    without_secret_values(ctx)) if secret else None)
        self.futures: dict[str, Any] = {}
        self.dynamic: dict[str, tuple[str, tuple[ForeachFrame, ...]]] = {}
        self.joins: dict[tuple[str, tuple[ForeachFrame, ...]], _Join] = {}
        self.cloned: set[tuple[str, str]] = set()
        self.waiting_for_cluster: dict[str, list[_Waiting]] = {}
        self.waiting_for_parent: dict[str, list[_Waiting]] = {}
        self.on_cluster: dict[str, str] = {}      # future key -> cluster key
        self.unfinished: dict[tuple[str, str], str] = {}  # (step, task id) -> step
        self.next_task_id = 1
        # resources per foreach split: sizing tasks in flight, each split's placement
        # until it is submitted, and the unfinished splits of each such cluster
        self.sizing: dict[str, tuple[str, list[tuple[ForeachFrame, ...]], TaskRef]] = {}
        self.split_placements: dict[tuple[str, tuple[ForeachFrame, ...]], Placement] = {}
        self.split_clusters: dict[tuple[str, str], str] = {}  # (step, task id) -> cluster
        self.split_left: dict[str, int] = {}                  # cluster -> splits to run
        self.done = 0
        self.end_key: str | None = None

    def execute(self) -> RunOutcome:
        started = time.time()
        self.ctx_future = submit_context(self.client, self.pool.ctx_bytes,
                                         f"context-{self.ctx.run_id}")
        self._subscribe(self.client)
        try:
            self._submit("start", (), [])
            while True:
                try:
                    event = self.events.get(timeout=0.5)
                except queue.Empty:
                    continue
                outcome = self._handle(event)
                if outcome is not None:
                    outcome.tasks, outcome.seconds = self.done, time.time() - started
                    return outcome
        except BaseException:
            self._cancel_all()
            raise
        finally:
            for client in [self.client] + [c.client for c in self.pool.ready.values()]:
                for topic in (OUTPUT_TOPIC, TASK_TOPIC):
                    try:
                        client.unsubscribe_topic(topic)
                    except Exception:
                        pass
            self.pool.close_all()

    def _handle(self, event: Event) -> RunOutcome | None:
        if isinstance(event, ClusterFailed):
            return self._cluster_failed(event)
        if isinstance(event, ClusterReady):
            self._cluster_ready(event.key, event.cluster)
            return None
        if isinstance(event, SplitsSized):
            self._splits_sized(event)
            return None
        if isinstance(event, BatchDone):
            return self._batch_done(event)
        future, task = event.future, event.key
        key = future.key
        if key in self.superseded:  # a node of a gang round that was sent again
            return None
        if self.idle is not None and key not in self.on_cluster:
            self.idle.task_done()
        depth = self.graph.foreach_depth(task.step)
        if future.status != "finished":
            if key in self.gangs and self._retry_gang(self.gangs[key], task):
                return None
            self.observer.task_finished(step=task.step, task_id=task.task_id, ok=False,
                                        foreach_depth=depth)
            failure = self._failure(future)
            self._cancel_all()
            return RunOutcome(False, failure)
        self.done += 1
        self.observer.task_finished(step=task.step, task_id=task.task_id, ok=True,
                                    foreach_depth=depth)
        ref = None
        for waiting in self.waiting_for_parent.pop(key, []):
            ref = ref or future.result()
            self._parent_ready(waiting, key, ref)
        if key in self.dynamic:
            step, frames = self.dynamic.pop(key)
            ref = ref or future.result()
            self._expand(step, frames, ref)
        elif key in self.on_cluster:  # its followers need its ref as a value
            ref = ref or future.result()
            self._follow(task.step, ref.frames, ref, None)
        self._finished(task)
        if key == self.end_key:
            return RunOutcome(True)
        return None

    def _cluster_failed(self, event: ClusterFailed) -> RunOutcome:
        waiting = self.waiting_for_cluster.pop(event.key, [])
        step = waiting[0].step if waiting else "?"
        task_id = waiting[0].specs[0].task_id if waiting else "?"
        pathspec = f"{self.ctx.flow_name}/{self.ctx.run_id}/{step}/{task_id}"
        self._cancel_all()
        return RunOutcome(False, TaskFailed(pathspec, type(event.error).__name__,
                                            f"its cluster did not start: {event.error}"))

    # -- submission ---------------------------------------------------------------

    def _submit(self, step: str, frames: tuple[ForeachFrame, ...],
                parents: list[Parent]) -> None:
        task_id = str(self.next_task_id)
        self.next_task_id += 1
        if self._cloned(step, frames, task_id, parents):
            return
        self._submit_specs(step, [TaskSpec(step, task_id, frames)], [parents])

    def _cloned(self, step: str, frames: tuple[ForeachFrame, ...], task_id: str,
                parents: list[Parent]) -> bool:
        """On resume: copy the origin's task at this place, if it may be reused."""
        if self.resume is None or not self._reusable(parents):
            return False
        ref = self.resume.clone(step, frames, task_id, parents)
        if ref is None:
            return False
        self.cloned.add((step, task_id))
        self.observer.task_finished(step=step, task_id=task_id, ok=True,
                                    foreach_depth=self.graph.foreach_depth(step))
        self._follow(step, frames, ref, ref)
        return True

    def _submit_many(self, step: str, frames_list: list[tuple[ForeachFrame, ...]],
                     parent: Parent) -> None:
        """Submit the splits of a foreach: in batches when they qualify, else all in one
        message to the scheduler."""
        first = self.next_task_id
        self.next_task_id += len(frames_list)
        specs = [TaskSpec(step, str(first + i), frames) for i, frames in enumerate(frames_list)]
        if self.resume is not None and self._reusable([parent]):
            specs = [s for s in specs if not self._cloned(step, s.frames, s.task_id, [parent])]
            if not specs:
                return
        if self._batchable(step, parent):
            sizer = BatchSizer(float(parse_timedelta(config.get("run.batch-target"))),
                               self._threads(), int(config.get("run.batch-max")))
            fanout = _Fanout(step, parent, deque(specs), sizer, specs[0].task_id)
            self.unfinished[(step, f"fanout-{fanout.first}")] = step
            self._send_batches(fanout)
            return
        self._submit_specs(step, specs, [[parent]] * len(specs))

    # -- batches of short splits (batch.py) -------------------------------------------

    def _batchable(self, step: str, parent: Parent) -> bool:
        """Whether the splits of ``step`` may share Dask tasks: on the default cluster,
        not a gang, no @timeout (stopping one kills its process), and going straight
        to the join (which takes a batch's result as a value)."""
        if not config.get("run.batching") or not isinstance(parent, TaskRef) \
                or self.placements.get(step) is not None or self._gang(step) \
                or self.ctx.plan(step).timeout:
            return False
        node = self.graph[step]
        if node.transition in (FOREACH, SWITCH) or len(node.out_funcs) != 1:
            return False
        join = self.graph[node.out_funcs[0]]
        split = self.graph[join.matching_split] if join.matching_split else None
        return join.is_join and split is not None and split.transition == FOREACH

    def _threads(self) -> int:
        try:
            threads = sum(self.client.nthreads().values())
        except Exception:  # noqa: BLE001  sizing only
            threads = 0
        return min(threads, self.max_workers) if threads else self.max_workers

    def _send_batches(self, fanout: _Fanout) -> None:
        """Keep enough batches of ``fanout`` sent that no worker waits for the next."""
        depth = self.graph.foreach_depth(fanout.step)
        while fanout.pending and fanout.in_flight < fanout.sizer.in_flight():
            size = fanout.sizer.next_size(len(fanout.pending))
            batch = [fanout.pending.popleft()]
            # consecutive splits only: the join orders a batch by its first index
            while len(batch) < size and fanout.pending and \
                    fanout.pending[0].frames[-1].index == batch[-1].frames[-1].index + 1:
                batch.append(fanout.pending.popleft())
            key = f"{fanout.step}-{batch[0].task_id}x{len(batch)}-{self.ctx.run_id}"
            future = self.client.submit(execute_batch, self.ctx_future, batch, fanout.parent,
                                        key=key, pure=False)
            if self.idle is not None:
                self.idle.task_sent(1)
            self.futures[key] = future
            fanout.in_flight += 1
            self.observer.tasks_submitted(step=fanout.step, foreach_depth=depth,
                                          task_ids=[spec.task_id for spec in batch])
            future.add_done_callback(
                lambda f, b=batch: self.events.put(BatchDone(f, fanout, b)))

    def _batch_done(self, event: BatchDone) -> RunOutcome | None:
        future, fanout, specs = event.future, event.fanout, event.specs
        step = fanout.step
        depth = self.graph.foreach_depth(step)
        fanout.in_flight -= 1
        self.futures.pop(future.key, None)
        if self.idle is not None:
            self.idle.task_done()
        if future.status == "finished":
            result: SplitBatch = future.result()
            self.done += len(result.task_ids)
            self.observer.tasks_finished(step=step, task_ids=result.task_ids,
                                         foreach_depth=depth)
            fanout.sizer.measured(len(result.task_ids), result.seconds)
            self._arrive(self.graph[step].out_funcs[0], specs[0].frames, result, step,
                         len(result.task_ids))
        else:
            exc = future.exception() if future.status == "error" else None
            if not isinstance(exc, TaskFailed) and exc is not None:
                # Not a split's failure (its worker died, ...): its splits go again one
                # per Dask task, each with the dead-attempt accounting of a task alone.
                self._send(self.client, self.ctx_future, step, specs,
                           [[fanout.parent]] * len(specs), DEFAULT, resent=True)
            else:
                failure = exc if isinstance(exc, TaskFailed) else self._failure(future)
                self.observer.task_finished(step=step,
                                            task_id=failure.pathspec.rsplit("/", 1)[-1],
                                            ok=False, foreach_depth=depth)
                self._cancel_all()
                return RunOutcome(False, failure)
        self._send_batches(fanout)
        if not fanout.pending and fanout.in_flight == 0:
            self._finished(TaskKey(step, f"fanout-{fanout.first}", self.ctx.run_id))
        return None

    def _submit_specs(self, step: str, specs: list[TaskSpec],
                      parents: list[list[Parent]]) -> None:
        placement = self._placement(step, specs)
        if placement is None:
            self._send(self.client, self.ctx_future, step, specs, parents, DEFAULT)
            return
        # A step cluster: its parents' refs travel as values (futures belong to the
        # cluster that made them), and the cluster may still have to start.
        # A foreach step's splits share one cluster, one worker per split at most.
        workers = placement.request.workers if len(specs) == 1 else \
            min(len(specs), self.max_workers)
        if self._gang(step):  # all nodes at once: one worker each
            workers = len(specs)
        waiting = _Waiting(step, specs, parents, self._cluster_key(step, placement), workers,
                           placement=placement)
        for spec in specs:
            self.unfinished[(step, spec.task_id)] = step
        self._count_splits(step, specs, waiting.cluster)
        for plist in parents:
            for parent in plist:
                if not isinstance(parent, TaskRef) and parent.key not in waiting.missing:
                    waiting.missing.add(parent.key)
                    self.waiting_for_parent.setdefault(parent.key, []).append(waiting)
        if not waiting.missing:
            self._wait_for_cluster(waiting, placement)

    def _parent_ready(self, waiting: _Waiting, key: str, ref: TaskRef) -> None:
        waiting.parents = [[ref if not isinstance(p, TaskRef) and p.key == key else p
                            for p in plist] for plist in waiting.parents]
        waiting.missing.discard(key)
        if not waiting.missing:
            assert waiting.placement is not None
            self._wait_for_cluster(waiting, waiting.placement)

    def _wait_for_cluster(self, waiting: _Waiting, placement: Placement) -> None:
        ready = self.pool.ready.get(waiting.cluster)
        if ready is not None:
            self._send(ready.client, ready.ctx_future, waiting.step, waiting.specs,
                       waiting.parents, waiting.cluster)
            return
        self.waiting_for_cluster.setdefault(waiting.cluster, []).append(waiting)
        self.pool.ensure(waiting.cluster, placement, waiting.workers, waiting.step,
                         all_at_once=self._gang(waiting.step))  # a gang needs every node

    def _cluster_ready(self, key: str, cluster: StepCluster) -> None:
        self.observer.cluster_started(name=cluster.info["name"],
                                      description=cluster.info["description"],
                                      dashboard=cluster.info["dashboard"],
                                      step=cluster.info["step"],
                                      backend=cluster.info["backend"],
                                      workers=cluster.info["workers"])
        self._subscribe(cluster.client)
        for waiting in self.waiting_for_cluster.pop(key, []):
            self._send(cluster.client, cluster.ctx_future, waiting.step, waiting.specs,
                       waiting.parents, key)

    def _send(self, client: Any, ctx_future: Any, step: str, specs: list[TaskSpec],
              parents: list[list[Parent]], cluster: str, resent: bool = False) -> None:
        keys = [str(TaskKey(step, spec.task_id, self.ctx.run_id)) for spec in specs]
        if self.idle is not None and cluster == DEFAULT:
            self.idle.task_sent(len(specs))
        if self._gang(step):
            gang = _Gang(step, specs, parents, cluster, 0, keys)
            futures = self._send_gang(client, ctx_future, gang)
        elif len(specs) == 1:
            futures = [client.submit(execute_task, ctx_future, specs[0], *parents[0],
                                     key=keys[0], pure=False)]
        else:
            futures = client.map(execute_task, [ctx_future] * len(specs), specs,
                                 *zip(*parents), key=keys, pure=False)
        depth = self.graph.foreach_depth(step)
        dynamic = self.graph[step].transition in (FOREACH, SWITCH)
        for spec, future in zip(specs, futures):
            self.futures[future.key] = future
            self.unfinished[(step, spec.task_id)] = step
            if cluster != DEFAULT:
                self.on_cluster[future.key] = cluster
            if not resent:
                self.observer.task_submitted(step=step, task_id=spec.task_id,
                                             foreach_depth=depth)
            if step == "end":
                self.end_key = future.key
            if dynamic:
                self.dynamic[future.key] = (step, spec.frames)
            future.add_done_callback(lambda f: self.events.put(TaskDone(f)))
        if not dynamic and cluster == DEFAULT:
            for spec, future in zip(specs, futures):
                self._follow(step, spec.frames, future, None)

    def _gang(self, step: str) -> bool:
        """Whether ``step`` runs as a num_parallel gang."""
        return any(self.graph[p].parallel for p in self.graph[step].in_funcs)

    def _send_gang(self, client: Any, ctx_future: Any, gang: _Gang) -> list[Any]:
        """One node per worker of the gang's cluster, all at once; node 0's host and a
        port free there are where the others meet it."""
        from .task import free_port

        specs = gang.specs
        workers = sorted(client.scheduler_info(n_workers=-1)["workers"])[:len(specs)]
        main = workers[0]
        main_ip = main.split("://")[-1].rsplit(":", 1)[0].strip("[]")
        port = client.run(free_port, workers=[main])[main]
        futures = []
        for index, (spec, plist, key, worker) in enumerate(zip(specs, gang.parents,
                                                               gang.keys, workers)):
            info = ParallelInfo(main_ip, len(specs), index, specs[0].task_id, port,
                                gang.round)
            futures.append(client.submit(execute_task, ctx_future, spec._replace(parallel=info),
                                         *plist, key=key, pure=False, workers=[worker],
                                         allow_other_workers=False))
            self.gangs[key] = gang
        return futures

    def _retry_gang(self, gang: _Gang, failed: TaskKey) -> bool:
        """A node failed: with @retry attempts left, the whole gang runs again (a
        framework's rendezvous needs every node), on its cluster's restarted workers."""
        if gang.round >= self.ctx.plan(gang.step).retries:
            return False
        cluster = self.pool.ready.get(gang.cluster)
        if cluster is None:
            return False
        self.superseded.update(gang.keys)
        self.observer.task_finished(step=failed.step, task_id=failed.task_id, ok=False,
                                    foreach_depth=self.graph.foreach_depth(failed.step),
                                    retrying=True)
        client = cluster.client
        client.cancel([self.futures[k] for k in gang.keys if k in self.futures])
        client.restart(wait_for_workers=True)  # stops the other nodes where they are
        cluster.ctx_future = submit_context(client, self.pool.context_bytes(cluster.backend),
                                            f"context-{self.ctx.run_id}")
        gang.round += 1
        gang.keys = [f"{key.rsplit('-r', 1)[0] if gang.round > 1 else key}-r{gang.round}"
                     for key in gang.keys]
        for spec, future in zip(gang.specs, self._send_gang(client, cluster.ctx_future,
                                                            gang)):
            self.futures[future.key] = future
            self.on_cluster[future.key] = gang.cluster
            future.add_done_callback(lambda f: self.events.put(TaskDone(f)))
        return True

    def _reusable(self, parents: list[Parent]) -> bool:
        return all(isinstance(p, TaskRef) and (p.step, p.task_id) in self.cloned
                   for p in parents)

    def _follow(self, step: str, frames: tuple[ForeachFrame, ...], parent: Parent,
                ref: TaskRef | None) -> None:
        """Submit what comes after ``step``; ``ref`` is needed for foreach and switch."""
        node = self.graph[step]
        if node.transition in (FOREACH, SWITCH):
            assert ref is not None
            self._expand(step, frames, ref)
            return
        for target in node.out_funcs:
            self._arrive(target, frames, parent, step)

    def _expand(self, step: str, frames: tuple[ForeachFrame, ...], ref: TaskRef) -> None:
        """A finished foreach or switch step: submit what follows, its ref as a value."""
        node = self.graph[step]
        if node.transition == SWITCH:
            assert ref.next_step is not None
            self._arrive(ref.next_step, frames, ref, step)  # finished: its ref as a value
            return
        count = ref.num_splits or 0
        target = node.out_funcs[0]
        self.observer.foreach_expanded(step=step, target=target, count=count)
        frames_list = [frames + (ForeachFrame(step, ref.task_id, ref.attempt, index, count),)
                       for index in range(count)]
        if self.ctx.plan(target).split_request is not None:
            self._size_splits(target, frames_list, ref)  # placed once their sizes are known
            return
        # The splits get the finished parent's ref as a value, not its future: a
        # future would pin them all to the worker that holds it.
        self._submit_many(target, frames_list, ref)

    def _arrive(self, target: str, frames: tuple[ForeachFrame, ...], parent: Parent,
                source: str, count: int = 1) -> None:
        """``parent`` reached ``target``; ``count`` inputs at once for a batch of splits,
        its slot being its first split's."""
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
        pending.count += count
        if pending.count == pending.expected:
            del self.joins[(target, join_frames)]
            ordered = [pending.arrivals[k] for k in sorted(pending.arrivals)]
            self._submit(target, join_frames, ordered)

    # -- cluster lifetimes ----------------------------------------------------------

    def _cluster_key(self, step: str, placement: Placement) -> str:
        if self._gang(step):  # sized by the gang, never shared
            return f"gang:{step}"
        return repr(placement) if self.reuse else f"{step}:{placement!r}"

    def _finished(self, task: TaskKey) -> None:
        """A task is done: close step clusters no unfinished task needs any more."""
        self.unfinished.pop((task.step, task.task_id), None)
        self._split_done(task)
        if not self.pool.ready and not self.pool.starting:
            return
        needed: set[str] = set(self.split_left)  # clusters of splits sized per split
        for step in set(self.unfinished.values()):
            placement = self.placements.get(step)
            if placement is not None:
                needed.add(self._cluster_key(step, placement))
            if self.reuse:  # keep a cluster the very next step will use again
                for nxt in self.graph[step].out_funcs:
                    following = self.placements.get(nxt)
                    if following is not None:
                        needed.add(self._cluster_key(nxt, following))
        for cluster in list(self.pool.ready):
            if cluster not in needed:
                self.pool.close(cluster)

    # -- resources per foreach split (see splits.py) --------------------------------

    def _size_splits(self, step: str, frames_list: list[tuple[ForeachFrame, ...]],
                     parent: TaskRef) -> None:
        """Have a worker compute each split's request from its input (the driver never
        loads the items); the splits are placed when it answers."""
        if self.idle is not None:
            self.idle.task_sent()
        future = self.client.submit(size_splits, self.ctx_future, parent, step,
                                    key=f"sizes-{step}-{parent.task_id}-{self.ctx.run_id}",
                                    pure=False)
        self.sizing[future.key] = (step, frames_list, parent)
        future.add_done_callback(lambda f: self.events.put(SplitsSized(f)))

    def _splits_sized(self, event: SplitsSized) -> None:
        """Check every distinct size with the backend, then send each group of splits of
        one size to its own cluster; a size that cannot be met refuses the run first."""
        future = event.future
        if self.idle is not None:
            self.idle.task_done()
        step, frames_list, parent = self.sizing.pop(future.key)
        if future.status != "finished":
            error = future.exception() if future.status == "error" else "it was cancelled"
            raise SplitResourcesError(
                f"Step '{step}': the resources of its splits could not be computed: {error}")
        static = self.placements.get(step)
        assert static is not None
        for placement, group in split_groups(step, frames_list, future.result(), static):
            for frames in group:
                self.split_placements[(step, frames)] = placement
            self._submit_many(step, group, parent)

    def _placement(self, step: str, specs: list[TaskSpec]) -> Placement | None:
        """Where ``specs`` (of one step, one size) run: their own size's placement when
        the step is sized per split, else the step's."""
        if not self.split_placements:
            return self.placements.get(step)
        found = [self.split_placements.pop((step, spec.frames), None) for spec in specs]
        return found[0] or self.placements.get(step)

    def _count_splits(self, step: str, specs: list[TaskSpec], cluster: str) -> None:
        """Splits sized per split keep their cluster until its last one is done."""
        if self.ctx.plan(step).split_request is None:
            return
        for spec in specs:
            self.split_clusters[(step, spec.task_id)] = cluster
        self.split_left[cluster] = self.split_left.get(cluster, 0) + len(specs)

    def _split_done(self, task: TaskKey) -> None:
        cluster = self.split_clusters.pop((task.step, task.task_id), None)
        if cluster is not None:
            self.split_left[cluster] -= 1
            if not self.split_left[cluster]:
                del self.split_left[cluster]

    # -- reporting ----------------------------------------------------------------

    def _failure(self, future: Any) -> TaskFailed:
        exc = future.exception() if future.status == "error" else None
        if isinstance(exc, TaskFailed):
            if exc.type_name == "WorkerDied":
                return self._how_it_died(future, exc)
            return exc
        task = TaskKey.parse(future.key)
        pathspec = f"{self.ctx.flow_name}/{self.ctx.run_id}/{task.step}/{task.task_id}"
        if exc is None:
            return TaskFailed(pathspec, "Cancelled", "the task was cancelled")
        name = type(exc).__name__
        cluster = self.on_cluster.get(future.key)
        diagnosis = self.pool.diagnose(cluster, exc) if cluster else None
        if diagnosis is not None:  # e.g. SLURM killed the job for using too much memory
            return TaskFailed(pathspec, type(diagnosis).__name__, str(diagnosis))
        if name == "KilledWorker":
            return TaskFailed(pathspec, "WorkerDied",
                              "Dask gave up on it: the workers running it kept dying "
                              f"(killed, segfault, os.abort() or out of memory). {exc}")
        return TaskFailed(pathspec, name, str(exc))

    def _how_it_died(self, future: Any, failure: TaskFailed) -> TaskFailed:
        """Add the nanny's account (``killed by signal 9``) to a dead worker's failure."""
        import re
        import signal as signals

        found = re.search(r"\(pid (\d+)\)", failure.message)
        if found is None:
            return failure
        pid = found.group(1)
        try:
            logs = future.client.get_worker_logs(nanny=True)
        except Exception:  # noqa: BLE001  no account: the failure as it is
            return failure
        pattern = re.compile(rf"Worker process {pid} (was killed by signal|exited with "
                             rf"status) (-?\d+)")
        for lines in logs.values():
            for _, line in lines:
                hit = pattern.search(line)
                if hit is None:
                    continue
                number = int(hit.group(2))
                if hit.group(1).startswith("was killed"):
                    try:
                        name = signals.Signals(number).name
                    except ValueError:
                        name = f"signal {number}"
                    how = f"it was killed by signal {number} ({name})"
                else:
                    how = f"it exited with status {number}"
                return TaskFailed(failure.pathspec, failure.type_name,
                                  f"{failure.message}; {how}", failure.traceback_text)
        return failure

    def _cancel_all(self) -> None:
        by_client: dict[int, tuple[Any, list[Any]]] = {}
        for future in self.futures.values():
            if not future.done():
                by_client.setdefault(id(future.client), (future.client, []))[1].append(future)
        for client, pending in by_client.values():
            try:
                client.cancel(pending)
            except Exception:
                pass

    def _subscribe(self, client: Any) -> None:
        client.subscribe_topic(TASK_TOPIC, self._task_event)
        if self.ctx.stream_output:
            client.subscribe_topic(OUTPUT_TOPIC, self._print_output)

    def _task_event(self, event: Any) -> None:
        _, msg = event
        if msg["e"] == "started":  # a batch of splits sends all its task ids at once
            for task_id in msg["t"] if isinstance(msg["t"], list) else [msg["t"]]:
                self.observer.task_started(step=msg["s"], task_id=task_id, attempt=msg["a"])
        elif msg["e"] == "caught":  # before its result: the task finishes as caught
            self.observer.task_caught(step=msg["s"], task_id=msg["t"])
        else:  # an attempt failed and another follows
            self.observer.task_finished(step=msg["s"], task_id=msg["t"], ok=False,
                                        foreach_depth=self.graph.foreach_depth(msg["s"]),
                                        attempt=msg["a"], retrying=True)

    def _print_output(self, event: Any) -> None:
        _, msg = event
        self.observer.task_output(pathspec=msg["p"], stream=msg["s"], text=msg["t"])
