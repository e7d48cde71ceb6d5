"""The scheduler goes away in the middle of a run.

- A run on ``--scheduler-address`` whose scheduler is SIGKILLed mid-foreach ends with one
  line naming the scheduler that went away and the command that resumes the run; the
  resume, on a new scheduler, reuses the splits that had finished.
- A step on a SLURM cluster of its own whose jobs are cancelled (``scancel``) mid-step:
  the step fails with SLURM's account, or runs again per ``@retry`` on a new cluster
  (the lost task is sent again on a fresh cluster); no job of either cluster is left.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from daskflow import Flow

from ..clusters.conftest import require_slurm  # noqa: F401  (a fixture)
from ..conftest import FLOWS, _env, start_scheduler, stop_processes

pytestmark = pytest.mark.faults


@pytest.fixture
def doomed_scheduler(tmp_path):
    address, procs = start_scheduler(tmp_path / "doomed", "--death-timeout", "20")
    yield address, procs
    stop_processes(procs)


def _finished_splits(flow: str) -> int:
    try:
        run = Flow(flow).latest_run
        return 0 if run is None else sum(t.successful for t in run["work"])
    except LookupError:
        return 0


def test_a_scheduler_killed_mid_foreach_is_named_with_the_command_to_resume(
        doomed_scheduler, workdir, tmp_path):
    address, procs = doomed_scheduler
    proc = subprocess.Popen(
        [sys.executable, str(FLOWS / "slow_foreach.py"), "run", "--n", "10", "--nap", "1.5",
         "--scheduler-address", address, "--max-workers", "2"],
        cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    deadline = time.time() + 120
    while _finished_splits("SlowForeachFlow") < 2:
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    procs[0].send_signal(signal.SIGKILL)  # the scheduler, and nothing else
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    last = err.strip().splitlines()[-1]
    assert f"the Dask scheduler at {address} went away" in last, err
    assert "SlowForeachFlow" in last and "resume --origin-run-id" in last, last
    assert "Cancelled" not in err and "Traceback" not in err, err
    failed = Flow("SlowForeachFlow").latest_run
    assert failed.status == "failed"
    assert address in failed.record["failure"]["message"]
    done_before = _finished_splits("SlowForeachFlow")

    (workdir / "no-nap").write_text("")
    again, again_procs = start_scheduler(tmp_path / "again")
    try:
        resumed = subprocess.run(
            [sys.executable, str(FLOWS / "slow_foreach.py"), "resume", "--origin-run-id",
             failed.id, "--scheduler-address", again], cwd=workdir, capture_output=True,
            text=True, env=_env(), timeout=180)
    finally:
        stop_processes(again_procs)
    assert resumed.returncode == 0, resumed.stderr
    run = Flow("SlowForeachFlow").latest_run
    assert run.successful and run.data.total == 10 * sum(range(10))
    assert sum(1 for t in run["work"] if t.origin_pathspec) >= done_before >= 2


# -- a step cluster on SLURM whose jobs are cancelled -------------------------------------------


def _slurm_jobs() -> set[str]:
    out = subprocess.run(["timeout", "10", "squeue", "-h", "-o", "%i"], capture_output=True,
                         text=True).stdout
    return set(out.split())


@pytest.mark.slurm
@pytest.mark.parametrize("retry", [False, True], ids=["no-retry", "retry"])
def test_a_step_cluster_whose_slurm_job_is_cancelled_fails_or_retries(
        require_slurm, workdir, retry):  # noqa: F811
    proc = subprocess.Popen(
        [sys.executable, str(FLOWS / "slurm_cancel_flow.py"), "run",
         *(["--with", "retry:times=1,minutes_between_retries=0"] if retry else [])],
        cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    deadline = time.time() + 180
    while not (workdir / "job-0").exists() or not (workdir / "job-0").read_text():
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    first = (workdir / "job-0").read_text()
    subprocess.run(["scancel", first], check=True, timeout=30)
    _, err = proc.communicate(timeout=300)
    run = Flow("SlurmCancelFlow").latest_run
    jobs = {first} | ({(workdir / "job-1").read_text()} if retry else set())
    if retry:
        assert proc.returncode == 0, err
        task = run["on_slurm"].task
        assert task.attempts == [0, 1] and task.data.job != first
    else:
        assert proc.returncode == 1, err
        last = err.strip().splitlines()[-1]
        assert "on_slurm" in last and "Traceback" not in err, err
        assert "cancel" in err.lower() and "Cancelled: the task was cancelled" not in err, err
        assert run.status == "failed"
    assert not jobs & _slurm_jobs()  # no job of either cluster is left
    assert not list(workdir.glob(".daskflow/slurm-logs/.daskflow-tls-*"))
