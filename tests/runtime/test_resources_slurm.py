"""@resources(backend="slurm"): a step on real SLURM jobs, started for it and cancelled after.

Needs a running SLURM (`.ci/setup-slurm.sh`); skipped without one unless
DASKFLOW_REQUIRE_SERVICES is set, as in CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from daskflow import Flow
from daskflow.client import Task

MiB = 2**20

pytestmark = pytest.mark.slurm


@pytest.fixture(autouse=True)
def slurm_required():
    if shutil.which("sinfo") is None or subprocess.run(
            ["timeout", "5", "sinfo", "-h"], capture_output=True).returncode != 0:
        if os.environ.get("DASKFLOW_REQUIRE_SERVICES"):
            pytest.fail("SLURM is required here (DASKFLOW_REQUIRE_SERVICES) but not running")
        pytest.skip("no running SLURM (run .ci/setup-slurm.sh)")


def our_jobs() -> list[str]:
    out = subprocess.run(["timeout", "10", "squeue", "-h", "-o", "%j"], capture_output=True,
                         text=True).stdout
    return [name for name in out.split() if name.startswith("daskflow")]


def test_a_step_runs_on_its_own_slurm_jobs(run_flow, workdir):
    result = run_flow("slurm_flow.py", "run")
    assert result.returncode == 0, result.stderr
    run = Flow("SlurmFlow").latest_run
    slurm = run["on_slurm"].task.data
    assert len(slurm.job_ids) == 2 and all(slurm.job_ids)      # two workers, two jobs
    assert slurm.scheduler != run["start"].task.data.local_scheduler
    assert run.data.end_scheduler == run["start"].task.data.local_scheduler
    assert slurm.total == sum(range(1000))
    cluster = next(c for c in run.record["clusters"] if c["backend"] == "slurm")
    assert cluster["stopped_at"] and "slurm" in cluster["description"]
    assert our_jobs() == []                                    # jobs cancelled after the step


def test_a_foreach_wider_than_the_node_starts_with_the_workers_that_come(run_flow, workdir):
    # 6 one-core jobs on a 2-core node: 2 run, 4 stay pending. The step starts with the
    # first worker, the 2 that come run all 6 splits, and the pending jobs are cancelled
    # when the step ends (it used to wait for all 6 and fail at the start timeout).
    result = run_flow("slurm_foreach_flow.py", "run", timeout=400)
    assert result.returncode == 0, result.stderr
    run = Flow("SlurmForeachFlow").latest_run
    assert run.data.squares == [0, 1, 4, 9, 16, 25]
    [job_name] = run["join"].task.data.job_names   # one cluster: one job name
    assert 1 <= len(run["join"].task.data.jobs) <= 2  # the node has 2 cores
    assert "6 workers x (1 core, 1 GiB)" in result.stdout
    assert job_name not in our_jobs() and our_jobs() == []   # pending jobs cancelled


def test_show_says_how_many_workers_a_foreach_step_asks_for(run_flow, workdir):
    result = run_flow("slurm_foreach_flow.py", "show")
    assert result.returncode == 0, result.stderr
    assert ("runs on: slurm, 16 workers x (1 core, 1 GiB); one worker per foreach split, "
            "at most --max-workers (16)") in result.stdout
    result = run_flow("slurm_foreach_flow.py", "show",
                      env={"DASK_DASKFLOW__RUN__MAX_WORKERS": "4"})
    assert "slurm, 4 workers x (1 core, 1 GiB)" in result.stdout


def test_a_request_no_node_can_meet_is_refused_before_the_run(run_flow, workdir):
    result = run_flow("slurm_flow.py", "run", "--with", "resources:memory=30GiB,backend=slurm")
    assert result.returncode == 1
    assert "SLURM" in result.stderr and "Traceback" not in result.stderr
    assert not (workdir / ".daskflow" / "SlurmFlow").exists() or \
        not list(Flow("SlurmFlow"))
    assert our_jobs() == []


def test_a_step_over_its_memory_is_killed_and_reported(run_flow, workdir):
    result = run_flow("slurm_flow.py", "run", "--hog", "1500")
    assert result.returncode == 1
    assert "memory" in result.stderr.lower()
    assert "on_slurm" in result.stderr and "failed (out-of-memory)" in result.stderr
    assert Flow("SlurmFlow").latest_run["on_slurm"].task.failure_cause == "out-of-memory"
    assert our_jobs() == []


def test_out_of_memory_on_slurm_is_retried_on_a_job_twice_the_size(run_flow, workdir):
    result = run_flow("grow_flow.py", "run", timeout=400, env={"GROW_BACKEND": "slurm"})
    assert result.returncode == 0, result.stderr
    big = Flow("GrowFlow").latest_run["big"].task
    assert big.attempts == [0, 1]
    first, second = (Task(big.pathspec, attempt=a) for a in (0, 1))
    assert first.failure_cause == "out-of-memory" and first.resources.memory == 600 * MiB
    # dask-jobqueue gives the worker --memory-limit with two decimals (1.17GiB)
    assert abs(second.resources.memory - 1200 * MiB) < 0.01 * 1200 * MiB
    assert big.data.ran_with[1] == second.resources.memory
    assert "slurm, 1 worker x (1 core, 1200 MiB)" in result.stdout
    assert our_jobs() == []


def test_a_step_that_outlives_its_jobs_walltime_fails_with_walltime(run_flow, workdir):
    # SLURM ends the job after its minute (its time limit is checked every ~30 s)
    result = run_flow("slurm_flow.py", "run", "--nap", "240", timeout=400,
                      env={"DASK_DASKFLOW__CLUSTER__SLURM__WALLTIME": "00:01:00"})
    assert result.returncode == 1
    assert "failed (walltime)" in result.stderr and "time limit" in result.stderr
    task = Flow("SlurmFlow").latest_run["on_slurm"].task
    assert Task(task.pathspec, attempt=0).failure_cause == "walltime"
    assert our_jobs() == []


def test_a_cluster_that_does_not_start_is_the_attempts_cause(run_flow, workdir):
    result = run_flow("slurm_flow.py", "run",
                      env={"DASK_DASKFLOW__CLUSTER__START_TIMEOUT": "0.5s"})
    assert result.returncode == 1
    assert "failed (cluster)" in result.stderr and "start timeout of 0.5s" in result.stderr
    task = Flow("SlurmFlow").latest_run["on_slurm"].task
    assert task.attempts == [0] and task.failure_cause == "cluster"
    assert our_jobs() == []


def test_the_whole_flow_on_slurm_lets_idle_workers_go(run_flow, workdir):
    # The run's default cluster is on SLURM too: on this 2-core node it must give its
    # jobs back while the @resources step's own jobs need the cores.
    result = run_flow("slurm_flow.py", "run", "--cluster", "slurm", timeout=400)
    assert result.returncode == 0, result.stderr
    run = Flow("SlurmFlow").latest_run
    assert run.successful and run.data.end_scheduler != run["on_slurm"].task.data.scheduler
    clusters = run._record["clusters"]
    assert {c["backend"] for c in clusters} == {"slurm"}
    assert all(c["worker_seconds_held"] >= c["worker_seconds_used"] >= 0 for c in clusters)
    assert our_jobs() == []


def test_a_gang_meets_and_joins_on_slurm(run_flow, workdir):
    from .test_gang import check_gang
    result = run_flow("gang_flow.py", "run", "--nodes", "2", env={"GANG_BACKEND": "slurm"},
                      timeout=400)
    assert result.returncode == 0, result.stderr
    check_gang(Flow("GangFlow").latest_run, 2)
    assert our_jobs() == []


def test_a_secret_reaches_slurm_workers_but_no_job_script_or_command_line(run_flow, workdir):
    value = "slurm-Pq4-secret-value"
    result = run_flow("slurm_secret_flow.py", "run",
                      env={"DF_SECRET": value, "DF_EXPECTED": value})
    assert result.returncode == 0, result.stderr
    data = Flow("SlurmSecretFlow").latest_run["on_slurm"].task.data
    assert data.task_has_it and data.workers_have_it   # the worker plugin set it
    assert len(data.scripts) == 2 and all("export DF_PLAIN=plain" in s for s in data.scripts)
    assert not any(value in s for s in data.scripts) and value not in data.ps
    assert value not in result.stdout + result.stderr
    assert not [p for p in workdir.rglob("*") if p.is_file() and value.encode() in p.read_bytes()]
    assert our_jobs() == []
