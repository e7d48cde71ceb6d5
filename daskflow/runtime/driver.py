"""Drives one run: an event loop between Dask and the owners of each decision.

Every future the driver submits reports on one queue when it ends, as does each step
cluster that starts or fails to.  The driver takes the events in order, hands each to
its owner, carries out what the owners decide (submit tasks, start or close a
cluster) and ends the run at ``end`` or at the first failure.  The owners keep their
own state and return decisions; none of them calls the driver:

- ``walk.py``: the graph walk (joins, foreach, switch, tasks reused: resume's clones,
  ``cache.py``'s hits) and the task ids; what to submit once a task has finished, or
  has been submitted.
- ``placement.py``: where each unfinished task runs, the tasks that wait for their
  step cluster or for their parents' refs, the clusters no task needs any more.
- ``fanout.py``: the splits of a foreach sent in batches (``batch.py`` runs them).
- ``gang.py``: num_parallel gangs, sent and retried whole.
- ``splits.py``: resources per foreach split, sized on a worker before any split runs.
- ``flights.py``: the futures in flight, each with the cluster it runs on.
- ``shares.py``: on a scheduler that other runs share, this run's share of its threads
  (batches kept in flight, the priority of what it submits); ``remote/calls.py``: how
  tasks go there (sealed with the run's code package).
- ``diagnosis.py``: why a task failed, and what a dead worker took with it until that
  is known; ``growth.py``: where a task whose worker died runs again (with more
  memory after running out of it);
  ``relay.py``: what tasks and nannies say as the run goes on.

No task outlives its worker here: a worker that dies fails what it ran (Dask's
``KilledWorker``; the clusters daskflow starts allow no failures of their own), and the
driver finds out how it died, records the dead attempts with their cause (a batch's
splits one by one) and sends the tasks again: where they were, to a cluster with more
memory, or as the splits of a batch still to run.  ``@retry`` counts those attempts as
it counts any (the task gives up, or goes to ``@catch``, when it has none left).

A linear stretch, branches and the joins that close them go to Dask at once as one
graph (each task depends on its parents' futures), so the scheduler runs them
without waiting for the driver; the driver only ever holds small refs.  Each step's
tasks go inside the Dask span ``flow/run/step`` (``dashboard/spans.py``).

A foreach whose splits go on to other steps before their join (``a -> b -> join``)
is batched whole: the walk reserves the later steps' task ids (``Walk._reserve``), a
batch runs each split's chain (``batch.execute_chains``), and its result brings the
last step's tasks to the join.  Resumed from a later step of the chain, the splits of
that step go out in batches too, each with its earlier step's clone as its parent
(``batch.execute_after_reused``).
"""

from __future__ import annotations

import functools
import queue
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cloudpickle

from .. import causes, config
from ..dashboard import step_span
from ..dask_client import erred_with
from ..exceptions import TaskFailed
from .batch import execute_after_reused, execute_batch, execute_chains
from .context import RunContext, SplitBatch, TaskKey, TaskRef, TaskSpec, without_secret_values
from ._exit_watch import journal_name, read_journal
from .attempts import DIED, end_lost_attempt, keep_dead_output, record_unstarted
from .default_cluster import DefaultCluster
from .diagnosis import Deaths, LostWorker, NannyReports, WorkerDiagnosed, diagnose_death, \
    failure_of, lost_worker, scheduler_gone, scheduler_lost, scheduler_went_away
from .events import RunObserver
from .fanout import BatchDone, Fanout, batch_chains, in_batches, may_batch
from .flights import Flights
from .gang import Gang, Gangs, is_gang, rerun, send_gang
from .growth import GiveUp, Movable, MoveTo, Sent, after_death, checked
from .lifecycle import RunOutcome
from .placement import DEFAULT, CloseCluster, ClusterFailed, ClusterPool, ClusterReady, \
    SendTo, StartCluster, StepClusters
from .plan import Placement
from .relay import TaskRelay
from .shares import ShareBoard, ShareChanged, SharedRun
from .splits import SplitSizing, SplitsSized, size_splits
from .task import execute_task
from .walk import Expanded, Reused, ReusedSplits, Routes, Run, SizeSplits, TaskReuse, \
    Walk


@dataclass(frozen=True)
class ParentBack:
    """A finished task's result, lost with a worker, was computed again: a task moved to
    another cluster meanwhile waits for it as a parent."""

    future: Any


@dataclass(frozen=True)
class TaskDone:
    """A task's future finished, failed or was cancelled."""

    future: Any

    @property
    def key(self) -> TaskKey:
        return TaskKey.parse(self.future.key)


class RunDriver:
    """Submits the tasks of one run and watches them until ``end`` or a failure."""

    def __init__(self, ctx: RunContext, client: Any, observer: RunObserver,
                 reuse: Sequence[TaskReuse] = (),
                 placements: dict[str, Placement | None] | None = None,
                 cluster_changed: Any = None, max_workers: int = 16,
                 setup: Any = None, idle: Any = None,
                 open_default: Callable[[], tuple[Any, Any]] | None = None,
                 calls: Any = None, share: int | None = None,
                 default_cluster: Callable[[], tuple[Any, Any] | None] | None = None) -> None:
        # cluster_changed(info) hears of every step cluster that starts or stops; setup
        # prepares each step cluster before its first task (code, environment check);
        # open_default (client None): starts the default cluster when a task first needs
        # it, giving its client and IdleRelease, so a run that reuses every task starts none;
        # calls: how tasks go to the default cluster; share: its weight there when other
        # runs share the scheduler (None: the cluster is the run's own; a shared one is
        # connected before the run, so client is given with a share);
        # default_cluster() gives the backend and cluster object of the run's default
        # cluster once it is up, asked why its workers die (None: a scheduler daskflow
        # did not start)
        self.ctx = ctx
        self.graph = ctx.graph
        self.observer = observer
        self.max_workers = max_workers
        self.placements = placements or {}
        self.events: queue.Queue[Any] = queue.Queue()
        secret = any(plan.secret_env for plan in ctx.plans.values())
        self.pool = ClusterPool(cloudpickle.dumps(ctx), ctx.run_id, self.events,
                                cluster_changed or (lambda info: None), setup,
                                ctx_bytes_by_reference=cloudpickle.dumps(
                                    without_secret_values(ctx)) if secret else None)
        steps = [node.name for node in self.graph]
        gangs = frozenset(s for s in steps if is_gang(self.graph, s))
        own = frozenset(s for s in steps if self.placements.get(s) is not None)
        grows = frozenset(s for s in steps if ctx.plan(s).may_grow)
        looked_up = frozenset().union(*(r.waits() for r in reuse))
        chains = batch_chains(self.graph, lambda s: may_batch(ctx.plan(s), s in own,
                                                              s in gangs), looked_up)
        self.routes = Routes(
            follow_on_finish=own | grows | looked_up,  # a task that may move: no followers yet
            batched=frozenset(chains), chains={s: c for s, c in chains.items() if c},
            sized=frozenset(s for s in steps if ctx.plan(s).split_request is not None))
        # steps whose tasks this run never holds in batch objects: each claims its
        # attempts in its own folder (TaskSpec.own_folder)
        self.own_folders = frozenset(steps) - gangs - in_batches(chains)
        self.walk = Walk(self.graph, ctx.run_id, self.routes, reuse=reuse)
        self.clusters = StepClusters(self.graph, self.placements, gangs=gangs,
                                     max_workers=max_workers,
                                     reuse=bool(config.get("cluster.reuse-adjacent")))
        self.gangs = Gangs(lambda step: ctx.plan(step).retries)
        self.sizing = SplitSizing()
        self.reports = NannyReports()
        self.relay = TaskRelay(observer, self.graph, ctx.stream_output,
                               f"{ctx.flow_name}/{ctx.run_id}", self.reports)
        self.deaths = Deaths()
        self.movable = Movable()
        self.flights = Flights(self.events, idle)  # idle: the default cluster's IdleRelease
        from ..remote.plain_calls import PlainCalls
        self.step_calls = PlainCalls()      # step clusters are the run's own
        board = None if share is None else ShareBoard(
            client, SharedRun(ctx.username, ctx.flow_name, ctx.run_id, share,
                              host=socket.gethostname()),
            self.events, lambda: self.flights.in_flight)
        self.default = DefaultCluster(
            client, open_default, calls or self.step_calls, board,
            default_cluster or (lambda: None), (self.pool.ctx_bytes, f"context-{ctx.run_id}"),
            self.relay, lambda idle: setattr(self.flights, "idle", idle))
        self.fanouts: set[Fanout] = set()
        self.outcome: RunOutcome | None = None
        self.done = 0

    def execute(self) -> RunOutcome:
        started = time.time()
        try:
            self.default.start()
            self._apply(self.walk.start())
            while self.outcome is None:
                try:
                    event = self.events.get(timeout=0.5)
                except queue.Empty:
                    continue
                try:
                    self.handle(event)
                except Exception as exc:  # fetching a result from a scheduler now gone
                    client = self.default.client
                    if client is None or not scheduler_went_away(exc, client):
                        raise
                    self._fail(scheduler_gone(self._pathspec(), client.scheduler.address))
            self.outcome.tasks, self.outcome.seconds = self.done, time.time() - started
            return self.outcome
        except BaseException:
            self.flights.cancel_all()
            raise
        finally:
            self.relay.unsubscribe(self.default.stop()
                                   + [c.client for c in self.pool.ready.values()])
            self.pool.close_all()

    # -- events, each to its owner --------------------------------------------------

    @functools.singledispatchmethod
    def handle(self, event: Any) -> None:
        raise TypeError(f"The run's driver has no owner for the event {event!r}.")

    @handle.register(TaskDone)
    def _task_done(self, event: TaskDone) -> None:
        future = event.future
        if self.gangs.superseded(future.key):  # a node of a gang round sent again
            return
        if self.flights.lost(future, TaskDone):  # computed again: its end comes again
            return
        task, cluster = event.key, self.flights.landed(future.key)
        depth = self.graph.foreach_depth(task.step)
        if future.status == "pending":  # failed, then rerun with a task it feeds: watched on
            self.flights.watch([future], cluster, TaskDone)
            return
        if future.status != "finished":
            lost = lost_worker(future)
            # a gang with rounds left runs again whole; a node of its last round is a task
            if lost is not None and (task.step not in self.clusters.gangs
                                     or self.gangs.retryable(future.key) is None):
                self._lost(future, cluster, lost)
                return
            gang = self.gangs.retryable(future.key)
            if gang is not None and self._retry_gang(gang, task):
                return
            failure = self._failure(future, cluster)
            self.observer.task_finished(step=task.step, task_id=task.task_id, ok=False,
                                        foreach_depth=depth, failure=failure)
            self._fail(failure)
            return
        self.movable.done(future.key)
        self.flights.take(future.key)
        follows = self.walk.waits_for(task.step)
        ref = future.result() if follows or self.clusters.waits_on(future.key) else None
        for key, done in self.gangs.finished(future.key, ref):  # a gang: its whole round
            node = TaskKey.parse(key)
            self.done += 1
            self.observer.task_finished(step=node.step, task_id=node.task_id, ok=True,
                                        foreach_depth=depth)
            if done is not None:
                self._apply(self.clusters.parent_finished(key, done))
                if follows:
                    self._apply(self.walk.finished(done))
            self._apply(self.clusters.finished(node.step, node.task_id))
        if task.step == "end":
            self.outcome = RunOutcome(True)

    @handle.register(BatchDone)
    def _batch_done(self, event: BatchDone) -> None:
        future, fanout, specs = event.future, event.fanout, event.specs
        step, depth = fanout.step, self.graph.foreach_depth(fanout.step)
        if self.flights.lost(future, functools.partial(BatchDone, fanout=fanout, specs=specs)):
            return  # computed again: its end comes again
        self.flights.landed(future.key, keep=False)
        if future.status == "finished":
            result: SplitBatch = future.result()
            fanout.finished(len(result.task_ids), result.seconds, result.fixed)
            self._finished(fanout, specs)
            self._apply(self.walk.batch_finished(fanout.for_join(result), specs[0].frames))
        elif future.status == "pending":  # failed, then rerun with a task it waits for
            self.flights.watch([future], DEFAULT, functools.partial(
                BatchDone, fanout=fanout, specs=specs))
            return
        else:
            lost = lost_worker(future)
            if lost is not None:  # its splits wait for the diagnosis, or for what it needs
                self._lost(event, DEFAULT, lost)
                return
            error = erred_with(future)
            if not fanout.returned(specs, error):
                failure = error if isinstance(error, TaskFailed) else \
                    self._failure(future, DEFAULT)
                parts = failure.pathspec.split("/")   # a chain's step failed, or the run
                failed_step, task_id = parts[-2:] if len(parts) == 4 else (step, parts[-1])
                self.observer.task_finished(step=failed_step, ok=False, foreach_depth=depth,
                                            task_id=task_id, failure=failure)
                self._fail(failure)
                return
            # each split again in a Dask task of its own, where a dead attempt counts
            self._send(DEFAULT, step, specs, fanout.parents(specs), resent=True)
            self._apply(self.walk.sent_alone(specs))
        self._send_batches(fanout)
        if fanout.done:
            self.fanouts.discard(fanout)
            self._apply(self.clusters.finished(step, fanout.name))

    @handle.register(ShareChanged)
    def _share_changed(self, event: ShareChanged) -> None:
        """Runs came or went on the shared scheduler: keep this run's new share busy (a
        smaller share lets batches in flight finish; nothing is cancelled)."""
        for fanout in list(self.fanouts):
            fanout.resize(self.default.threads(self.max_workers))
            self._send_batches(fanout)

    @handle.register(ClusterReady)
    def _cluster_ready(self, event: ClusterReady) -> None:
        info = event.cluster.info
        self.observer.cluster_started(name=info["name"], description=info["description"],
                                      dashboard=info["dashboard"], step=info["step"],
                                      backend=info["backend"], workers=info["workers"],
                                      meter=event.cluster.meter,
                                      price=info["price_per_worker_hour"])
        self.relay.subscribe(event.cluster.client)
        self._apply(self.clusters.cluster_up(event.key))

    @handle.register(ClusterFailed)
    def _cluster_failed(self, event: ClusterFailed) -> None:
        """Each task that waited for the cluster has a failed attempt (cause ``cluster``);
        with ``@retry`` attempts left, they wait for the cluster to be started again."""
        waiting = self.clusters.cluster_failed(event.key)
        kind, message = type(event.error).__name__, f"its cluster did not start: {event.error}"
        store = self.ctx.store()
        for group in waiting:
            attempts = [record_unstarted(store, self.ctx.run_id, group.step, spec.task_id,
                                         causes.CLUSTER, kind, message)
                        for spec in group.specs]
            if max(attempts) > self.ctx.plan(group.step).retries:
                self._fail(TaskFailed(self._pathspec(group.step, group.specs[0].task_id), kind,
                                      message, cause=causes.CLUSTER))
                return
        for group in waiting:
            for spec in group.specs:
                self.observer.task_finished(step=group.step, task_id=spec.task_id, ok=False,
                                            foreach_depth=self.graph.foreach_depth(group.step),
                                            retrying=True, cause=causes.CLUSTER)
            self._apply(self.clusters.place(group.step, group.specs, group.parents,
                                            group.placement))
        if not waiting:
            self._fail(TaskFailed(self._pathspec("?", "?"), kind, message, cause=causes.CLUSTER))

    @handle.register(SplitsSized)
    def _splits_sized(self, event: SplitsSized) -> None:
        future = event.future
        self.flights.landed(future.key, keep=False)
        sizes, error = None, "it was cancelled"
        if future.status == "finished":
            sizes = future.result()
        elif future.status == "error":
            error = erred_with(future)
        step, parent, groups = self.sizing.answered(future.key, sizes, error, self.placements)
        for placement, frames_list in groups:  # each size to its own cluster
            self._apply(self.walk.splits(step, frames_list, parent), placement)

    @handle.register(WorkerDiagnosed)
    def _worker_diagnosed(self, event: WorkerDiagnosed) -> None:
        _, lost = self.deaths.diagnosed(event.address)
        for item in lost:
            if self.outcome is not None:
                return
            if isinstance(item, BatchDone):
                self._lost_batch(item, event)
            else:
                self._lost_task(item, event)

    # -- a worker that died ---------------------------------------------------------

    def _lost(self, item: Any, cluster: str, lost: LostWorker) -> None:
        """A task (or a batch: its event) was lost with a dead worker: it waits for the
        diagnosis of that death, or, lost with a task it depends on, for that task to run
        again."""
        key = item.future.key if isinstance(item, BatchDone) else item.key
        if lost.task != key:  # it waited for a task that was lost
            # A parent taken as finished whose result died with a worker is run again by
            # Dask, unheard by the driver: a death of that run is this task's to handle
            if lost.task not in self.flights.by_key or self.flights.taken(lost.task) \
                    or self.deaths.with_parent(lost.task, item):
                self._again([item], cluster)
            return
        if self.deaths.lost(cluster, lost, item, key):
            backend, cluster_object = self.default.backend() if cluster == DEFAULT else \
                self.pool.backend_and_cluster(cluster)
            threading.Thread(
                target=diagnose_death, name=f"daskflow-diagnose-{lost.address}", daemon=True,
                args=(backend, cluster_object, lost, self.reports,
                      lambda death, nanny, back: self.events.put(
                          WorkerDiagnosed(cluster, lost.address, death, nanny, back)))).start()

    def _lost_task(self, future: Any, diagnosed: WorkerDiagnosed) -> None:
        """Record the attempt that died with its worker, then send the task again: where
        it was, or where :func:`~daskflow.runtime.growth.regrown` says."""
        task, death = TaskKey.parse(future.key), diagnosed.death
        ended = end_lost_attempt(self.ctx.store(), self.ctx.run_id, task.step, task.task_id,
                                 diagnosed.address, death.cause, death.message)
        if ended is None and not self.deaths.unstarted_loss(future.key):
            self._fail(TaskFailed(self._pathspec(task.step, task.task_id), DIED,
                                  "its worker died before it could start or hand back "
                                  f"its result, again and again; the last one: "
                                  f"{death.message}", cause=death.cause))
            return
        sent = self.movable.get(future.key)
        cause = ended.cause if ended is not None else death.cause
        then = after_death(self.ctx.plan(task.step), sent, ended, cause,
                           diagnosed.comes_back, self.default.backend_name)
        if isinstance(then, GiveUp):
            error = ended.error if ended is not None else {"type": DIED,
                                                           "message": death.message}
            self._fail(TaskFailed(self._pathspec(task.step, task.task_id), error["type"],
                                  error["message"], cause=cause))
        elif isinstance(then, MoveTo) and sent is not None:
            self._move(future.key, sent, checked(then.placement, self._where(sent.spec)))
        else:
            self._again([future] + self.deaths.sent_again(future.key), diagnosed.cluster)

    def _again(self, items: list[Any], cluster: str) -> None:
        """Run these lost tasks (or batches: their events) again where they were, with
        their keys: Dask reruns what they wait for that was lost too."""
        client = self.default.client if cluster == DEFAULT else self.pool.ready[cluster].client
        futures = [i.future if isinstance(i, BatchDone) else i for i in items]
        # one already runs again (Dask reran it with a dependent): only watched again
        erred = [f for f in futures if f.status == "error"]
        if erred:
            client.retry(erred)
        for item in items:
            if isinstance(item, BatchDone):
                self.flights.watch([item.future], cluster, functools.partial(
                    BatchDone, fanout=item.fanout, specs=item.specs))
            else:
                self.flights.watch([item], cluster, TaskDone)

    def _move(self, key: str, sent: Sent, placement: Placement) -> None:
        """The task ``key`` runs again on ``placement``'s cluster (with more memory)."""
        task = TaskKey.parse(key)
        self.deaths.sent_again(key)
        self.movable.done(key)
        self._apply(self.clusters.finished(task.step, task.task_id))  # off its old cluster
        parents = [self.flights.ref_if_done(p) for p in sent.parents]
        for parent in parents:  # its result died with the worker too: Dask computes it again
            if isinstance(parent, TaskKey):
                future = self.flights.future_of(parent)
                threading.Thread(target=self._when_back, args=(future,), daemon=True,
                                 name=f"daskflow-parent-{parent}").start()
        self._apply(self.clusters.place(task.step, [sent.spec], [parents], placement))

    def _when_back(self, future: Any) -> None:
        """Put :class:`ParentBack` on the queue once ``future`` has ended again."""
        try:
            future.result()
        except BaseException:  # noqa: BLE001  its failure is the event's to handle
            pass
        self.events.put(ParentBack(future))

    @handle.register(ParentBack)
    def _parent_back(self, event: ParentBack) -> None:
        future = event.future
        if future.status != "finished":
            self._fail(self._failure(future, self.flights.by_key[future.key].cluster))
            return
        self._apply(self.clusters.parent_finished(future.key, future.result()))

    def _lost_batch(self, done: BatchDone, diagnosed: WorkerDiagnosed) -> None:
        """A batch died with its worker: what it finished is kept, its running split gets
        a failed attempt, the rest is batched again (see :meth:`Fanout.lost`)."""
        fanout, specs = done.fanout, done.specs
        step, nanny = fanout.step, diagnosed.nanny
        data = nanny.journals.get(journal_name(done.future.key))
        notes = read_journal(data) if data is not None else \
            ([] if nanny.exitcode is not None else None)
        if len(specs) == 1:  # a batch of one runs as lone tasks: their claims are stored
            death = diagnosed.death
            for task_step, (task_id,) in fanout.tasks(specs):
                end_lost_attempt(self.ctx.store(), self.ctx.run_id, task_step, task_id,
                                 diagnosed.address, death.cause, death.message)
        loss = fanout.lost(specs, notes, diagnosed.death)
        if loss.dead is not None:
            keep_dead_output(loss.dead)
        for entries_step, entries in loss.entries.items():
            self.ctx.store().stored.write_batch(self.ctx.run_id, entries_step, entries)
        if loss.finished is not None:
            self._finished(fanout, specs[:len(loss.finished.task_ids)])
            self._apply(self.walk.batch_finished(loss.finished, specs[0].frames))
        if loss.alone:
            self._send(DEFAULT, step, loss.alone, fanout.parents(loss.alone), resent=True)
            self._apply(self.walk.sent_alone(loss.alone))
        self._send_batches(fanout)
        if fanout.done:
            self._apply(self.clusters.finished(step, fanout.name))

    # -- decisions, carried out -----------------------------------------------------

    def _apply(self, decisions: list[Any], placement: Placement | None = None) -> None:
        """Carry out ``decisions`` in order; ``placement``: where their tasks run, if
        not on their step's own placement (a size of splits sized per split)."""
        for decision in decisions:
            self._do(decision, placement)

    @functools.singledispatchmethod
    def _do(self, decision: Any, placement: Placement | None) -> None:
        raise TypeError(f"The run's driver cannot carry out {decision!r}.")

    @_do.register(Run)
    def _run(self, run: Run, placement: Placement | None) -> None:
        step, specs = run.step, list(run.specs)
        if run.after_reused or (run.fanout and step in self.routes.batched):
            each = {spec.task_id: plist[0] for spec, plist in zip(specs, run.parents)} \
                if run.after_reused else None   # each split's own parent, a reused task
            assert isinstance(run.parent, TaskRef)
            fanout = Fanout.configured(step, None if each else run.parent, specs,
                                       self.default.threads(self.max_workers), run.chain,
                                       each)  # type: ignore[arg-type]
            self.fanouts.add(fanout)
            self.clusters.sent(step, [fanout.name], DEFAULT)
            self._send_batches(fanout)
            return
        placement = placement or self.placements.get(step)
        if placement is None:
            self._send(DEFAULT, step, specs, run.parents)
            return
        # A step cluster: its parents' refs travel as values (futures belong to the
        # cluster that made them), and the cluster may still have to start.
        parents = [[self.flights.ref_if_done(p) for p in plist] for plist in run.parents]
        self._apply(self.clusters.place(step, specs, parents, placement))

    @_do.register(Reused)
    def _reused(self, reused: Reused, _: Any) -> None:
        self.observer.task_finished(step=reused.step, task_id=reused.task_id, ok=True,
                                    foreach_depth=self.graph.foreach_depth(reused.step),
                                    reused=True,
                                    **({"cached": True} if reused.source == "cache" else {}))
        if reused.step == "end":
            self.outcome = RunOutcome(True)

    @_do.register(ReusedSplits)
    def _reused_splits(self, reused: ReusedSplits, _: Any) -> None:
        self.observer.tasks_finished(step=reused.step, task_ids=reused.task_ids,
                                     foreach_depth=self.graph.foreach_depth(reused.step),
                                     reused=True,
                                     **({"cached": True} if reused.source == "cache" else {}))

    @_do.register(Expanded)
    def _expanded(self, expanded: Expanded, _: Any) -> None:
        self.observer.foreach_expanded(step=expanded.step, target=expanded.target,
                                       count=expanded.count)

    @_do.register(SizeSplits)
    def _size_splits(self, sizing: SizeSplits, _: Any) -> None:
        """A worker computes each split's request from its input (the driver never loads
        the items); the splits are placed when it answers."""
        client, ctx_future = self.default.open()
        future = self.default.calls.submit(
            client, size_splits, ctx_future, sizing.parent, sizing.step,
            key=f"sizes-{sizing.step}-{sizing.parent.task_id}-{self.ctx.run_id}",
            priority=self._priority())
        self.sizing.ask(future.key, sizing.step, sizing.frames, sizing.parent)
        self.flights.watch([future], DEFAULT, SplitsSized)

    @_do.register(StartCluster)
    def _start_cluster(self, start: StartCluster, _: Any) -> None:
        self.pool.ensure(start.key, start.placement, start.workers, start.step,
                         all_at_once=start.all_at_once)

    @_do.register(SendTo)
    def _send_to(self, send: SendTo, _: Any) -> None:
        self._send(send.cluster, send.step, send.specs, send.parents)

    @_do.register(CloseCluster)
    def _close_cluster(self, close: CloseCluster, _: Any) -> None:
        self.pool.close(close.key)

    # -- Dask -------------------------------------------------------------------------

    def _send(self, cluster: str, step: str, specs: list[TaskSpec], parents: Any,
              resent: bool = False) -> None:
        """Submit tasks of ``step`` to ``cluster`` (:data:`DEFAULT`, or a step cluster up)."""
        calls = self.default.calls if cluster == DEFAULT else self.step_calls
        if cluster == DEFAULT:
            client, ctx_future = self.default.open()
        else:
            up = self.pool.ready[cluster]
            client, ctx_future = up.client, up.ctx_future
        keys = [str(TaskKey(step, spec.task_id, self.ctx.run_id)) for spec in specs]
        if cluster != DEFAULT or self.ctx.plan(step).may_grow:  # to send it elsewhere later
            placement = None if cluster == DEFAULT else self.pool.ready[cluster].placement
            for key, spec, plist in zip(keys, specs, parents):
                self.movable.add(key, spec, plist, placement)
        parents = [[self.flights.future_of(p) for p in plist] for plist in parents]
        sent = [spec._replace(own_folder=True) for spec in specs] \
            if step in self.own_folders else specs
        with self._span(step):
            if step in self.clusters.gangs:
                gang = Gang(step, specs, parents, cluster, keys)
                futures = send_gang(client, ctx_future, gang)
                self.gangs.sent(gang)
            elif len(specs) == 1:
                futures = [calls.submit(client, execute_task, ctx_future, sent[0],
                                        *parents[0], key=keys[0],
                                        priority=self._priority(cluster=cluster))]
            else:
                futures = calls.map(client, execute_task, [ctx_future] * len(specs), sent,
                                    *[list(p) for p in zip(*parents)], keys=keys,
                                    priorities=[self._priority(i, cluster)
                                                for i in range(len(specs))])
        self.clusters.sent(step, [spec.task_id for spec in specs], cluster)
        if not resent:
            depth = self.graph.foreach_depth(step)
            for spec in specs:
                self.observer.task_submitted(step=step, task_id=spec.task_id,
                                             foreach_depth=depth)
        self.flights.watch(futures, cluster, TaskDone)

    def _finished(self, fanout: Fanout, specs: list[TaskSpec]) -> None:
        """The splits ``specs`` of ``fanout`` finished in a batch, each step of its chain."""
        depth = self.graph.foreach_depth(fanout.step)
        for step, task_ids in fanout.tasks(specs):
            self.done += len(task_ids)
            self.observer.tasks_finished(step=step, task_ids=task_ids, foreach_depth=depth)

    def _send_batches(self, fanout: Fanout) -> None:
        """Keep enough batches of ``fanout`` sent that no worker waits for the next."""
        depth = self.graph.foreach_depth(fanout.step)
        for batch in fanout.next_batches():
            key = fanout.key(batch, self.ctx.run_id)
            client, ctx_future = self.default.open()
            with self._span(fanout.step):
                if fanout.each is not None:
                    future = self.default.calls.submit(
                        client, execute_after_reused, ctx_future, fanout.chain, batch,
                        [parents[0] for parents in fanout.parents(batch)], key=key,
                        priority=self._priority())
                elif fanout.chain:
                    future = self.default.calls.submit(
                        client, execute_chains, ctx_future, fanout.chain, batch,
                        fanout.parent, key=key, priority=self._priority())
                else:
                    future = self.default.calls.submit(
                        client, execute_batch, ctx_future, batch, fanout.parent, key=key,
                        priority=self._priority())
            self.flights.watch([future], DEFAULT,
                               functools.partial(BatchDone, fanout=fanout, specs=batch))
            for step, task_ids in fanout.tasks(batch):
                self.observer.tasks_submitted(step=step, foreach_depth=depth,
                                              task_ids=task_ids)

    def _retry_gang(self, gang: Gang, failed: TaskKey) -> bool:
        """A node failed with @retry attempts left: the whole gang runs again on its
        cluster's restarted workers."""
        cluster = self.pool.ready.get(gang.cluster)
        if cluster is None:
            return False
        replaced = self.gangs.next_round(gang)
        self.observer.task_finished(step=failed.step, task_id=failed.task_id, ok=False,
                                    foreach_depth=self.graph.foreach_depth(failed.step),
                                    retrying=True)
        with self._span(gang.step):
            futures = rerun(cluster, gang, [self.flights.by_key[k].future for k in replaced],
                            self.pool.context_bytes(cluster.backend),
                            f"context-{self.ctx.run_id}")
        self.gangs.sent(gang)
        self.flights.watch(futures, gang.cluster, TaskDone)
        return True

    def _span(self, step: str) -> Any:
        """The Dask span ``flow/run/step`` the step's tasks run in (dashboard.spans)."""
        return step_span(self.ctx.flow_name, self.ctx.run_id, step)

    def _priority(self, later: int = 0, cluster: str = DEFAULT) -> int:
        """The Dask priority of a task sent now (``later``: after that many more of this
        send): on a shared scheduler, lower the more this run has in flight."""
        if cluster != DEFAULT:
            return 0
        return self.default.priority(self.flights.in_flight + later)

    def _failure(self, future: Any, cluster: str) -> TaskFailed:
        client = self.default.client
        if cluster == DEFAULT and scheduler_lost(future, client):
            return scheduler_gone(self._pathspec(), client.scheduler.address)
        task = TaskKey.parse(future.key)
        account = None if cluster == DEFAULT else functools.partial(self.pool.diagnose,
                                                                    cluster)
        return failure_of(future, self._pathspec(task.step, task.task_id), account)

    def _where(self, spec: TaskSpec) -> str:
        """``Step 'train', split 3`` (or ``task 7``), for a one-line error."""
        if spec.frames:
            return f"Step '{spec.step}', split {spec.frames[-1].index}"
        return f"Step '{spec.step}' (task {spec.task_id})"

    def _pathspec(self, step: str | None = None, task_id: str = "") -> str:
        """A task's pathspec; without ``step``, the run's."""
        run = f"{self.ctx.flow_name}/{self.ctx.run_id}"
        return f"{run}/{step}/{task_id}" if step else run

    def _fail(self, failure: TaskFailed) -> None:
        self.flights.cancel_all()
        self.outcome = RunOutcome(False, failure)
