"""How SLURM says a worker's job ended, as a cause: its job state, and slurmstepd's lines.

A SLURM worker is one job.  When the job ends early, ``scontrol show job`` gives its
``JobState`` (``OUT_OF_MEMORY``, ``TIMEOUT``, ``PREEMPTED``, ``NODE_FAIL``, ... for
``MinJobAge`` seconds after it ended), and slurmstepd writes its verdict into the
job's stderr (``exceeded memory limit``, ``CANCELLED AT ... DUE TO TIME LIMIT``).
Both are read here by pure functions that tests feed with SLURM's own strings.

>>> job_state_cause("TIMEOUT"), job_state_cause("RUNNING")
('walltime', None)
"""

from __future__ import annotations

import re

from ... import causes

#: JobState values (squeue/sacct "JOB STATE CODES") that say why a job ended early
JOB_STATES = {
    "OUT_OF_MEMORY": causes.OUT_OF_MEMORY,
    "TIMEOUT": causes.WALLTIME,
    "DEADLINE": causes.WALLTIME,
    "PREEMPTED": causes.PREEMPTED,
    "NODE_FAIL": causes.WORKER_LOST,
    "BOOT_FAIL": causes.WORKER_LOST,
    "FAILED": causes.WORKER_LOST,
    "CANCELLED": causes.WORKER_LOST,
}

# What slurmstepd writes into a job's stderr when it ends it, and the cause it means.
DEATH_SIGNS = (
    (causes.OUT_OF_MEMORY,
     re.compile(r"exceeded memory limit|Exceeded job memory limit|oom[-_ ]kill", re.IGNORECASE)),
    (causes.WALLTIME, re.compile(r"DUE TO TIME LIMIT")),
    (causes.PREEMPTED, re.compile(r"DUE TO PREEMPTION")),
    (causes.WORKER_LOST, re.compile(r"DUE TO NODE FAILURE")),
    (causes.OUT_OF_MEMORY, re.compile(r"exceeded \d+% memory budget")),  # Dask's nanny
    (causes.WORKER_LOST, re.compile(r"\*\*\* JOB \d+ ON \S+ CANCELLED")),
)


def job_state_cause(state: str) -> str | None:
    """The cause a finished job's ``JobState`` gives; None for one that says nothing
    (still running, completed, or unknown)."""
    return JOB_STATES.get(state.strip().split()[0].upper() if state.strip() else "")


def parse_job(text: str) -> dict[str, str]:
    """``scontrol show job`` output as ``{key: value}`` (``JobState``, ``Reason``, ...).

    >>> parse_job("JobId=42 JobName=w\\n   JobState=TIMEOUT Reason=TimeLimit")
    {'JobId': '42', 'JobName': 'w', 'JobState': 'TIMEOUT', 'Reason': 'TimeLimit'}
    """
    found: dict[str, str] = {}
    for word in text.split():
        key, sep, value = word.partition("=")
        if sep and key and key not in found:
            found[key] = value
    return found


def job_cause(state: str, lines: list[str]) -> str | None:
    """The cause of a job's end from both: a job state that names one (``TIMEOUT``,
    ``OUT_OF_MEMORY``, ``PREEMPTED``), else slurmstepd's lines (a job killed for its memory
    by OverMemoryKill ends ``FAILED`` or ``CANCELLED``), else the state's plain loss.

    >>> job_cause("FAILED", ["slurmstepd: error: Exceeded job memory limit"])
    'out-of-memory'
    """
    by_state = job_state_cause(state)
    if by_state is not None and by_state != causes.WORKER_LOST:
        return by_state
    return signs_cause(lines) or by_state


def signs_cause(lines: list[str]) -> str | None:
    """The cause slurmstepd's lines give, None when they say nothing of it."""
    text = "\n".join(lines)
    for cause, pattern in DEATH_SIGNS:
        if pattern.search(text):
            return cause
    return None
