"""Retries that know why a task failed, with real processes: a real nanny stops a real
over-memory worker, and the retry gets twice the memory; workers SIGKILLed under a wide
batched foreach leave every split counted, attempt by attempt.  (SLURM's own: its job
killed for memory, a walltime, a cluster that does not start, in test_resources_slurm.py.)
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from daskflow import Flow
from daskflow.client import Task

from ..conftest import FLOWS, _env

MiB = 2**20


def test_out_of_memory_is_retried_with_twice_the_memory(run_flow, workdir):
    result = run_flow("grow_flow.py", "run")
    assert result.returncode == 0, result.stderr
    run = Flow("GrowFlow").latest_run
    big = run["big"].task
    assert big.attempts == [0, 1]
    first, second = (Task(big.pathspec, attempt=a) for a in (0, 1))
    assert first.failure_cause == "out-of-memory" and second.failure_cause is None
    assert first.resources.memory == 600 * MiB
    assert second.resources.memory == 1200 * MiB          # twice, under max_memory (2 GiB)
    assert big.data.ran_with == (1, 1200 * MiB, 0)      # current.resources in the step
    assert "over 95% of its 600 MiB limit, and Dask's nanny stopped it" in \
        first.exception.exception
    assert f"Task {run.id}/big/2 failed (attempt 0, out-of-memory); retrying." in result.stdout
    assert "(1 core, 1200 MiB)" in result.stdout          # the bigger cluster it moved to
    report = (workdir / ".daskflow" / "GrowFlow" / run.id / "_report.html").read_text()
    assert "attempt 0 <span class=\"pill p-cause\">out-of-memory</span> on 1 core, 600 MiB" \
        in report
    assert '"rs":"1 core, 1200 MiB"' in report           # the second attempt, in its panel


def body_runs(workdir: Path) -> list[list[str]]:
    try:
        text = (workdir / "body-runs").read_text()
    except FileNotFoundError:
        return []
    return [line.split() for line in text.splitlines() if line.count(" ") == 4]


def bodies(workdir: Path) -> tuple[dict[str, list[int]], set[tuple[str, int]]]:
    """From ``body-runs``: the attempt of each body run by task id, and the (task id,
    attempt) of the bodies that started and never ended (a kill cut them short)."""
    runs: dict[str, list[int]] = defaultdict(list)
    ended: set[tuple[str, int]] = set()
    for task_id, attempt, _, _, what in body_runs(workdir):
        if what == "start":
            runs[task_id].append(int(attempt))
        else:
            ended.add((task_id, int(attempt)))
    cut_short = {(t, a) for t, attempts in runs.items() for a in attempts if (t, a) not in ended}
    return runs, cut_short


def kill_running_workers(workdir: Path, proc: subprocess.Popen, times: int) -> list[int]:
    """Every 2 s, SIGKILL a worker process picked at random among those running a split's
    body right now (their last line in ``body-runs`` is a start)."""
    while not body_runs(workdir):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    killed: list[int] = []
    while len(killed) < times and proc.poll() is None:
        time.sleep(2)
        last: dict[int, str] = {}
        for task_id, attempt, pid, when, what in body_runs(workdir):
            last[int(pid)] = what
        busy = [pid for pid, what in last.items() if what == "start" and pid not in killed]
        if busy:
            pid = random.choice(busy)
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return killed


def test_workers_killed_under_a_batched_foreach_leave_every_split_counted(workdir):
    proc = subprocess.Popen([sys.executable, str(FLOWS / "kill_foreach_flow.py"), "run",
                             "--n", "2000", "--nap", "0.012", "--max-num-splits", "2000"],
                            cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env())
    killed = kill_running_workers(workdir, proc, times=5)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert len(killed) == 5, "the foreach ended before five workers were killed"
    run = Flow("KillForeachFlow").latest_run
    assert run.data.total == 2 * sum(range(2000))

    runs, cut_short = bodies(workdir)
    assert len(cut_short) >= 3, "most kills should have hit a split's body"

    tasks = list(run["work"])
    assert len(tasks) == 2000
    for task in tasks:
        attempts = [Task(task.pathspec, attempt=a) for a in task.attempts]
        succeeded = [a.current_attempt for a in attempts if a.successful]
        assert len(succeeded) == 1, (task.pathspec, task.attempts)
        assert task.data.out == 2 * task.index
        # no body ran again once an attempt had succeeded, nor twice as one attempt
        ran = runs[task.id]
        assert ran.count(succeeded[0]) == 1 and max(ran) == succeeded[0], (task.id, ran)
        for attempt in attempts:
            assert attempt.successful or attempt.failure_cause == "worker-lost"
    for task_id, attempt in cut_short:  # each body a kill cut short is a worker-lost attempt
        dead = Task("/".join([run.pathspec, "work", task_id]), attempt=attempt)
        assert dead.failure_cause == "worker-lost" and "SIGKILL" in dead.exception.exception
    assert f"Retried {len(cut_short)}" in out or "worker-lost" in out


def test_only_the_split_that_ran_out_moves_and_a_step_moves_off_the_default_cluster(
        run_flow, workdir):
    # the run's default cluster has 600 MiB workers; `alone` has only max_memory
    result = run_flow("grow_split_flow.py", "run",
                      env={"DASK_DASKFLOW__LOCAL__MEMORY_LIMIT": "600MiB"})
    assert result.returncode == 0, result.stderr
    run = Flow("GrowSplitFlow").latest_run
    splits = {task.index: task for task in run["work"]}
    for index in (0, 2):  # they stayed on their cluster, one attempt each
        assert splits[index].attempts == [0]
        assert splits[index].data.ran_with == (1, 600 * MiB, 0)
    grown = splits[1]
    assert grown.attempts == [0, 1]
    assert Task(grown.pathspec, attempt=0).failure_cause == "out-of-memory"
    assert grown.data.ran_with == (1, 1200 * MiB, 0)
    alone = run["alone"].task
    first = Task(alone.pathspec, attempt=0)
    assert alone.attempts == [0, 1] and first.failure_cause == "out-of-memory"
    assert first.resources.memory == 600 * MiB        # the default cluster's worker
    assert alone.data.ran_with == (1, 1200 * MiB, 0)  # a step cluster of twice that
    assert "for step 'alone' started: local, 1 worker x (1 core, 1200 MiB)" in result.stdout
    assert "Retried 2 failed attempts: 2 out-of-memory." in result.stdout
