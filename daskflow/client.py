"""Read stored runs back: ``Flow``, ``Run``, ``Step``, ``Task`` and ``namespace`` (Metaflow's API).

Nothing here writes; artifacts load only when read.

>>> from daskflow import Flow, namespace                     # doctest: +SKIP
>>> run = Flow("HelloFlow").latest_successful_run
>>> run.data.message, run["start"].task.stdout
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple

from . import causes
from .current import username
from .client_read_ahead import StepReads, step_reads
from .datastore import ArtifactRef, ArtifactStore, resolve_root
from .datastore.names import check_flow_name, check_run_id, check_step_name, check_task_id
from .exceptions import DataNotFoundError, TagError, did_you_mean

_UNSET = object()
_namespace: Any = _UNSET


def namespace(ns: str | None) -> str | None:
    """Look only at runs tagged ``ns`` (e.g. ``"user:alice"``); ``None`` sees every run."""
    global _namespace
    _namespace = ns
    return ns


def get_namespace() -> str | None:
    return default_namespace() if _namespace is _UNSET else _namespace


def default_namespace() -> str:
    """The namespace a client starts in: ``user:<you>``, as in Metaflow."""
    global _namespace
    _namespace = f"user:{username()}"
    return _namespace


_CHECKS = (check_flow_name, check_run_id, check_step_name, check_task_id)


class Metadata(NamedTuple):
    """One fact a task recorded about an attempt (Metaflow's ``Metadata``): ``name``,
    ``value`` (text), ``created_at`` (milliseconds since the epoch), ``type``, ``task``."""

    name: str
    value: Any
    created_at: int
    type: str
    task: Any


def _in_namespace(pathspec: str, kind: str, tags: Iterable[str]) -> None:
    """Refuse an object whose run is not in the current namespace (Metaflow's check)."""
    ns = get_namespace()
    if ns and ns not in set(tags):
        raise DataNotFoundError(
            f"{kind} {pathspec} is not in namespace '{ns}'. Call namespace(None) to see "
            f"every run, or pass _namespace_check=False.")


def _split(pathspec: str, parts: int, kind: str) -> list[str]:
    """``Flow/run_id[/step[/task_id]]`` as its parts, each checked to be what it names."""
    pieces = pathspec.strip("/").split("/")
    if len(pieces) != parts or not all(pieces):
        raise DataNotFoundError(
            f"'{pathspec}' is not a {kind} pathspec; expected "
            f"{'/'.join(['Flow', 'run_id', 'step', 'task_id'][:parts])}.")
    for check, piece in zip(_CHECKS, pieces):
        check(piece)
    return pieces


class Flow:
    """All stored runs of one flow, newest first."""

    def __init__(self, name: str, _namespace_check: bool = True,
                 _root: str | None = None) -> None:
        self.name = self.id = name
        self.pathspec = name
        self._namespace_check = _namespace_check  # False: its runs in every namespace
        self._root = resolve_root(_root)
        self._store = ArtifactStore(self._root, name)
        if not self._store.flow_exists():
            raise DataNotFoundError(
                f"Flow '{name}' has no runs in {self._store.flow_root}. Run it first, or set "
                f"the datastore (DASK_DASKFLOW__DATASTORE__ROOT) to where its runs are.")

    def runs(self, *tags: str) -> Iterator[Run]:
        """Runs in the current namespace (and with all ``tags``), newest first."""
        ns = get_namespace() if self._namespace_check else None
        for run_id in sorted(self._store.list_runs(), key=int, reverse=True):
            run = Run(f"{self.name}/{run_id}", _namespace_check=False, _root=self._root)
            wanted = set(tags) | ({ns} if ns else set())
            if wanted <= run.tags:
                yield run

    def __iter__(self) -> Iterator[Run]:
        return self.runs()

    def __getitem__(self, run_id: str) -> Run:
        return Run(f"{self.name}/{run_id}", _namespace_check=self._namespace_check,
                   _root=self._root)

    @property
    def parent(self) -> None:
        """A flow has no parent (Metaflow's object model)."""
        return None

    @property
    def path_components(self) -> list[str]:
        return [self.name]

    @property
    def latest_run(self) -> Run | None:
        return next(self.runs(), None)

    @property
    def latest_successful_run(self) -> Run | None:
        return next((r for r in self.runs() if r.successful), None)

    def _repr_html_(self) -> str:
        from .client_html import flow_html
        return flow_html(self)

    def __repr__(self) -> str:
        return f"Flow('{self.name}')"


@dataclass(frozen=True)
class ClusterUse:
    """One cluster of a run, as its record keeps it (:attr:`Run.clusters`).

    ``held_seconds``: worker-seconds the cluster held its workers; ``used_seconds``:
    those its workers had a task; ``cost``: ``held_seconds`` at the configured price of
    a worker-hour (None: no price for it), in ``currency``.
    """

    name: str
    backend: str | None
    step: str | None
    description: str
    started_at: datetime | None
    stopped_at: datetime | None
    workers: int | None
    held_seconds: float | None
    used_seconds: float | None
    price_per_worker_hour: float | None
    cost: float | None
    currency: str | None

    @property
    def seconds(self) -> float | None:
        """How long the cluster lived."""
        if self.started_at is None or self.stopped_at is None:
            return None
        return (self.stopped_at - self.started_at).total_seconds()

    @classmethod
    def from_record(cls, c: dict[str, Any]) -> ClusterUse:
        return cls(name=str(c.get("name")), backend=c.get("backend"), step=c.get("step"),
                   description=str(c.get("description") or ""),
                   started_at=_when(c.get("started_at")), stopped_at=_when(c.get("stopped_at")),
                   workers=c.get("workers"), held_seconds=c.get("worker_seconds_held"),
                   used_seconds=c.get("worker_seconds_used"),
                   price_per_worker_hour=c.get("price_per_worker_hour"), cost=c.get("cost"),
                   currency=c.get("currency"))


class Run:
    """One run of a flow: its steps, tags, status and the ``end`` step's artifacts."""

    def __init__(self, pathspec: str, _namespace_check: bool = True,
                 _root: str | None = None) -> None:
        self.flow_name, self.id = _split(pathspec, 2, "run")
        self.pathspec = f"{self.flow_name}/{self.id}"
        self._root = resolve_root(_root)
        self._store = ArtifactStore(self._root, self.flow_name)
        self._record = self._store.read_run(self.id)
        if _namespace_check:
            _in_namespace(self.pathspec, "Run", self.tags)

    @property
    def record(self) -> dict[str, Any]:
        return self._record

    @property
    def parent(self) -> Flow:
        """The run's :class:`Flow`."""
        return Flow(self.flow_name, _namespace_check=False, _root=self._root)

    @property
    def path_components(self) -> list[str]:
        return [self.flow_name, self.id]

    @property
    def user_tags(self) -> frozenset[str]:
        return frozenset(self._record.get("tags", []))

    @property
    def system_tags(self) -> frozenset[str]:
        return frozenset(self._record.get("system_tags", []))

    @property
    def tags(self) -> frozenset[str]:
        return self.user_tags | self.system_tags

    @property
    def status(self) -> str:
        """``running``, ``success`` or ``failed`` as the driver last recorded it; a
        "running" run whose driver stopped beating (killed) is ``failed``."""
        from .liveness import driver_lost
        if driver_lost(self._record):
            return "failed"
        return self._record.get("status", "running")

    @property
    def driver_lost(self) -> bool:
        """True when the run's driver died without recording an end (``kill -9``)."""
        from .liveness import driver_lost
        return driver_lost(self._record)

    @property
    def code(self) -> Any:
        """The code package the run shipped to its clusters (Metaflow's ``Run.code``):
        ``.path``, ``.info``, ``.flowspec``, ``.tarball``, ``.extract()``; None for a run
        that ran only on this machine."""
        from .remote import run_code
        return run_code(self._store, self._record)

    @property
    def clusters(self) -> list[ClusterUse]:
        """The clusters the run started, in order: when, how many workers, the
        worker-seconds they held and used, and the estimated cost (``daskflow.cluster.prices``).

        >>> [(c.name, c.held_seconds, c.cost) for c in run.clusters]  # doctest: +SKIP
        [('default', 8.02, 0.0), ('step-1', 12.5, 0.0035)]
        """
        return [ClusterUse.from_record(c) for c in self._record.get("clusters") or []
                if isinstance(c, dict)]

    @property
    def origin_run_id(self) -> str | None:
        """The run this one resumed, if it is a resume."""
        return self._record.get("origin_run_id")

    @property
    def origin_pathspec(self) -> str | None:
        """``Flow/run_id`` of the run this one resumed, or None if it is not a resume."""
        origin = self.origin_run_id
        return f"{self.flow_name}/{origin}" if origin else None

    @property
    def parameters(self) -> dict[str, Any]:
        """The run's parameters as the flow saw them, with their types (``{'alpha': 2.0}``)."""
        refs = self._record.get("parameter_refs")
        if refs is None:  # recorded before parameter values were kept: their text
            return dict(self._record.get("parameters", {}))
        return {name: self._store.get_artifact(ArtifactRef(*ref), name)
                for name, ref in refs.items()}

    @property
    def created_at(self) -> datetime | None:
        """When the run started (a local time, as Metaflow gives it)."""
        return _when(self._record.get("started_at"))

    @property
    def finished_at(self) -> datetime | None:
        """When the run ended; None while it runs."""
        return _when(self._record.get("finished_at"))

    # -- tags: Metaflow's mutable user tags ------------------------------------------------

    def add_tag(self, tag: str) -> None:
        """Add a user tag to the run (Metaflow's ``Run.add_tag``)."""
        self.replace_tags([], [tag])

    def add_tags(self, tags: Iterable[str]) -> None:
        self.replace_tags([], tags)

    def remove_tag(self, tag: str) -> None:
        """Remove a user tag; system tags (``user:...``, ``project:...``) stay."""
        self.replace_tags([tag], [])

    def remove_tags(self, tags: Iterable[str]) -> None:
        self.replace_tags(tags, [])

    def replace_tag(self, tag_to_remove: str, tag_to_add: str) -> None:
        """Remove one user tag and add another, in one write."""
        self.replace_tags([tag_to_remove], [tag_to_add])

    def replace_tags(self, tags_to_remove: Iterable[str], tags_to_add: Iterable[str]) -> None:
        """Remove then add user tags, in one write of the run's record."""
        remove, add = [_check_tag(t) for t in tags_to_remove], [_check_tag(t) for t in tags_to_add]
        record = self._store.read_run(self.id)  # the latest, not what this object read
        if record.get("status", "running") == "running" and not self.driver_lost:
            raise TagError(
                f"Run {self.pathspec} is still running; change its tags after it ends "
                f"(its driver rewrites the run's record until then).")
        system = set(record.get("system_tags", []))
        for tag in remove:
            if tag in system:
                raise TagError(f"'{tag}' is a system tag of run {self.pathspec}; only user "
                               f"tags can be removed.")
        tags = [t for t in record.get("tags", []) if t not in remove]
        tags += [t for t in add if t not in tags]
        record["tags"] = tags
        self._store.write_run(self.id, record)
        self._record = record

    @property
    def end_task(self) -> Task | None:
        if "end" not in self._store.list_steps(self.id):
            return None
        return self["end"].task

    @property
    def finished(self) -> bool:
        """True when the ``end`` step finished (Metaflow's meaning)."""
        task = self.end_task
        return bool(task and task.finished)

    @property
    def successful(self) -> bool:
        task = self.end_task
        return bool(task and task.successful)

    @property
    def data(self) -> TaskData | None:
        """The artifacts of the ``end`` step, or None if it has not run."""
        task = self.end_task
        return task.data if task else None

    def steps(self) -> Iterator[Step]:
        names = self._store.list_steps(self.id)
        starts = {n: Step(f"{self.pathspec}/{n}", _namespace_check=False, _root=self._root)
                  for n in names}
        yield from sorted(starts.values(), key=lambda s: s._first_started(), reverse=True)

    def __iter__(self) -> Iterator[Step]:
        return self.steps()

    def __getitem__(self, step: str) -> Step:
        names = self._store.list_steps(self.id)
        if step not in names:
            raise DataNotFoundError(
                f"Run {self.pathspec} has no step '{step}'.{did_you_mean(step, names)}")
        return Step(f"{self.pathspec}/{step}", _namespace_check=False, _root=self._root)

    def __contains__(self, step: str) -> bool:
        return step in self._store.list_steps(self.id)

    def __reduce__(self) -> tuple[Any, ...]:
        # By its pathspec and datastore: a run computed on a worker (MyFlow.delayed)
        # reaches the caller small, and reads its record afresh there.
        return (Run, (self.pathspec, False, self._root))

    def _repr_html_(self) -> str:
        from .client_html import run_html
        return run_html(self)

    def __repr__(self) -> str:
        return f"Run('{self.pathspec}')"


class Step:
    """The tasks one step ran in a run (many for a foreach or a loop), newest first."""

    def __init__(self, pathspec: str, _namespace_check: bool = True,
                 _root: str | None = None) -> None:
        self.flow_name, self.run_id, self.id = _split(pathspec, 3, "step")
        self.pathspec = pathspec.strip("/")
        self._root = resolve_root(_root)
        self._store = ArtifactStore(self._root, self.flow_name)
        if _namespace_check:
            _in_namespace(self.pathspec, "Step", _run_tags(self._store, self.run_id))
        # its tasks' reads, the next ones' read ahead on an object store
        self._reads = step_reads(self._store, self.run_id, self.id, self._task_ids)

    def _task_ids(self) -> list[str]:
        """Oldest first: task ids count up as the run makes its tasks."""
        return sorted(self._store.list_tasks(self.run_id, self.id), key=int)

    def tasks(self, *tags: str) -> Iterator[Task]:
        """The step's tasks, the newest first as in Metaflow (the last pass of a loop
        before the first); with ``tags``, only if the run has them all."""
        yield from self._tasks(tags, self._reads)

    def _tasks(self, tags: tuple[str, ...], reads: StepReads | None) -> Iterator[Task]:
        """:meth:`tasks`, with ``reads`` shared (None: each task reads for itself, as a
        reader with threads of its own does: the run report)."""
        if tags and not set(tags) <= _run_tags(self._store, self.run_id):
            return
        for task_id in reversed(self._task_ids()):
            task = self[task_id]
            task._reads = reads
            yield task

    def __iter__(self) -> Iterator[Task]:
        return self.tasks()

    def __len__(self) -> int:
        return len(self._task_ids())

    @property
    def task(self) -> Task:
        """The step's newest task: the only one outside a foreach, a loop's last pass."""
        ids = self._task_ids()
        if not ids:
            raise DataNotFoundError(f"Step {self.pathspec} has no tasks.")
        return self[ids[-1]]

    def __getitem__(self, task_id: str) -> Task:
        task = Task(f"{self.pathspec}/{task_id}", _namespace_check=False, _root=self._root,
                    _store=self._store)
        task._reads = self._reads
        return task

    @property
    def parent(self) -> Run:
        """The step's :class:`Run`."""
        return Run(f"{self.flow_name}/{self.run_id}", _namespace_check=False,
                   _root=self._root)

    @property
    def path_components(self) -> list[str]:
        return [self.flow_name, self.run_id, self.id]

    @property
    def tags(self) -> frozenset[str]:
        """The run's tags (user and system), as every Metaflow object has them."""
        return frozenset(_run_tags(self._store, self.run_id))

    @property
    def origin_pathspec(self) -> str | None:
        """``Flow/origin_run/step`` in the run this one resumed; None if it is not a resume."""
        origin = self._store.read_run(self.run_id).get("origin_run_id")
        return f"{self.flow_name}/{origin}/{self.id}" if origin else None

    def control_tasks(self, *tags: str) -> Iterator[Task]:
        """The control task of a ``num_parallel`` gang (its node 0, whose id the others
        have as ``current.parallel.control_task_id``); none for another step."""
        for task in self.tasks(*tags):
            if task._start().get("node_index") == 0:
                yield task

    @property
    def control_task(self) -> Task | None:
        """The gang's control task, or None (Metaflow's ``Step.control_task``)."""
        return next(self.control_tasks(), None)

    def frame(self, name: str) -> Any:
        """The DataFrame artifact ``name`` of every task of this step as one lazy dask
        DataFrame (as ``inputs.frame`` gives it in a join), in task order; rows are read
        only when it is computed.

        >>> run["train"].frame("result").groupby("k").x.mean().compute()  # doctest: +SKIP
        """
        from .datastore.concat import concat_frames

        sources = []
        for task in map(self.__getitem__, self._task_ids()):  # in task order
            label = f"task {task.pathspec}"
            if not task.successful:
                raise DataNotFoundError(
                    f"{self.pathspec}.frame('{name}'): {label} did not finish successfully, "
                    f"so it has no stored '{name}'. Resume the run, or read the tasks that "
                    f"did (task.data.{name}).")
            refs = task._refs()
            if name not in refs:
                raise DataNotFoundError(
                    f"{self.pathspec}.frame('{name}'): {label} has no artifact '{name}'."
                    f"{did_you_mean(name, refs)}")
            sources.append((label, refs[name]))
        if not sources:
            raise DataNotFoundError(f"Step {self.pathspec} has no tasks.")
        return concat_frames(self._store.artifacts, sources, name, where=f"{self.pathspec}.frame")

    def _first_started(self) -> float:
        ids = self._task_ids()
        return self[ids[0]].started_at or 0.0 if ids else 0.0

    def _repr_html_(self) -> str:
        from .client_html import step_html
        return step_html(self)

    def __repr__(self) -> str:
        return f"Step('{self.pathspec}')"


class Task:
    """One task: its artifacts (``task.data.x``), output, status and attempts."""

    def __init__(self, pathspec: str, attempt: int | None = None,
                 _namespace_check: bool = True, _root: str | None = None,
                 _store: ArtifactStore | None = None) -> None:
        self.flow_name, self.run_id, self.step_name, self.id = _split(pathspec, 4, "task")
        self.pathspec = pathspec.strip("/")
        self._root = _store.root_url if _store is not None else resolve_root(_root)
        self._store = _store or ArtifactStore(self._root, self.flow_name)
        self._attempt = attempt
        self._done: dict[str, Any] | None = None
        self._loaded = False
        self._reads: StepReads | None = None   # its step's, when made by one
        self._read_latest: tuple[list[int], dict[str, Any] | None] | None = None
        if _namespace_check:
            _in_namespace(self.pathspec, "Task", _run_tags(self._store, self.run_id))

    def _ids(self) -> tuple[str, str, str]:
        return self.run_id, self.step_name, self.id

    def _start(self, attempt: int | None = None) -> dict[str, Any]:
        """What the attempt recorded on starting (its claim); {} if nothing."""
        try:
            return self._store.read_start(*self._ids(), self.current_attempt
                                          if attempt is None else attempt)
        except (FileNotFoundError, DataNotFoundError):
            return {}

    @property
    def parent(self) -> Step:
        """The task's :class:`Step`."""
        return Step(f"{self.flow_name}/{self.run_id}/{self.step_name}",
                    _namespace_check=False, _root=self._root)

    @property
    def path_components(self) -> list[str]:
        return [self.flow_name, self.run_id, self.step_name, self.id]

    @property
    def tags(self) -> frozenset[str]:
        """The run's tags (user and system), as every Metaflow object has them."""
        return frozenset(_run_tags(self._store, self.run_id))

    @property
    def attempts(self) -> list[int]:
        if self._shared_reads is not None:
            if self._read_latest is None:
                self._read_latest = self._shared_reads.latest(self.id)
            return self._read_latest[0]
        return self._store.list_attempts(*self._ids())

    @property
    def _shared_reads(self) -> StepReads | None:
        """Its step's reads (``client_read_ahead.py``), for the latest attempt only."""
        return self._reads if self._attempt is None else None

    @property
    def current_attempt(self) -> int:
        """The attempt this view shows: the one asked for, else the latest."""
        if self._attempt is not None:
            return self._attempt
        attempts = self.attempts
        if not attempts:
            raise DataNotFoundError(f"Task {self.pathspec} does not exist.")
        return attempts[-1]

    @property
    def record(self) -> dict[str, Any] | None:
        """The attempt's final record (None while it runs or if it died)."""
        if not self._loaded:
            if self._shared_reads is not None:
                if self._read_latest is None:
                    self._read_latest = self._shared_reads.latest(self.id)
                attempts, self._done = self._read_latest
                if not attempts:
                    raise DataNotFoundError(f"Task {self.pathspec} does not exist.")
            else:
                self._done = self._store.read_done(*self._ids(), self.current_attempt)
            self._loaded = True
        return self._done

    def _load(self, name: str, ref: ArtifactRef) -> Any:
        """Artifact ``name`` of this attempt (read ahead by its step where it was)."""
        if self._shared_reads is not None:
            return self._shared_reads.artifact(self.id, name, ref)
        return self._store.get_artifact(ref, name)

    @property
    def finished(self) -> bool:
        return self.record is not None

    @property
    def successful(self) -> bool:
        """True when the attempt finished without failing; False for one whose failure
        ``@catch`` caught (it finished, and the flow went on), as in Metaflow."""
        return bool(self.record and self.record.get("status") == "ok") and not self._caught

    @property
    def _caught(self) -> bool:
        """Whether ``@catch`` caught this attempt's failure."""
        return bool(self.record and self.record.get("caught"))

    @property
    def started_at(self) -> float | None:
        return self._start().get("started_at")

    @property
    def finished_at(self) -> float | None:
        return self.record.get("finished_at") if self.record else None

    @property
    def created_at(self) -> datetime | None:
        """When this attempt started (a local time, as Metaflow's ``Task.created_at``)."""
        return _when(self.started_at)

    @property
    def exception(self) -> Any:
        """How this attempt failed, as Metaflow gives it, else None.

        A :class:`~daskflow.steps.CaughtException`: ``.type`` (qualified,
        ``builtins.ValueError``), ``.exception`` (the message), ``.stacktrace``.
        """
        error = (self.record or {}).get("error")
        if not error:
            return None
        from .steps import CaughtException
        return CaughtException(error.get("qualified_type", error["type"]), error["message"],
                               error.get("traceback", ""))

    @property
    def failure_cause(self) -> str | None:
        """Why this attempt failed, one of :data:`daskflow.causes.CAUSES`: ``exception``
        (the step raised), ``out-of-memory``, ``timeout`` (``@timeout``), ``worker-lost``,
        ``preempted``, ``walltime`` (SLURM's time limit) or ``cluster`` (its cluster never
        started); None for a successful attempt or one still running.

        >>> Task("MyFlow/12/train/3", attempt=0).failure_cause    # doctest: +SKIP
        'out-of-memory'
        """
        if self.record is not None:
            return causes.of_record(self.record)
        if self.current_attempt != self.attempts[-1]:
            return causes.WORKER_LOST  # a later attempt followed one that left no record
        return None

    @property
    def resources(self) -> Any:
        """What this attempt ran with: ``cpu`` (worker threads), ``memory`` (its worker's
        memory limit in bytes) and ``gpu``; None when not recorded.

        >>> Task("MyFlow/12/train/3", attempt=1).resources        # doctest: +SKIP
        TaskResources(cpu=1, memory=1258291200, gpu=0)
        """
        from .clusters.request import TaskResources
        try:
            start = self._store.read_start(*self._ids(), self.current_attempt)
        except (FileNotFoundError, DataNotFoundError):
            return None
        return TaskResources.from_record(start.get("resources"))

    @property
    def index(self) -> int | None:
        frames = (self.record or {}).get("frames") or []
        return frames[-1][3] if frames else None

    @property
    def performance_report(self) -> str | None:
        """Path (a URL on an object store) of the Dask performance report kept with a
        step that ran on its own cluster (``@resources``), or None."""
        relative = (self.record or {}).get("performance_report")
        if not relative:
            return None
        return self._store.runs.file_location(self.run_id, relative)

    @property
    def origin_pathspec(self) -> str | None:
        """The task of an earlier run this one was cloned from on resume, or taken from
        by ``@cache`` (its artifacts are that task's)."""
        record = self.record or {}
        return record.get("clone_of") or record.get("origin_pathspec")

    @property
    def cached(self) -> bool:
        """Whether ``@cache`` took this task from an earlier run instead of running it
        (:attr:`origin_pathspec` names that task; ``stdout``/``stderr`` are its)."""
        record = self.record or {}
        return bool(record.get("origin_pathspec")) and not record.get("clone_of")

    def _output(self, stream: str) -> str:
        """What the attempt printed; a task taken from the cache: what its origin printed."""
        if self.cached:
            try:
                return Task(self.origin_pathspec or "", _store=self._store)._output(stream)
            except DataNotFoundError:  # its origin run was deleted since
                return ""
        return self._store.read_log(*self._ids(), self.current_attempt, stream)

    @property
    def parent_task_pathspecs(self) -> Iterator[str]:
        """Pathspecs of the tasks whose artifacts this one started from (a join's inputs)."""
        record = _latest_record(self._store, *self._ids())
        parents = record.get("parents") or []
        if record.get("clone_of"):
            parents = _lineage(self._store, self.run_id)[f"{self.step_name}/{self.id}"]
        for parent in parents:
            yield f"{self.flow_name}/{self.run_id}/{parent}"

    @property
    def parent_tasks(self) -> Iterator[Task]:
        """The tasks this one came after: none for ``start``, each input for a join.

        >>> [t.pathspec for t in run["join"].task.parent_tasks]   # doctest: +SKIP
        ['MyFlow/12/a/2', 'MyFlow/12/b/3']
        """
        for pathspec in self.parent_task_pathspecs:
            yield Task(pathspec, _namespace_check=False, _store=self._store)

    @property
    def child_task_pathspecs(self) -> Iterator[str]:
        """Pathspecs of the tasks that started from this one (each split of a foreach)."""
        me = f"{self.step_name}/{self.id}"
        for name, parents in _lineage(self._store, self.run_id).items():
            if me in parents:
                yield f"{self.flow_name}/{self.run_id}/{name}"

    @property
    def child_tasks(self) -> Iterator[Task]:
        """The tasks that started from this one's artifacts; none for ``end``."""
        for pathspec in self.child_task_pathspecs:
            yield Task(pathspec, _namespace_check=False, _store=self._store)

    @property
    def metadata(self) -> list[Metadata]:
        """What the task recorded about each of its attempts (only the attempt asked for,
        if one was), as Metaflow's ``Task.metadata`` lists it: ``attempt``,
        ``origin-run-id``, ``ds-type``, ``ds-root``, ``user``, ``runtime``,
        ``python_version``, ``daskflow_version`` (as the attempt began), ``attempt_ok``
        and ``attempt-done`` (as it ended), ``origin-task-id`` for a task cloned on
        resume, ``internal_task_type`` of a gang's control task; plus where it ran
        (``host``, ``pid``, ``worker``).  Values are text.

        >>> {m.name: m.value for m in task.metadata}["attempt"]     # doctest: +SKIP
        '0'
        """
        run = self._store.read_run(self.run_id)
        shared = {"origin-run-id": str(run.get("origin_run_id")),
                  "ds-type": self._store.files.kind, "ds-root": self._store.root_url,
                  "user": run.get("user"), "runtime": "daskflow"}
        for tag in run.get("system_tags", []):
            name, _, value = tag.partition(":")
            if name in ("python_version", "daskflow_version"):
                shared[name] = value
        attempts = self.attempts if self._attempt is None else [self._attempt]
        found: list[Metadata] = []
        for attempt in attempts:
            found += self._attempt_metadata(attempt, shared)
        return found

    def _attempt_metadata(self, attempt: int, shared: dict[str, Any]) -> list[Metadata]:
        start = self._start(attempt)
        done = self._store.read_done(*self._ids(), attempt)
        began = {**shared, "attempt": attempt, "host": start.get("host"),
                 "pid": start.get("pid"), "worker": start.get("worker")}
        origin = (done or start).get("clone_of")
        if origin:
            began["origin-task-id"] = origin.rsplit("/", 1)[1]
        if start.get("node_index") == 0:
            began["internal_task_type"] = "control_task"
        found = [self._metadatum(name, value, start.get("started_at"))
                 for name, value in began.items() if value is not None]
        if done is not None:
            ok = done.get("status") == "ok"
            found += [self._metadatum("attempt_ok", ok, done.get("finished_at"),
                                      "internal_attempt_status"),
                      self._metadatum("attempt-done", attempt, done.get("finished_at"))]
        return found

    def _metadatum(self, name: str, value: Any, when: float | None,
                   kind: str | None = None) -> Metadata:
        return Metadata(name, str(value), int((when or 0) * 1000), kind or name, self)

    @property
    def metadata_dict(self) -> dict[str, str]:
        """Each name of :attr:`metadata` with its latest value (the latest attempt's, or
        the attempt asked for), as Metaflow's ``metadata_dict``."""
        return {m.name: m.value for m in sorted(self.metadata, key=lambda m: m.created_at)}

    def loglines(self, stream: str, as_unicode: bool = True,
                 meta_dict: dict[str, Any] | None = None,
                 ) -> Iterator[tuple[datetime | None, Any]]:
        """``(utc_timestamp, line)`` for each line the attempt wrote to ``stream``.

        daskflow keeps a task's output as plain text, so every line carries the time
        the attempt's log was written (its end), not the moment it was printed.
        ``meta_dict`` is accepted, and not needed, as in Metaflow's signature.

        >>> for when, line in task.loglines("stdout"):          # doctest: +SKIP
        ...     print(when.isoformat(), line)
        """
        if stream not in ("stdout", "stderr"):
            raise DataNotFoundError(
                f"Task {self.pathspec} has no log stream {stream!r}; use 'stdout' or 'stderr'.")
        text = self._output(stream)
        stamp = self.finished_at or self.started_at
        when = datetime.fromtimestamp(stamp, timezone.utc).replace(tzinfo=None) \
            if stamp else None
        for line in text.splitlines():
            yield when, line if as_unicode else line.encode("utf-8")

    @property
    def stdout(self) -> str:
        return self._output("stdout")

    @property
    def stderr(self) -> str:
        return self._output("stderr")

    def _refs(self) -> dict[str, ArtifactRef]:
        record = self.record
        if record is None or "artifacts" not in record:
            return {}
        return {name: ArtifactRef(*ref) for name, ref in record["artifacts"].items()}

    @property
    def artifacts(self) -> list[DataArtifact]:
        return [DataArtifact(f"{self.pathspec}/{name}", _task=self, _ref=ref)
                for name, ref in sorted(self._refs().items())]

    def __getitem__(self, name: str) -> DataArtifact:
        refs = self._refs()
        if name not in refs:
            raise DataNotFoundError(
                f"Task {self.pathspec} has no artifact '{name}'.{did_you_mean(name, refs)}")
        return DataArtifact(f"{self.pathspec}/{name}", _task=self, _ref=refs[name])

    def __contains__(self, name: str) -> bool:
        return name in self._refs()

    @property
    def data(self) -> TaskData:
        """Artifacts as attributes: ``task.data.x`` loads ``x`` when read."""
        return TaskData(self)

    def _repr_html_(self) -> str:
        from .client_html import task_html
        return task_html(self)

    def __repr__(self) -> str:
        return f"Task('{self.pathspec}')"


def _run_tags(store: ArtifactStore, run_id: str) -> set[str]:
    record = store.read_run(run_id)
    return set(record.get("tags", [])) | set(record.get("system_tags", []))


def _when(stamp: float | None) -> datetime | None:
    return datetime.fromtimestamp(stamp) if stamp else None


def _check_tag(tag: Any) -> str:
    if not isinstance(tag, str) or not tag.strip() or len(tag) > 512:
        raise TagError(f"A tag must be a non-empty string of at most 512 characters, got "
                       f"{tag!r}.")
    return tag


def _latest_record(store: ArtifactStore, run_id: str, step: str,
                   task_id: str) -> dict[str, Any]:
    """The final record of a task's latest attempt, else what it recorded on starting."""
    attempts = store.list_attempts(run_id, step, task_id)
    if not attempts:
        return {}
    done = store.read_done(run_id, step, task_id, attempts[-1])
    if done is not None:
        return done
    try:
        return store.read_start(run_id, step, task_id, attempts[-1])
    except FileNotFoundError:
        return {}


def _lineage(store: ArtifactStore, run_id: str) -> dict[str, list[str]]:
    """Each task of a run (``step/task_id``, in step and id order) with its parents."""
    records = {f"{step}/{task_id}": _latest_record(store, run_id, step, task_id)
               for step in sorted(store.list_steps(run_id))
               for task_id in sorted(store.list_tasks(run_id, step), key=int)}
    # A task cloned on resume keeps its origin's record, which names its parents by
    # their ids in the origin run; the tasks of this run cloned from them are its parents.
    clones = {r["clone_of"].split("/", 2)[2]: name
              for name, r in records.items() if r.get("clone_of")}
    return {name: [clones.get(p, p) if r.get("clone_of") else p
                   for p in r.get("parents") or []]
            for name, r in records.items()}


class DataArtifact:
    """One stored artifact; ``.data`` loads it.

    >>> DataArtifact("MyFlow/12/start/1/alpha").data               # doctest: +SKIP
    0.5
    """

    def __init__(self, pathspec: str, attempt: int | None = None,
                 _namespace_check: bool = True, _root: str | None = None, *,
                 _task: Task | None = None, _ref: ArtifactRef | None = None) -> None:
        if _task is None or _ref is None:
            pieces = pathspec.strip("/").split("/")
            if len(pieces) != 5 or not all(pieces):
                raise DataNotFoundError(
                    f"'{pathspec}' is not an artifact pathspec; expected "
                    f"Flow/run_id/step/task_id/name.")
            _task = Task("/".join(pieces[:4]), attempt, _namespace_check, _root)
            _ref = _task[pieces[4]]._ref
            name = pieces[4]
        else:
            name = pathspec.rsplit("/", 1)[-1]
        self.task = _task
        self.id = name
        self.pathspec = f"{_task.pathspec}/{name}"
        self.sha = _ref.sha
        self.type = _ref.type_name
        self.size = _ref.size
        self.format = _ref.fmt
        self._ref = _ref

    @property
    def parent(self) -> Task:
        """The :class:`Task` that stored it."""
        return self.task

    @property
    def path_components(self) -> list[str]:
        return [*self.task.path_components, self.id]

    @property
    def path(self) -> str:
        """Where the value is stored (Parquet for DataFrames, else cloudpickle)."""
        return self.task._store.blobs.path(self.sha)

    @property
    def data(self) -> Any:
        return self.task._load(self.id, self._ref)

    def __repr__(self) -> str:
        return f"DataArtifact('{self.pathspec}', {self.type})"


class TaskData:
    """``task.data``: each artifact as an attribute, loaded on first read."""

    def __init__(self, task: Task) -> None:
        self._task = task
        self._cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._cache:
            refs = self._task._refs()
            if name not in refs:
                raise AttributeError(
                    f"Task {self._task.pathspec} has no artifact '{name}'."
                    f"{did_you_mean(name, refs)}")
            self._cache[name] = self._task._load(name, refs[name])
        return self._cache[name]

    def __contains__(self, name: str) -> bool:
        return name in self._task._refs()

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._task._refs()))

    def __repr__(self) -> str:
        return f"<data of {self._task.pathspec}: {', '.join(self)}>"
