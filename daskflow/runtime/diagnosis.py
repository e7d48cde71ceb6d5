"""Why a task failed, said as plainly as what is known allows.

A step that raised, or that ``@timeout`` stopped, comes back as the :class:`TaskFailed`
its task wrote, with its cause.  A worker that died while it ran tasks reaches the
driver as Dask's ``KilledWorker`` on each of them: every cluster daskflow starts lets
no task outlive a worker (``allowed-failures`` 0), so that the driver, not Dask, decides
what runs again and where.  :class:`Deaths` holds what was lost with each dead worker
until its death is diagnosed (:func:`diagnose_death`, off the driver's thread: the
nanny's account, which :class:`NannyReports` hears on the scheduler's event topics, and
the backend's own, ``ClusterBackend.worker_death``), then hands it back to the driver,
which records the dead attempts with their cause and sends the tasks again.  Other
failures (a cancelled future, an error of Dask's) are said by :func:`explain`.

Two failures are the whole run's, not a task's (:func:`run_stopped`): the run's
scheduler went away (:func:`scheduler_lost`), or the datastore stopped answering;
either ends the run with one line that names what went away and the command that
resumes it.
"""

from __future__ import annotations

import logging
import os
import shlex
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..clusters.deaths import Death, NannyAccount, nanny_death
from ..dask_client import erred_with
from ..exceptions import TaskFailed

#: the nanny's memory monitor announces a kill on this topic (distributed's name)
MEMORY_TOPIC = "worker-restart-memory"
#: seconds a diagnosis waits for the nanny's word (it trails the scheduler's, by more on
#: a loaded machine; only a death the nanny says nothing of waits it all)
NANNY_WAIT = 5.0
#: a task whose worker dies this often before it starts an attempt fails the run
MAX_UNSTARTED_LOSSES = 5


class LostWorker(NamedTuple):
    """A worker that died while a task was on it, as Dask's ``KilledWorker`` names it:
    ``task`` is the key Dask blames (the task itself, or a task it depends on); ``pid``
    its process, which the nanny's words also name (a nanny may still give a restarted
    worker's address as its previous one's)."""

    task: str
    address: str
    name: Any
    memory_limit: int | None
    pid: int | None = None


def lost_worker(future: Any) -> LostWorker | None:
    """The worker ``future``'s task was lost with, if it failed that way."""
    exc = erred_with(future)
    worker = getattr(exc, "last_worker", None)
    if type(exc).__name__ != "KilledWorker" or worker is None:
        return None
    return LostWorker(str(getattr(exc, "task", future.key)), worker.address, worker.name,
                      getattr(worker, "memory_limit", None) or None, getattr(worker, "pid", None))


@dataclass(frozen=True)
class WorkerDiagnosed:
    """The driver's event: how the worker at ``address`` of ``cluster`` died, and whether
    a worker comes back in its place (its nanny outlived it)."""

    cluster: str
    address: str
    death: Death
    nanny: NannyAccount
    comes_back: bool


class NannyReports:
    """What nannies said on the scheduler's topics, by worker address and by process id,
    until asked for.

    Subscribed on every cluster of a run (``relay.py``); :meth:`account` waits, bounded,
    for a dead worker's exit event.  A nanny whose worker process restarted names the
    new process by its predecessor's address until it hears the new one: its memory
    monitor's word gives the process id too, and is found by either.
    """

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.exits: dict[Any, tuple[float, dict[str, Any]]] = {}
        self.memory: dict[Any, tuple[float, dict[str, Any]]] = {}

    def heard_exit(self, event: tuple[float, dict[str, Any]]) -> None:
        self._heard(self.exits, event)

    def heard_memory(self, event: tuple[float, dict[str, Any]]) -> None:
        self._heard(self.memory, event)

    def _heard(self, into: dict[Any, tuple[float, dict[str, Any]]],
               event: tuple[float, dict[str, Any]]) -> None:
        _, msg = event
        if not isinstance(msg, dict) or not msg.get("worker"):
            return
        with self.lock:
            now = time.monotonic()
            into[msg["worker"]] = (now, msg)
            if msg.get("pid"):
                into[("pid", msg["pid"])] = (now, msg)
            old = now - 600  # deaths nobody asked about: forgotten
            for stale in [k for k, (when, _) in into.items() if when < old]:
                del into[stale]
            self.lock.notify_all()

    def account(self, address: str, wait: float = NANNY_WAIT,
                pid: int | None = None) -> NannyAccount:
        """What the nanny of the worker at ``address`` (process ``pid``) said of its end
        (waits up to ``wait`` seconds for its exit event)."""
        deadline = time.monotonic() + wait
        keys = (("pid", pid), address) if pid else (address,)
        with self.lock:
            while not any(k in self.exits for k in keys) and time.monotonic() < deadline:
                self.lock.wait(max(0.0, deadline - time.monotonic()))
            exit_msg = _take(self.exits, keys)
            memory = _take(self.memory, keys)
        if exit_msg is None:
            return NannyAccount(memory=memory)
        return NannyAccount(exitcode=exit_msg.get("exitcode"), memory=memory,
                            journals=dict(exit_msg.get("journals") or {}))


def _take(said: dict[Any, tuple[float, dict[str, Any]]], keys: tuple) -> dict[str, Any] | None:
    """The first of ``keys``' words in ``said``, removed with its other key."""
    for key in keys:
        if key in said:
            msg = said.pop(key)[1]
            for other in (msg.get("worker"), ("pid", msg.get("pid"))):
                if other in said and said[other][1] is msg:
                    del said[other]
            return msg
    return None


def diagnose_death(backend: Any, cluster: Any, worker: LostWorker, reports: NannyReports,
                   told: Callable[[Death, NannyAccount, bool], None]) -> None:
    """How ``worker`` died, then ``told(death, nanny, comes_back)``: run in a thread of its
    own (the nanny's word and the backend's service may take seconds).  A worker comes
    back when its nanny said how it ended, or always on this machine (a local cluster's
    nannies run in the run's own process; under load their word may come late)."""
    nanny = reports.account(worker.address, pid=worker.pid)
    try:
        death = backend.worker_death(cluster, worker, nanny) if backend is not None \
            else nanny_death(nanny, worker.memory_limit)
    except Exception:  # noqa: BLE001  a diagnosis never stops the run: what the nanny said
        death = nanny_death(nanny, worker.memory_limit)
    told(death, nanny, nanny.said or bool(getattr(backend, "local_machine", False)))


@dataclass
class _Dead:
    cluster: str
    worker: LostWorker
    lost: list[Any] = field(default_factory=list)


class Deaths:
    """What was lost with each dead worker until its death is diagnosed, and the tasks
    lost with a task they depend on until that task runs again."""

    def __init__(self) -> None:
        self.dead: dict[str, _Dead] = {}               # worker address -> what it took
        self.waiting_for: dict[str, list[Any]] = {}    # a lost task's key -> its dependents
        self.resent: set[str] = set()                  # lost tasks already sent again
        self.unstarted: dict[str, int] = {}            # losses of a task before it started

    def lost(self, cluster: str, worker: LostWorker, item: Any, key: str) -> bool:
        """``item`` (a future, or a batch's event: Dask key ``key``) was lost with ``worker``;
        True when that worker's death is new and is to be diagnosed."""
        self.resent.discard(key)  # what waits for it again waits for this death's handling
        dead = self.dead.get(worker.address)
        if dead is not None:
            dead.lost.append(item)
            return False
        self.dead[worker.address] = _Dead(cluster, worker, [item])
        return True

    def diagnosed(self, address: str) -> tuple[LostWorker | None, list[Any]]:
        dead = self.dead.pop(address, None)
        return (dead.worker, dead.lost) if dead is not None else (None, [])

    def with_parent(self, parent: str, future: Any) -> bool:
        """``future`` failed because the task ``parent`` was lost: True when it is to run
        again now (``parent`` was sent again already), else it waits for :meth:`sent_again`."""
        if parent in self.resent:
            return True
        self.waiting_for.setdefault(parent, []).append(future)
        return False

    def sent_again(self, key: str) -> list[Any]:
        """The task ``key`` runs again: the dependents lost with it, to run again too."""
        self.resent.add(key)
        return self.waiting_for.pop(key, [])

    def unstarted_loss(self, key: str) -> bool:
        """The task ``key`` was lost with no attempt of its own dying (before it started,
        or after it finished but before the scheduler heard); False once that happened too
        often (its task itself likely kills its worker before it can claim one)."""
        self.unstarted[key] = self.unstarted.get(key, 0) + 1
        return self.unstarted[key] < MAX_UNSTARTED_LOSSES


def watch_exits(client: Any, *, by_value: bool) -> None:
    """Have the nannies of ``client``'s cluster report how their worker processes end
    (:class:`~daskflow.runtime._exit_watch.WatchExits`); ``by_value`` for nannies that may
    have no daskflow.  A cluster that refuses it only says less of its deaths."""
    from . import _exit_watch
    if by_value:
        import cloudpickle
        cloudpickle.register_pickle_by_value(_exit_watch)
    try:
        client.register_plugin(_exit_watch.WatchExits())
    except Exception:  # noqa: BLE001  no nanny plugin: the nanny's word is missed
        pass


def failure_of(future: Any, pathspec: str,
               account: Callable[[BaseException], BaseException | None] | None = None
               ) -> TaskFailed:
    """The failure of the task (or batch) whose ``future`` did not finish; ``account``
    asks the cluster's backend about an error (None: the run's default cluster)."""
    exc = erred_with(future)
    if isinstance(exc, TaskFailed):
        return exc
    return explain(pathspec, exc, account(exc) if account and exc is not None else None)


def explain(pathspec: str, exc: BaseException | None,
            diagnosis: BaseException | None = None) -> TaskFailed:
    """A failure Dask reported for the task ``pathspec``: ``exc`` (None: it was cancelled),
    with the backend's ``diagnosis`` of it where there is one."""
    if exc is None:
        return TaskFailed(pathspec, "Cancelled", "the task was cancelled")
    if diagnosis is not None:  # e.g. SLURM killed the job for using too much memory
        return TaskFailed(pathspec, type(diagnosis).__name__, str(diagnosis),
                          cause=getattr(diagnosis, "cause", "worker-lost"))
    name = type(exc).__name__
    if name == "KilledWorker":
        return TaskFailed(pathspec, "WorkerDied",
                          "Dask gave up on it: the workers running it kept dying "
                          f"(killed, segfault, os.abort() or out of memory). {exc}",
                          cause="worker-lost")
    return TaskFailed(pathspec, name, str(exc))


# -- what the whole run needs, gone -----------------------------------------------------------

#: the failures that stop the run rather than fail a task: resume goes on once it is back
RUN_STOPPERS = ("SchedulerGone", "DatastoreUnavailable")


def scheduler_lost(future: Any, client: Any) -> bool:
    """Whether ``future`` ended because its client lost the scheduler (killed, restarted,
    unreachable): distributed cancels every future then, with that reason."""
    state = getattr(future, "_state", None)
    reason = getattr(getattr(state, "exception", None), "reason", None)
    return reason == "scheduler-connection-lost" or \
        getattr(client, "status", "running") in ("connecting", "closing", "closed")


def scheduler_went_away(exc: BaseException, client: Any, wait: float = 5.0) -> bool:
    """Whether the driver's own call that raised ``exc`` (fetching a result...) failed
    because the scheduler went away: a broken connection, and the client, given ``wait``
    seconds to notice, has lost it too."""
    if not isinstance(exc, OSError):  # distributed's CommClosedError is one
        return False
    deadline = time.monotonic() + wait
    while getattr(client, "status", "running") == "running":
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@contextmanager
def quiet_once_lost(client: Any = None) -> Iterator[_WhileConnected]:
    """Within: distributed's client logs nothing once it has lost its scheduler (its tries
    to reconnect, then its close cancelling them, each with a traceback); the run says
    what happened in one line instead. What it logs while connected passes. The client
    may be given later, as the ``client`` of what this yields (entered first, the filter
    is left last: after the client's close)."""
    logger = logging.getLogger("distributed.client")
    connected = _WhileConnected(client)
    logger.addFilter(connected)
    try:
        yield connected
    finally:
        logger.removeFilter(connected)


class _WhileConnected(logging.Filter):
    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(self.client, "status", "running") == "running"


def scheduler_gone(run_pathspec: str, address: str) -> TaskFailed:
    """The run's scheduler at ``address`` went away; :func:`run_stopped` says the rest."""
    return TaskFailed(run_pathspec, "SchedulerGone",
                      f"the Dask scheduler at {address} went away (its client lost the "
                      f"connection and every task on it with it).")


def run_stopped(failure: TaskFailed, run_pathspec: str, flow_file: str,
                scheduler_address: str | None) -> TaskFailed:
    """``failure`` as the run's one line when it stops the whole run (:data:`RUN_STOPPERS`):
    what went away, its last error, and the command that continues the run; other
    failures as they are."""
    if failure.type_name not in RUN_STOPPERS:
        return failure
    run_id = run_pathspec.rsplit("/", 1)[-1]
    command = shlex.join(["python", _shown(flow_file), "resume", "--origin-run-id", run_id])
    if failure.type_name == "SchedulerGone":
        then = "Start it again (or another one), then continue the run with"
    else:
        then = "Once it answers again, continue the run with"
    if scheduler_address:
        command += " --scheduler-address ADDRESS"
    return TaskFailed(run_pathspec, failure.type_name,
                      f"{failure.message.rstrip('. ')}. {then}: {command}", input_error=True)


def _shown(flow_file: str) -> str:
    """The flow file as the user would type it: relative to here when it is below."""
    relative = os.path.relpath(flow_file)
    return flow_file if relative.startswith("..") else relative
