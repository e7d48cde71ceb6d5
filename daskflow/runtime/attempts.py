"""What an attempt's records say beyond its outcome: what it ran with, and why it failed.

Every attempt's start record holds the ``resources`` of the worker it ran on (cores,
memory limit, GPUs: what ``Task.resources`` and ``current.resources`` give), and every
failed attempt's done record its ``cause`` (:mod:`daskflow.causes`).  An attempt whose
process died wrote no done record of its own: the driver writes one when it has found
out how the worker died (:func:`death_record`), before the task runs again; a task that
Dask ran again by itself (a scheduler daskflow did not start) writes the plain
``worker-lost`` one.  Both worker and driver use this module; it imports neither.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any, NamedTuple

from .. import causes
from ..clusters.request import TaskResources
from .capture import crash_note, read_spool, remove_spool

#: the error type of an attempt whose process died
DIED = "WorkerDied"


_WORKER_RESOURCES: dict[str, dict[str, Any]] = {}


def worker_resources(worker: Any) -> dict[str, Any] | None:
    """The resources of ``worker`` (a ``distributed.Worker``, or None off one), as a start
    record keeps them; looked up once per worker."""
    if worker is None:
        return None
    found = _WORKER_RESOURCES.get(worker.address)
    if found is None:
        memory = getattr(getattr(worker, "memory_manager", None), "memory_limit", None)
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        gpus = len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
        found = {"cpu": int(worker.state.nthreads), "memory": int(memory) if memory else None,
                 "gpu": gpus}
        _WORKER_RESOURCES.clear()  # one worker per process at a time
        _WORKER_RESOURCES[worker.address] = found
    return found


def death_record(start: dict[str, Any], attempt: int, cause: str, message: str,
                 ended: float | None = None) -> dict[str, Any]:
    """The done record of an attempt whose process died (``start``: its start record)."""
    return {"attempt": attempt, "started_at": start.get("started_at"),
            "finished_at": ended or time.time(), "frames": start.get("frames") or [],
            "parents": start.get("parents") or [], "worker": start.get("worker"),
            "status": "failed", "cause": cause,
            "error": {"type": DIED, "qualified_type": f"daskflow.{DIED}", "traceback": "",
                      "message": message}}


def lost_message(start: dict[str, Any], attempt: int, how: str = "") -> str:
    """What a dead attempt's error says: its process, and ``how`` it died when known (a
    clause: ``it was killed by signal 9 (SIGKILL)``)."""
    pid = start.get("pid")
    process = f"the worker process (pid {pid})" if pid else "the worker process"
    said = f": {how}" if how else (" (killed, crashed by a segfault or os._exit(), or out "
                                   "of memory) and left no result")
    return f"{process} running it died during attempt {attempt}{said}; @retry runs a task " \
           f"again after such a crash"


class EndedAttempt(NamedTuple):
    """The attempt that ran on a dead worker: its number, how many attempts the task has
    had with it, what it ran with, its error (type, message) and its cause (``timeout``:
    the attempt ended itself, and its worker with it)."""

    attempt: int
    attempts: int
    resources: TaskResources | None
    error: dict[str, str]
    cause: str


def end_lost_attempt(store: Any, run_id: str, step: str, task_id: str, worker: str,
                     cause: str, how: str) -> EndedAttempt | None:
    """The task's latest attempt, when it ran on ``worker``: recorded as dead of ``cause``
    (``how``: in words) unless it wrote its own record first (a ``@timeout`` stops an
    attempt by killing its process); None when no attempt of it died there: it had not
    started, or it had finished and only its result, held by the worker, was lost (the
    worker died before the scheduler heard of it): run again, it returns what it stored."""
    attempts = store.list_attempts(run_id, step, task_id)
    if not attempts:
        return None
    attempt = attempts[-1]
    start = store.read_start(run_id, step, task_id, attempt)
    if start.get("worker") not in (None, worker):
        return None
    resources = TaskResources.from_record(start.get("resources"))
    record = store.read_done(run_id, step, task_id, attempt)
    if record is not None and record.get("status") == "ok":
        return None
    if record is not None:
        return EndedAttempt(attempt, len(attempts), resources, error_of(record, start, attempt),
                            causes.of_record(record) or cause)
    keep_spooled_output(store, run_id, step, task_id, attempt, start)
    record = death_record(start, attempt, cause, lost_message(start, attempt, how))
    store.write_done(run_id, step, task_id, attempt, record)
    return EndedAttempt(attempt, len(attempts), resources, record["error"], cause)


def error_of(record: dict[str, Any] | None, start: dict[str, Any], attempt: int
             ) -> dict[str, str]:
    """The error of an ended attempt: its record's, or a dead one's without a record."""
    if record is not None and record.get("error"):
        return record["error"]
    return death_record(start, attempt, causes.WORKER_LOST,
                        lost_message(start, attempt))["error"]


def keep_spooled_output(store: Any, run_id: str, step: str, task_id: str, attempt: int,
                        start: dict[str, Any]) -> None:
    """A dead attempt's output, from its spool on this host (when it ran here): kept as the
    attempt's log, as Metaflow's logs keep a crashed task's output, its stderr ending as
    Metaflow's does (``Task failed with a segmentation fault.``)."""
    spool = start.get("spool")
    if not spool or start.get("host") != socket.gethostname() or \
            not os.path.exists(os.path.dirname(spool)) or process_alive(start.get("pid")):
        return
    keep_spool(store, (run_id, step, task_id, attempt), spool)


def keep_dead_output(entry: dict[str, Any]) -> None:
    """The entry of a batched attempt that died with its process: what reached its
    descriptors, from the spool its start names (its thread's scratch files, when it
    ran on this host), as its stderr and stdout, its stderr ending as Metaflow's does."""
    start = entry.get("start") or {}
    spool = start.get("spool")
    found = {"stdout": "", "stderr": ""}
    if spool and start.get("host") == socket.gethostname() and \
            not process_alive(start.get("pid")):
        found = read_spool(spool)
    found["stderr"] += crash_note(found["stderr"])
    entry.update((stream, text) for stream, text in found.items() if text)


def keep_spool(store: Any, attempt: tuple[str, str, str, int], spool: str) -> None:
    """Store the spool of a dead ``attempt`` (run id, step, task id, attempt) as its log
    unless it has one, its stderr ending as Metaflow's does; then remove the spool."""
    found = read_spool(spool)
    found["stderr"] += crash_note(found["stderr"])
    for stream, text in found.items():
        if text and not store.read_log(*attempt, stream):
            store.write_log(*attempt, stream, text)
    remove_spool(spool)


def process_alive(pid: Any) -> bool:
    """Whether ``pid`` (another process on this host) still runs."""
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def record_unstarted(store: Any, run_id: str, step: str, task_id: str, cause: str,
                     error_type: str, message: str) -> int:
    """A failed attempt for a task that could not start (its cluster did not): claimed and
    ended at once.  Returns how many attempts the task has had, this one included."""
    now = time.time()
    attempt = store.claim_attempt(run_id, step, task_id, {"started_at": now, "host": None,
                                                          "pid": None, "worker": None})
    store.write_done(run_id, step, task_id, attempt, {
        "attempt": attempt, "started_at": now, "finished_at": now, "status": "failed",
        "cause": cause, "error": {"type": error_type, "qualified_type": error_type,
                                  "traceback": "", "message": message}})
    return attempt + 1
