"""Why an attempt failed: one word per cause, recorded with the attempt.

Every failed attempt's record says one of these (``Task(pathspec, attempt=n).failure_cause``);
the runtime decides retries by them (an ``out-of-memory`` attempt may be retried with more
memory) and each cluster backend maps what its service reports onto them
(``clusters/<backend>/deaths.py``).  Its own module at the bottom of the package: the
datastore's readers, the clusters, the runtime and the client all speak of causes.

>>> describe(OUT_OF_MEMORY)
'the worker ran out of memory'
"""

from __future__ import annotations

EXCEPTION = "exception"          # the step raised (or called sys.exit)
OUT_OF_MEMORY = "out-of-memory"  # a memory limit was passed: Dask's nanny, the kernel, SLURM, ...
TIMEOUT = "timeout"              # @timeout stopped it
WORKER_LOST = "worker-lost"      # its process or machine died, no memory reason known
PREEMPTED = "preempted"          # spot/preemptible capacity taken back, as the service says
WALLTIME = "walltime"            # SLURM ended the job at its time limit
CLUSTER = "cluster"              # its cluster never started

CAUSES = (EXCEPTION, OUT_OF_MEMORY, TIMEOUT, WORKER_LOST, PREEMPTED, WALLTIME, CLUSTER)

#: causes where the task's process died without writing its own record
DEATHS = frozenset({OUT_OF_MEMORY, WORKER_LOST, PREEMPTED, WALLTIME})

_WORDS = {
    EXCEPTION: "the step raised an exception",
    OUT_OF_MEMORY: "the worker ran out of memory",
    TIMEOUT: "@timeout stopped it",
    WORKER_LOST: "its worker process or machine was lost",
    PREEMPTED: "its capacity was taken back (spot or preemptible)",
    WALLTIME: "its SLURM job reached its time limit",
    CLUSTER: "its cluster did not start",
}


def describe(cause: str) -> str:
    """A few words on ``cause``, for summaries and pages."""
    return _WORDS.get(cause, cause)


def of_record(record: dict | None) -> str | None:
    """The cause a done record gives; records written before causes were recorded say it
    through their error's type.  None for a successful (or caught) attempt, or no record."""
    if not record or record.get("status") == "ok":
        return None
    cause = record.get("cause")
    if cause in CAUSES:
        return cause
    kind = (record.get("error") or {}).get("type")
    if kind == "TimeoutError" and "@timeout" in (record.get("error") or {}).get("message", ""):
        return TIMEOUT
    return WORKER_LOST if kind == "WorkerDied" else EXCEPTION
