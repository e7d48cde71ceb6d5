"""@retry, @catch, @timeout and the faults a run must survive, each through a flow file
run as a subprocess and checked with the client API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from daskflow import Flow
from daskflow.client import Task

from ..conftest import FLOWS, _env


def wait_for(path: Path, timeout: float = 60) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def popen(flow: str, *args: str, cwd: Path) -> subprocess.Popen[str]:
    # A session of its own, as a terminal gives a command: Ctrl-C reaches the group.
    return subprocess.Popen([sys.executable, str(FLOWS / flow), *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(), start_new_session=True)


def test_retry_until_it_works(run_flow, workdir):
    result = run_flow("retry_flow.py", "run")
    assert result.returncode == 0, result.stderr
    run = Flow("RetryFlow").latest_run
    task = run["flaky"].task
    assert task.attempts == [0, 1, 2]
    assert task.data.attempt_that_worked == 2
    assert "garbage" not in task.data  # a failed attempt's artifacts never show
    for attempt in (0, 1):
        old = Task(task.pathspec, attempt=attempt)
        assert old.stdout == f"attempt {attempt}\n"
        assert old.exception.exception == f"flaky failure {attempt}"
        assert not old.successful and old.failure_cause == "exception"
        assert old.resources.cpu == 1 and old.resources.memory  # what it ran with
    assert task.failure_cause is None  # the attempt that worked
    logs = run_flow("retry_flow.py", "logs", f"{run.id}/flaky", "--attempt", "1")
    assert logs.stdout == "attempt 1\n"
    assert "RuntimeError: flaky failure 1" in logs.stderr
    assert "[attempt 1 failed (exception)]" in logs.stderr
    assert "earlier failed attempts: 0 (exception)" in logs.stderr
    assert "Task {}/flaky/2 failed (attempt 0, exception); retrying.".format(run.id) in \
        result.stdout
    assert "Retried 2 failed attempts: 2 exception." in result.stdout


def test_retry_from_the_command_line(run_flow, workdir):
    result = run_flow("failing.py", "run", "--with", "retry:times=1,minutes_between_retries=0")
    assert result.returncode == 1
    task = Flow("FailingFlow").latest_run["explode"].task
    assert task.attempts == [0, 1]
    bad = run_flow("failing.py", "run", "--with", "retyr")
    assert bad.returncode == 1 and "unknown decorator 'retyr'. Did you mean 'retry'?" in bad.stderr
    bad = run_flow("failing.py", "run", "--with", "retry:tims=2")
    assert bad.returncode == 1 and "@retry got an unknown argument 'tims'" in bad.stderr


def test_catch_goes_on_along_the_graph(run_flow, workdir):
    result = run_flow("catch_flow.py", "run")
    assert result.returncode == 0, result.stderr
    run = Flow("CatchFlow").latest_run
    assert run.successful
    a = run["a"].task
    # as Metaflow 2.19.39 (`python catch_flow.py run`): the second attempt fails and is
    # caught in that attempt
    assert a.attempts == [0, 1]
    error = a.data.a_error
    # As Metaflow: the qualified type, the message, the stack trace as str()
    assert error.type == "builtins.KeyError" and "missing key in a" in error.exception
    assert str(error) == error.stacktrace and "catch_flow.py" in error.stacktrace
    assert 'raise KeyError("missing key in a")' in error.stacktrace
    # what the step assigned before it failed is kept, as Metaflow keeps it
    assert a.data.lost == "set by a failed attempt" and a.data.kept == "set before the failure"
    assert run["start"].task.data.start_error is None  # set to None when nothing failed
    join = run["join"].task
    assert join.data.join_error.type == "builtins.ZeroDivisionError"
    summary = run.data.summary["a_error"]
    assert summary.startswith("Traceback") and "ZeroDivisionError: division by zero" in summary


def test_catch_on_a_foreach_step_is_refused(run_flow, workdir, tmp_path):
    flow = (FLOWS / "foreach.py").read_text().replace(
        "    @step\n    def start", "    @catch(var='e')\n    @step\n    def start").replace(
        "from daskflow import FlowSpec", "from daskflow import catch, FlowSpec")
    path = workdir / "catch_foreach.py"
    path.write_text(flow)
    result = subprocess.run([sys.executable, str(path), "run"], cwd=workdir,
                            capture_output=True, text=True, env=_env())
    assert result.returncode == 1
    assert "@catch cannot be used on step 'start'" in result.stderr
    assert not (workdir / ".daskflow").exists()


def test_timeout_really_stops_the_task(run_flow, workdir):
    result = run_flow("timeout_flow.py", "run")
    assert result.returncode == 0, result.stderr
    run = Flow("TimeoutFlow").latest_run
    slow = run["slow"].task
    assert slow.attempts == [0, 1] and slow.data.finished_on_attempt == 1
    first = Task(slow.pathspec, attempt=0)
    # Metaflow 2.19.39's TimeoutException and its message (`python timeout_flow.py run`)
    assert first.exception.type == "metaflow.plugins.timeout_decorator.TimeoutException"
    assert first.failure_cause == "timeout"
    assert first.exception.exception.startswith(
        "Step slow timed out after 0 hours, 0 minutes, 3 seconds\n"
        "Stack when the timeout was raised:\n>    File ")
    assert slow.data.hung_process_alive is False, "the hung attempt's process must be gone"
    stuck = run["join"].task.data.stuck_error
    assert stuck.type == "metaflow.plugins.timeout_decorator.TimeoutException"
    assert run["stuck"].task.attempts == [0]  # caught in the attempt that timed out


@pytest.mark.parametrize("mode,said,message", [
    ("exit", "raised SystemExit", "the step called sys.exit(3)"),
    ("bad_exception", "raised Unpicklable", "holds a lock"),
    ("bad_artifact", "raised ArtifactError", "Artifact 'handle' (lock) cannot be stored"),
    ("abort", "failed (worker-lost)", "running it died during attempt 0"),
])
def test_awkward_failures_are_that_tasks_failure(run_flow, workdir, mode, said, message):
    result = run_flow("crash_flow.py", "run", "--mode", mode)
    assert result.returncode == 1, result.stdout
    assert message in result.stderr
    run = Flow("CrashFlow").latest_run
    assert f"task CrashFlow/{run.id}/crash/" in result.stderr
    assert said in result.stderr  # the cause, where the step did not raise
    assert not run.successful and run.status == "failed"
    assert run["crash"].task.attempts == [0]  # one failed attempt, as in Metaflow
    if mode == "abort":  # its output up to the crash is kept, and how it died is said
        task = run["crash"].task
        assert "printed before the crash" in task.stdout
        assert "written to fd 2 before the crash" in task.stderr
        assert "killed by signal 6 (SIGABRT)" in result.stderr


def test_megabytes_of_output_are_kept(run_flow, workdir):
    result = run_flow("crash_flow.py", "run", "--mode", "big_output")
    assert result.returncode == 0, result.stderr
    task = Flow("CrashFlow").latest_run["crash"].task
    lines = task.stdout.splitlines()
    assert len(lines) == 200_000 and lines[-1].startswith("line 0199999")
    assert "the terminal shows the first" in result.stdout


def test_killed_worker_task_is_retried_elsewhere_with_retry(workdir):
    # As Metaflow: a crashed process is one failed attempt; @retry runs it again.
    proc = popen("slow_foreach.py", "run", "--n", "3", "--nap", "4", "--with", "retry",
                 cwd=workdir)
    pid = int(wait_for(workdir / "pid-1-0"))
    os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    run = Flow("SlowForeachFlow").latest_run
    assert run.data.total == 30
    killed = next(t for t in run["work"] if t.index == 1)
    assert killed.attempts == [0, 1]
    dead = Task(killed.pathspec, attempt=0)  # left no result; the driver recorded why
    assert not dead.successful and dead.failure_cause == "worker-lost"
    assert "killed by signal 9 (SIGKILL)" in dead.exception.exception
    assert killed.successful and killed.data.out == 10


def test_a_lone_task_whose_worker_died_claims_attempt_1_beside_its_attempt_0(run_flow, workdir):
    # A step that never runs in batches claims its attempt 0 with no listing; run again
    # after its worker died, it finds that attempt and claims the next, never over it.
    result = run_flow("lone_death_flow.py", "run")
    assert result.returncode == 0, result.stderr
    run = Flow("LoneDeathFlow").latest_run
    task = run["fragile"].task
    assert task.attempts == [0, 1] and task.data.attempt_that_worked == 1
    dead = Task(task.pathspec, attempt=0)
    assert not dead.successful and dead.failure_cause == "worker-lost"
    assert "dies" in dead.stdout  # its own output, kept: its records are its own
    assert task.successful and f"process {task.data.pid} " not in dead.stdout
    assert [t.attempts for t in (run["start"].task, run["end"].task)] == [[0], [0]]


def test_ctrl_c_cancels_closes_and_can_resume(workdir):
    proc = popen("slow_foreach.py", "run", "--n", "4", "--nap", "30", cwd=workdir)
    worker_pid = int(wait_for(workdir / "pid-0-0"))
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the driver and its workers get SIGINT
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Interrupted" in err and "Traceback" not in err and "CancelledError" not in err
    run = Flow("SlowForeachFlow").latest_run
    assert run.status == "failed" and run.record["interrupted"] is True
    deadline = time.time() + 30
    while psutil.pid_exists(worker_pid) and time.time() < deadline:
        time.sleep(0.2)
    assert not psutil.pid_exists(worker_pid), "the local cluster's workers must be gone"
    (workdir / "no-nap").write_text("")  # the rerun splits need not wait 30 s
    result = subprocess.run([sys.executable, str(FLOWS / "slow_foreach.py"), "resume",
                             "--origin-run-id", run.id], cwd=workdir, capture_output=True,
                            text=True, env=_env(), timeout=180)
    assert result.returncode == 0, result.stderr
    resumed = Flow("SlowForeachFlow").latest_run
    assert resumed.origin_run_id == run.id and resumed.data.total == 60


def test_ctrl_c_while_the_cluster_starts_is_not_lost(workdir):
    proc = popen("slow_foreach.py", "run", "--n", "2", "--nap", "30", cwd=workdir)
    deadline = time.time() + 60
    # "{}" claims the run id first; the full record (with "status") comes just before
    # the cluster starts
    while not any('"status"' in path.read_text()
                  for path in workdir.glob(".daskflow/SlowForeachFlow/*/_run.json")):
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGINT)  # the run is recorded: its cluster is starting
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Interrupted" in err and "Traceback" not in err
    run = Flow("SlowForeachFlow").latest_run
    assert run.status == "failed" and run.record["interrupted"] is True


def test_driver_killed_then_resume_completes(workdir):
    proc = popen("slow_foreach.py", "run", "--n", "6", "--nap", "1.5", cwd=workdir)
    deadline = time.time() + 120
    while time.time() < deadline:  # kill the driver once two splits have finished
        run = None
        try:
            run = Flow("SlowForeachFlow").latest_run  # None while its id is only claimed
            if run is not None and sum(t.successful for t in run["work"]) >= 2:
                break
        except LookupError:
            pass
        time.sleep(0.1)
    proc.kill()
    proc.communicate(timeout=30)
    killed = Flow("SlowForeachFlow").latest_run
    # its driver is gone from this host: the run reads as failed, not running forever
    assert not killed.finished and killed.status == "failed" and killed.driver_lost
    finished = [t for t in killed["work"] if t.successful]
    assert finished, "some splits should have finished before the kill"
    for task in killed["work"]:  # stored tasks stay consistent and readable
        if task.finished:
            assert task.data.out == task.index * 10
    result = subprocess.run([sys.executable, str(FLOWS / "slow_foreach.py"), "resume"],
                            cwd=workdir, capture_output=True, text=True, env=_env(),
                            timeout=180)
    assert result.returncode == 0, result.stderr
    resumed = Flow("SlowForeachFlow").latest_run
    assert resumed.origin_run_id == killed.id and resumed.successful
    assert resumed.data.total == 10 * sum(range(6))
    cloned = [t for t in resumed["work"] if t.origin_pathspec]
    assert len(cloned) >= len(finished)
    assert all(t.data.ran_in == killed.id for t in cloned)  # reused, not recomputed
    assert resumed["start"].task.origin_pathspec is not None


def test_resume_reruns_only_the_failed_split(run_flow, workdir):
    (workdir / "fail-marker").write_text("x")
    result = run_flow("slow_foreach.py", "run", "--n", "5", "--nap", "0", "--fail_index", "3")
    assert result.returncode == 1
    origin = Flow("SlowForeachFlow").latest_run
    (workdir / "fail-marker").unlink()
    result = run_flow("slow_foreach.py", "resume")
    assert result.returncode == 0, result.stderr
    run = Flow("SlowForeachFlow").latest_run
    assert run.origin_run_id == origin.id and run.data.total == 100
    ran_in = {t.index: t.data.ran_in for t in run["work"]}
    assert ran_in[3] == run.id
    assert {i: r for i, r in ran_in.items() if i != 3} == {i: origin.id for i in (0, 1, 2, 4)}
    assert run["start"].task.origin_pathspec.startswith(f"SlowForeachFlow/{origin.id}/start/")
    assert run["join"].task.origin_pathspec is None


def test_resume_from_a_chosen_step(run_flow, workdir):
    assert run_flow("linear_params.py", "run", "--count", "9").returncode == 0
    origin = Flow("LinearFlow").latest_run
    result = run_flow("linear_params.py", "resume", "middle")
    assert result.returncode == 0, result.stderr
    run = Flow("LinearFlow").latest_run
    assert run.origin_run_id == origin.id
    assert run["start"].task.origin_pathspec is not None
    assert run["middle"].task.origin_pathspec is None
    assert run.data.summary["count"] == 9  # the origin's parameters
    assert run["start"].task.stdout == "hello world\n"  # logs come along with a clone


def test_resume_refuses_what_it_cannot_do(run_flow, workdir):
    assert run_flow("switch.py", "run").returncode == 0
    nothing = run_flow("switch.py", "resume")
    assert nothing.returncode == 1 and "there is no failed step" in nothing.stderr
    unknown = run_flow("switch.py", "resume", "smal")
    assert unknown.returncode == 1 and "Did you mean 'small'?" in unknown.stderr
    missing = run_flow("switch.py", "resume", "--origin-run-id", "123")
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_two_runs_at_once_in_one_folder(workdir):
    procs = [popen("foreach.py", "run", "--n", str(n), cwd=workdir) for n in (20, 30)]
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    runs = list(Flow("ForeachFlow"))
    assert len(runs) == 2
    totals = sorted(r["join"].task.data.total for r in runs)
    assert totals == [2 * sum(range(20)), 2 * sum(range(30))]
    counts = sorted(len(r["work"]) for r in runs)
    assert counts == [20, 30]


def test_sigterm_stops_the_run_and_closes_the_cluster(workdir):
    proc = popen("slow_foreach.py", "run", "--n", "2", "--nap", "30", cwd=workdir)
    worker_pid = int(wait_for(workdir / "pid-0-0"))
    proc.terminate()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    run = Flow("SlowForeachFlow").latest_run
    assert run.status == "failed" and run.record["interrupted"] is True
    assert all(c["stopped_at"] for c in run.record["clusters"])
    deadline = time.time() + 30
    while psutil.pid_exists(worker_pid) and time.time() < deadline:
        time.sleep(0.2)
    assert not psutil.pid_exists(worker_pid)
