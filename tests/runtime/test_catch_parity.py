"""@catch, @retry and @timeout as Metaflow behaves when a task's process dies, when it
times out inside a nested foreach, and on a num_parallel gang.

The expected values are what Metaflow 2.19.39 gives for the same flow files (their
``from daskflow import`` changed to ``from metaflow import``), each run with
``python <flow>.py run [--how ...|--mode ...]`` and read back with Metaflow's client.
"""

from __future__ import annotations

import pytest

from daskflow import Flow, Task

HANDLED = "metaflow.plugins.catch_decorator.FailureHandledByCatch"
HANDLED_MESSAGE = ("Task execution kept failing over 1 attempts. Your code did not raise an "
                   "exception. Something in the execution environment caused the failure.")
TIMEOUT = "metaflow.plugins.timeout_decorator.TimeoutException"


@pytest.mark.parametrize("how, last_line", [
    ("exit", "Task failed.\n"),
    ("segv", "Task failed with a segmentation fault.\n"),
])
def test_catch_goes_on_when_the_process_dies(run_flow, workdir, how, last_line):
    result = run_flow("death_flow.py", "run", "--how", how)
    assert result.returncode == 0, result.stderr
    run = Flow("DeathFlow").latest_run
    join = run["join"].task.data
    # Metaflow: split 1 of each inner foreach is caught as FailureHandledByCatch in a
    # second attempt; its siblings finish (no split is cancelled); the branch too
    assert join.seen == [(0, None, None, 0), (1, HANDLED, HANDLED_MESSAGE, None),
                         (2, None, None, 20)] * 2
    assert join.side_error == (HANDLED, HANDLED_MESSAGE)
    dead = [t for t in run["work"] if t.index == 1] + [run["side"].task]
    for task in dead:
        assert task.attempts == [0, 1]
        # what the dead attempt assigned is gone with it, as in Metaflow
        assert "before" not in task.data
        # its stderr ends as Metaflow's does
        assert Task(task.pathspec, attempt=0).stderr.endswith(last_line)
        assert Task(task.pathspec, attempt=1).exception is None
    if how == "segv":  # daskflow adds where the code was when it crashed
        stderr = Task(dead[0].pathspec, attempt=0).stderr
        assert "Fatal Python error: Segmentation fault" in stderr and "in work" in stderr


def test_a_segfault_without_catch_says_so_in_the_tasks_stderr(run_flow, workdir):
    result = run_flow("crash_flow.py", "run", "--mode", "segfault")
    assert result.returncode == 1
    assert "killed by signal 11 (SIGSEGV)" in result.stderr
    task = Flow("CrashFlow").latest_run["crash"].task
    assert task.attempts == [0]
    # Metaflow 2.19.39: the task's stderr is "Task failed with a segmentation fault."
    assert task.stderr.endswith("Task failed with a segmentation fault.\n")


def test_timeout_inside_a_nested_foreach_is_retried_then_caught(run_flow, workdir):
    # the hung splits sleep 10 minutes: the run ends well within the test's time only
    # because @timeout stops each attempt (a run that is well takes about 10 s)
    result = run_flow("timeout_foreach_flow.py", "run", timeout=90)
    assert result.returncode == 0, result.stderr
    run = Flow("TimeoutForeachFlow").latest_run
    seen = run["join_outer"].task.data.seen
    assert [(i, t, v) for i, t, _, v in seen] == [
        (0, None, 0), (1, TIMEOUT, None), (2, None, 20)] * 2
    message = seen[1][2].splitlines()
    # Metaflow: the head, then the stack where the step was, ending at the user's line
    assert message[:2] == ["Step work timed out after 0 hours, 0 minutes, 2 seconds",
                           "Stack when the timeout was raised:"]
    assert message[-2].startswith(">    File ") and message[-2].endswith(", in work")
    assert message[-1] == ">      time.sleep(600)"
    hung = next(t for t in run["work"] if t.index == 1)
    # Metaflow: two attempts, as @retry(times=1) says; the second is caught in itself
    assert hung.attempts == [0, 1]
    first, second = Task(hung.pathspec, attempt=0), Task(hung.pathspec, attempt=1)
    assert first.exception.type == TIMEOUT and second.exception is None
    assert first.stdout == "attempt 0\n" and second.stdout.startswith("attempt 1\n")
    assert all(t.attempts == [0] for t in run["work"] if t.index != 1)


def test_catch_and_retry_on_a_gang(run_flow, workdir):
    result = run_flow("gang_catch_flow.py", "run", "--mode", "raise")
    assert result.returncode == 0, result.stderr
    run = Flow("GangCatchFlow").latest_run
    # Metaflow: the whole gang runs twice (@retry(times=1)); node 1's second failure is
    # caught in that attempt
    assert run["join"].task.data.errors == [None, "builtins.ValueError"]
    assert sorted(t.attempts for t in run["train"]) == [[0, 1], [0, 1]]


def test_a_gang_node_whose_process_dies_is_retried_then_caught(run_flow, workdir):
    result = run_flow("gang_catch_flow.py", "run", "--mode", "exit")
    assert result.returncode == 0, result.stderr
    run = Flow("GangCatchFlow").latest_run
    # the gang runs twice, as in Metaflow; then, as for any task whose process died,
    # @catch stores FailureHandledByCatch in one more attempt of the dead node (Metaflow's
    # local runtime has node 0 catch "Subprocess failed" instead: its nodes are its
    # subprocesses)
    assert run["join"].task.data.errors == [None, HANDLED]
    control = run["train"].control_task
    dead = next(t for t in run["train"] if t.id != control.id)
    assert control.attempts == [0, 1] and dead.attempts == [0, 1, 2]
