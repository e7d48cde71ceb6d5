"""What a run report shows, read from the client API into plain data.

:func:`collect_run` reads every task attempt of a run once (in a few
threads, so a run on an object store with thousands of tasks is read in
seconds) and summarises it per step; the page is then drawn from this data
alone, without touching the datastore again.
"""

from __future__ import annotations

import gc
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

from .. import causes
from ..clusters.request import TaskResources
from ..datastore.batches import collector_paused
from .layout import FOREACH, LINEAR, SPLIT, SWITCH, GraphNode, graph_nodes

OK, FAILED, RETRIED, UNFINISHED = "ok", "failed", "retried", "unfinished"
MAX_EMBEDDED_CARD = 2_000_000   # bytes; a bigger card page is linked, not put in the report
WIDE_STEP = 2000     # attempts of a step beyond which the page shows it in aggregate
SLOWEST = 20         # of such a wide step: its slowest attempts, shown one by one
MAX_NOTABLE = 100    # of a wide step: its failed/retried/unfinished attempts shown


@dataclass(slots=True)
class Attempt:
    """One attempt of one task, as the timeline draws it."""

    step: str
    task_id: str
    attempt: int
    pathspec: str
    started_at: float | None
    finished_at: float | None
    outcome: str                       # ok / failed / retried / unfinished
    error: dict[str, str] | None = None
    cause: str | None = None           # why it failed (daskflow.causes), None if it did not
    resources: str | None = None       # what it ran with: "1 core, 1200 MiB"
    index: int | None = None           # position in its foreach
    cluster: str | None = None
    worker: str | None = None
    performance_report: str | None = None   # where it is kept: a local path, or a URL
    next_step: str | None = None       # a switch: the step it chose
    num_splits: int | None = None      # a foreach: how many splits it made
    clone_of: str | None = None        # resumed or @cache: the earlier task it reuses
    cached: bool = False               # taken by @cache (not cloned on resume)
    # @card pages (id, type, file, html); a shared () until read: a list each is 56 bytes
    cards: Sequence[dict[str, Any]] = ()
    # its records are in a batch object and it has no folder: nothing else of it is stored
    batched: bool = False

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)


@dataclass
class StepSummary:
    name: str
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def tasks(self) -> int:
        return len({a.task_id for a in self.attempts})

    def count(self, outcome: str) -> int:
        return sum(1 for a in self.attempts if a.outcome == outcome)

    @property
    def cloned(self) -> int:
        """Tasks a resumed run reused from its origin run instead of running them."""
        return sum(1 for a in self.attempts if a.clone_of)

    @property
    def cached(self) -> int:
        """Of :attr:`cloned`, those ``@cache`` took (the rest a resume cloned)."""
        return sum(1 for a in self.attempts if a.cached)

    @property
    def ran(self) -> list[Attempt]:
        """The attempts that ran in this run (not reused from an origin run)."""
        return [a for a in self.attempts if not a.clone_of]

    @property
    def status(self) -> str:
        """failed / unfinished / ok / retried-but-ok, for the graph node's colour."""
        if self.count(FAILED):
            return FAILED
        if self.count(UNFINISHED):
            return UNFINISHED
        return OK

    @property
    def wide(self) -> bool:
        """Whether the page shows this step in aggregate (it ran over ``WIDE_STEP``)."""
        return len(self.ran) > WIDE_STEP

    def drawn(self) -> list[Attempt]:
        """The attempts the timeline draws one by one: every one that ran here, or of
        a wide step its failed, retried and unfinished ones (the first
        ``MAX_NOTABLE``) and the ``SLOWEST`` slowest of the rest."""
        ran = self.ran
        if len(ran) <= WIDE_STEP:
            return ran
        notable = [a for a in ran if a.outcome != OK][:MAX_NOTABLE]
        ok = [a for a in ran if a.outcome == OK and a.seconds is not None]
        slowest = sorted(ok, key=lambda a: a.seconds or 0.0, reverse=True)[:SLOWEST]
        return notable + slowest

    def listed(self) -> list[Attempt]:
        """The attempts the page knows one by one (its data, cards): all of a step,
        or of a wide step only those it draws."""
        return self.drawn() if self.wide else self.attempts

    def durations(self) -> list[float]:
        return [s for a in self.ran if (s := a.seconds) is not None]

    def duration_text(self) -> str:
        values = self.durations()
        if not values:
            return ""
        if len(values) == 1:
            return format_seconds(values[0])
        if self.wide:
            return ", ".join(f"{k} {format_seconds(v)}" for k, v in percentiles(values).items())
        return (f"median {format_seconds(statistics.median(values))}, "
                f"max {format_seconds(max(values))}")


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p90, p99 and max of ``values`` (at least one).

    >>> percentiles([float(i) for i in range(1, 101)])
    {'p50': 50.5, 'p90': 90.1, 'p99': 99.01, 'max': 100.0}
    """
    if len(values) == 1:
        return dict.fromkeys(("p50", "p90", "p99", "max"), values[0])
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": cuts[49], "p90": cuts[89], "p99": cuts[98], "max": max(values)}


@dataclass
class ClusterSpan:
    name: str
    description: str
    started_at: float | None
    stopped_at: float | None
    dashboard: str | None = None
    step: str | None = None
    workers: Any = None
    recorded: bool = True     # False: made up from the run record's single cluster
    held: float | None = None   # worker-seconds the cluster held its workers
    used: float | None = None   # worker-seconds its workers had a task
    cost: float | None = None   # estimated, from daskflow.cluster.prices
    currency: str | None = None


@dataclass
class RunData:
    flow: str
    run_id: str
    status: str
    started_at: float | None
    finished_at: float | None
    user: str | None
    parameters: dict[str, str]
    tags: list[str]
    system_tags: list[str]
    dashboard: str | None
    failure: dict[str, Any] | None
    clusters: list[ClusterSpan]
    steps: dict[str, StepSummary]
    graph: dict[str, GraphNode]
    graph_inferred: bool
    record: dict[str, Any]
    origin_reports: dict[str, str] = field(default_factory=dict)  # @cache: run -> report
    activity: dict[str, dict[str, Any]] = field(default_factory=dict)  # from Dask's spans

    @property
    def attempts(self) -> list[Attempt]:
        return [a for s in self.steps.values() for a in s.attempts]

    @property
    def pathspec(self) -> str:
        return f"{self.flow}/{self.run_id}"

    @property
    def end_time(self) -> float | None:
        """When the run ended, or the last thing seen if it has not."""
        if self.finished_at:
            return self.finished_at
        seen = [t for a in self.attempts if not a.clone_of
                for t in (a.started_at, a.finished_at) if t]
        return max(seen, default=self.started_at)

    def switch_choices(self) -> dict[str, set[str]]:
        """For each switch step, the steps it chose in this run."""
        chosen: dict[str, set[str]] = {}
        for step in self.steps.values():
            for a in step.attempts:
                if a.next_step:
                    chosen.setdefault(step.name, set()).add(a.next_step)
        return chosen

    def splits_of(self, step: str) -> int:
        """How many foreach splits ``step`` made in this run (over all its tasks)."""
        summary = self.steps.get(step)
        if summary is None:
            return 0
        latest: dict[str, Attempt] = {}
        for a in summary.attempts:
            latest[a.task_id] = a
        return sum(a.num_splits or 0 for a in latest.values())


def collect_run(run: Any, graph: Any = None, threads: int = 16) -> RunData:
    """Read ``run`` (a :class:`~daskflow.client.Run`) into :class:`RunData`.

    ``graph`` is the flow's :class:`~daskflow.graph.FlowGraph` when known; without
    it (or when the run has steps the graph lacks, because the flow changed) the
    graph is rebuilt from what the tasks recorded: their parents, the switch
    choices and foreach widths.
    """
    record = dict(run.record)
    store = getattr(run, "_store", None)
    if record.get("status") in ("success", "failed") and hasattr(store, "stored"):
        store.stored.settle(str(run.id))  # an ended run: each listing is taken once
    summaries: dict[str, StepSummary] = {}
    parents: dict[str, set[str]] = {}
    # Reading makes no cycle: the collector paused, its full passes do not walk every
    # attempt already read (a third of a million splits' report went to them). What
    # is garbage already goes first: a run's driver writes its report as the run ends,
    # and the run's own state would otherwise stay until the report is made.
    gc.collect()
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool, collector_paused():
        for step in _steps(run):
            for attempts, parent_steps in _read_step(run, step, pool):
                for attempt in attempts:
                    summaries.setdefault(attempt.step, StepSummary(attempt.step)).attempts.append(
                        attempt)
                    parents.setdefault(attempt.step, set()).update(parent_steps)
        for summary in summaries.values():
            summary.attempts.sort(key=lambda a: (a.started_at or 0.0, int(a.task_id)
                                                 if a.task_id.isdigit() else 0, a.attempt))
        # Cards only of the attempts the page lists: not 100,000 reads for a wide step;
        # and not of a batched split with no folder: a card would have made one
        listed = [a for summary in summaries.values() for a in summary.listed()
                  if not a.batched]
        for a, cards in zip(listed, pool.map(lambda a: _cards(store, str(run.id), a),
                                             listed)):
            a.cards = cards

    nodes: dict[str, GraphNode] | None = None
    if graph is not None:
        nodes = graph if isinstance(graph, dict) else graph_nodes(graph)
        if not set(summaries) <= set(nodes):
            nodes = None
    inferred = nodes is None
    if nodes is None:
        nodes = infer_graph(summaries, parents)
    ordered = {name: summaries.get(name, StepSummary(name)) for name in nodes}
    for name, summary in summaries.items():
        ordered.setdefault(name, summary)
    return RunData(
        flow=run.flow_name if hasattr(run, "flow_name") else run.pathspec.split("/")[0],
        run_id=str(run.id), status=record.get("status", "running"),
        started_at=record.get("started_at"), finished_at=record.get("finished_at"),
        user=record.get("user"), parameters=dict(record.get("parameters") or {}),
        tags=list(record.get("tags") or []), system_tags=list(record.get("system_tags") or []),
        dashboard=record.get("dashboard"), failure=record.get("failure"),
        clusters=_clusters(record), steps=ordered, graph=nodes, graph_inferred=inferred,
        record=record, origin_reports=_origin_reports(getattr(run, "_store", None), summaries),
        activity=step_activity(record.get("clusters") or []))


def _origin_reports(store: Any, summaries: dict[str, StepSummary]) -> dict[str, str]:
    """Where the report of each run that ``@cache`` took tasks from is (a few runs)."""
    runs = {a.clone_of.split("/")[1] for s in summaries.values() for a in s.attempts
            if a.cached and a.clone_of}
    found = {}
    for run_id in sorted(runs):
        try:
            location = store.runs.stored_report(run_id) if store is not None else None
        except Exception:  # noqa: BLE001  a link less, never a report less
            location = None
        if location:
            found[run_id] = location
    return found


def _steps(run: Any) -> Iterable[Any]:
    """The run's steps, as names where the run has a store (``Run.steps`` orders them by
    their first task, which reads every record of a wide step and keeps it)."""
    store = getattr(run, "_store", None)
    if store is None or not hasattr(store, "stored"):
        return run.steps()
    return store.list_steps(str(run.id))


CHUNK = 512   # tasks read at once by the pool: never a future per task of a wide step


def _read_step(run: Any, step: Any, pool: ThreadPoolExecutor) -> Iterator[
        tuple[list[Attempt], set[str]]]:
    """The attempts of each task of ``step``: those of batch objects as each object is
    read (none of it kept), those of tasks that ran alone in ``pool``, a chunk at a time."""
    from ..client import Task

    store = getattr(run, "_store", None)
    if isinstance(step, str):
        run_id, name = str(run.id), step
        own = store.stored.task_folders(run_id, name)
        for task_id, entries in store.stored.batched_tasks(run_id, name, set(own)):
            yield _attempts(store, run_id, name, task_id, {
                number: (entry.get("start"), entry.get("done"))
                for number, entry in sorted(entries.items())}, batched=True)
        alone: Iterable[Any] = (
            Task(f"{run.pathspec}/{name}/{task_id}", _root=run._root, _namespace_check=False,
                 _store=store)
            for task_id in sorted(own, key=int))
    else:
        alone = step._tasks((), None)  # read by the pool, not ahead by the step
    while chunk := list(islice(alone, CHUNK)):
        yield from pool.map(_read_task, chunk)


def _read_task(task: Any) -> tuple[list[Attempt], set[str]]:
    """Every attempt of ``task`` (a client Task), and the steps its attempts name as parents."""
    from ..client import Task

    records = {}
    numbers = task.attempts  # one look at its folder
    for number in numbers:
        view = Task(task.pathspec, attempt=number, _namespace_check=False, _store=task._store)
        done = view.record
        start = None if done and done.get("started_at") else {"started_at": view.started_at}
        if len(numbers) > 1 or (done or {}).get("status") != "ok":  # what it ran with
            ran = view.resources
            start = {**(start or {}), "resources": ran._asdict() if ran else None}
        records[number] = (start, done)
    return _attempts(task._store, task.run_id, task.step_name, task.id, records)


def _attempts(store: Any, run_id: str, step: str, task_id: str,
              records: dict[int, tuple[dict[str, Any] | None, dict[str, Any] | None]],
              batched: bool = False) -> tuple[list[Attempt], set[str]]:
    """A task's attempts from their start and done records (in attempt order), and the
    steps they name as parents; ``batched``: records of a batch object, no folder."""
    out: list[Attempt] = []
    parents: set[str] = set()
    last = max(records, default=None)
    pathspec = f"{store.flow_name}/{run_id}/{step}/{task_id}"
    for number, (start, done) in records.items():
        record = done or {}
        status = record.get("status")
        if status == "ok":
            outcome = OK
        elif status is None:
            outcome = UNFINISHED
        else:
            outcome = RETRIED if number != last else FAILED
        frames = record.get("frames") or []
        report = record.get("performance_report")
        out.append(Attempt(
            step=step, task_id=task_id, attempt=number, pathspec=pathspec,
            started_at=record.get("started_at") or (start or {}).get("started_at"),
            finished_at=record.get("finished_at"), outcome=outcome,
            # a failure @catch caught in the attempt: the attempt is ok, its error kept
            error=record.get("error") or record.get("caught"),
            index=frames[-1][3] if frames else None,
            cause=causes.of_record(done) if outcome in (FAILED, RETRIED) else None,
            resources=_resources(start) if outcome != OK or len(records) > 1 else None,
            cluster=record.get("cluster"), worker=record.get("worker") or record.get("host"),
            performance_report=store.runs.file_location(run_id, report) if report else None,
            next_step=record.get("next_step"), num_splits=record.get("num_splits"),
            clone_of=record.get("clone_of") or record.get("origin_pathspec"),
            cached=bool(record.get("origin_pathspec")) and not record.get("clone_of"),
            batched=batched))
        names = record.get("parents") or ()
        parents.update(_parent_steps(tuple(names)) if len(names) <= FEW_PARENTS else
                       {p.split("/", 1)[0] for p in names})  # a join of a wide foreach
    return out, parents


FEW_PARENTS = 16   # a task's parents whose steps are remembered (splits name the same)


@lru_cache(maxsize=256)
def _parent_steps(parents: tuple[str, ...]) -> frozenset[str]:
    """The steps of parent tasks named ``step/task_id`` (a foreach's splits all name
    the same few)."""
    return frozenset(p.split("/", 1)[0] for p in parents)


def _resources(start: dict[str, Any] | None) -> str | None:
    """What an attempt ran with (its start record says), in words; shown only for the
    attempts of a task that failed once."""
    resources = TaskResources.from_record((start or {}).get("resources"))
    return resources.describe() if resources is not None else None


def _cards(store: Any, run_id: str, a: Attempt) -> list[dict[str, Any]]:
    """The cards an attempt made (``@card``), each with its page, or [] (none, unreadable)."""
    from ..cards.storage import read_index
    from ..datastore.layout import card_index_file

    if store is None:
        return []
    ids = (run_id, a.step, a.task_id)
    try:
        if hasattr(store, "stored") and card_index_file(a.attempt) not in \
                store.stored.task_file_names(*ids):
            return []  # the task's folder, listed (once: its attempts were), has none
        cards = read_index(store, *ids, a.attempt)
        for card in cards:
            data = store.read_task_file(*ids, card["file"])
            card["html"] = data.decode("utf-8", "replace") \
                if len(data) <= MAX_EMBEDDED_CARD else None
            card["location"] = store.stored.task_file_location(*ids, card["file"])
    except Exception:  # noqa: BLE001  a broken card never keeps the report from being drawn
        return []
    return cards


def infer_graph(steps: dict[str, StepSummary],
                parents: dict[str, set[str]]) -> dict[str, GraphNode]:
    """A graph good enough to draw, from what the tasks recorded."""
    def first_task(name: str) -> int:  # task ids count up in the order tasks were made
        ids = [int(a.task_id) for a in steps[name].attempts if a.task_id.isdigit()] \
            if name in steps else []
        return min(ids, default=0)

    out: dict[str, list[str]] = {name: [] for name in steps}
    for child in sorted(parents, key=first_task):
        for source in sorted(parents[child]):
            out.setdefault(source, []).append(child)
            out.setdefault(child, [])
    nodes: dict[str, GraphNode] = {}
    for name, targets in out.items():
        attempts = steps[name].attempts if name in steps else []
        transition = LINEAR if targets else "end"
        if any(a.num_splits is not None for a in attempts):
            transition = FOREACH
        elif any(a.next_step for a in attempts):
            transition = SWITCH
        elif len(targets) > 1:
            transition = SPLIT
        nodes[name] = GraphNode(name, transition, targets,
                                is_join=len(parents.get(name, ())) > 1)
    for node in nodes.values():  # joins of a foreach have one parent step, many tasks
        if node.transition == FOREACH:
            for body in node.out:
                for child in nodes[body].out:
                    if len(steps.get(child, StepSummary(child)).attempts) < \
                            len(steps.get(body, StepSummary(body)).attempts):
                        nodes[child].is_join = True
    return {name: nodes[name] for name in sorted(nodes, key=first_task)}


def _clusters(record: dict[str, Any]) -> list[ClusterSpan]:
    spans = []
    for c in record.get("clusters") or []:
        if not isinstance(c, dict):
            continue
        spans.append(ClusterSpan(
            name=str(c.get("name", "cluster")), description=str(c.get("description", "")),
            started_at=c.get("started_at"), stopped_at=c.get("stopped_at"),
            dashboard=c.get("dashboard"), step=c.get("step"),
            workers=c.get("workers"), held=c.get("worker_seconds_held"),
            used=c.get("worker_seconds_used"), cost=c.get("cost"),
            currency=c.get("currency")))
    if not spans and (record.get("cluster") or record.get("dashboard")):
        spans.append(ClusterSpan(
            name="default", description=str(record.get("cluster") or ""),
            started_at=record.get("started_at"), stopped_at=record.get("finished_at"),
            dashboard=record.get("dashboard"), recorded=False))
    return spans


#: a step's time by activity, as Dask's span of the step measured it (compute includes CPU)
ACTIVITIES = ("compute", "cpu", "transfer", "spill", "idle")


def step_activity(clusters: list[Any]) -> dict[str, dict[str, Any]]:
    """Each step's seconds by activity over the clusters of a run's record (the figures
    each cluster's meter read from the Dask span ``flow/run/step`` before it closed; a
    step on several clusters adds them up), with the span's name.

    >>> step_activity([{"steps": {"a": {"compute": 1.0, "span": "F/1/a"}}},
    ...                {"steps": {"a": {"compute": 2.0, "idle": 0.5}}}])["a"]["compute"]
    3.0
    """
    merged: dict[str, dict[str, Any]] = {}
    for cluster in clusters:
        steps = cluster.get("steps") if isinstance(cluster, dict) else None
        for step, figures in (steps or {}).items():
            into = merged.setdefault(step, {**dict.fromkeys(ACTIVITIES, 0.0), "span": None})
            for name in ACTIVITIES:
                into[name] += float(figures.get(name) or 0.0)
            into["span"] = into["span"] or figures.get("span")
    return merged


def format_seconds(seconds: float | None) -> str:
    """``420ms``, ``4.20s``, ``12.3s``, ``4m 05s``, ``2h 03m``."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m {int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h {int(seconds % 3600 // 60):02d}m"


def format_time(ts: float | None) -> str:
    if not ts:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
