"""Failure diagnosis, in-process: the nanny's real log lines and Dask's errors, explained."""

from __future__ import annotations

import logging

import dask.config
import pytest
from distributed.nanny import WorkerProcess

from daskflow.exceptions import TaskFailed
from daskflow.runtime.diagnosis import (
    dead_pid,
    explain,
    how_it_died,
    quiet_once_lost,
    run_stopped,
    scheduler_gone,
)

pytestmark = pytest.mark.fast

PATHSPEC = "CrashFlow/17/work/3"
#: what a task's next attempt records when its process died (runtime/task.py)
DIED = TaskFailed(PATHSPEC, "WorkerDied",
                  "the worker process (pid 31337) running it died during attempt 0 (killed, "
                  "crashed by a segfault or os._exit(), or out of memory) and left no result; "
                  "@retry runs a task again after such a crash", "")


def nanny_line(pid: int, exitcode: int) -> tuple[str, str]:
    """A line of ``Client.get_worker_logs(nanny=True)`` as a nanny logs its worker's end:
    distributed's own message, in distributed's log format."""
    message = WorkerProcess._death_message(None, pid, exitcode)  # type: ignore[arg-type]
    record = logging.LogRecord("distributed.nanny", logging.INFO, "nanny.py", 807, message,
                               None, None)
    formatter = logging.Formatter(dask.config.get("distributed.admin.log-format"))
    return "INFO", formatter.format(record)


def logs(*lines: tuple[str, str]) -> dict[str, list[tuple[str, str]]]:
    return {"tcp://127.0.0.1:40001": [("INFO", "... - distributed.nanny - INFO - Start "
                                       "Nanny at: 'tcp://127.0.0.1:40001'")],
            "tcp://127.0.0.1:40002": list(lines)}


@pytest.mark.parametrize("exitcode, said", [
    (-9, "it was killed by signal 9 (SIGKILL)"),
    (-6, "it was killed by signal 6 (SIGABRT)"),
    (-11, "it was killed by signal 11 (SIGSEGV)"),
    (3, "it exited with status 3"),
])
def test_the_nannys_account_of_a_dead_process_is_added(exitcode: int, said: str) -> None:
    told = how_it_died(DIED, logs(nanny_line(4242, -9), nanny_line(31337, exitcode)))
    assert told.message == f"{DIED.message}; {said}"
    assert (told.pathspec, told.type_name) == (PATHSPEC, "WorkerDied")


def test_a_line_as_a_nanny_wrote_it_on_this_machine() -> None:
    line = ("2026-05-01 14:02:11,512 - distributed.nanny - INFO - Worker process 31337 was "
            "killed by signal 9")
    assert how_it_died(DIED, logs(("INFO", line))).message.endswith(
        "; it was killed by signal 9 (SIGKILL)")


def test_no_account_leaves_the_failure_as_it_is() -> None:
    assert how_it_died(DIED, logs(nanny_line(4242, -9))) is DIED          # another pid
    assert how_it_died(DIED, logs(nanny_line(31337, 255))) is DIED        # unknown signal
    no_pid = TaskFailed(PATHSPEC, "WorkerDied", "the worker process running it died", "")
    assert dead_pid(no_pid) is None and how_it_died(no_pid, logs()) is no_pid
    assert dead_pid(DIED) == "31337"


def test_dasks_own_failures_are_said_plainly() -> None:
    from distributed.core import Status
    from distributed.scheduler import KilledWorker, WorkerState

    cancelled = explain(PATHSPEC, None)
    assert (cancelled.type_name, cancelled.message) == ("Cancelled", "the task was cancelled")
    worker = WorkerState(address="tcp://127.0.0.1:40002", pid=31337, name=0, nthreads=1,
                         memory_limit=0, local_directory="", nanny="", server_id="w",
                         status=Status.running)
    killed = explain(PATHSPEC, KilledWorker("work-3-17", worker, 3))
    assert killed.type_name == "WorkerDied" and "kept dying" in killed.message
    assert "tcp://127.0.0.1:40002" in killed.message
    other = explain(PATHSPEC, OSError("connection lost"))
    assert (other.type_name, other.message) == ("OSError", "connection lost")


def test_the_backends_diagnosis_comes_first() -> None:
    class OutOfMemory(Exception):
        pass

    said = explain(PATHSPEC, OSError("worker lost"),
                   OutOfMemory("SLURM job 12 was killed for using more than 1 GiB"))
    assert (said.type_name, said.message) == (
        "OutOfMemory", "SLURM job 12 was killed for using more than 1 GiB")


# -- what the whole run needs, gone ------------------------------------------------------------

RUN = "SlowForeachFlow/1796574492537216"


def test_a_scheduler_gone_is_one_line_with_the_command_that_resumes() -> None:
    stopped = run_stopped(scheduler_gone(RUN, "tcp://10.0.0.5:8786"), RUN,
                          "/nowhere/flows/slow_foreach.py", "tcp://10.0.0.5:8786")
    assert stopped.pathspec == RUN and "\n" not in stopped.message
    assert stopped.message.startswith("the Dask scheduler at tcp://10.0.0.5:8786 went away")
    assert stopped.message.endswith(
        "Start it again (or another one), then continue the run with: python "
        "/nowhere/flows/slow_foreach.py resume --origin-run-id 1796574492537216 "
        "--scheduler-address ADDRESS")


def test_a_datastore_gone_names_it_and_a_task_failure_stays_as_it_is() -> None:
    gone = TaskFailed(RUN, "DatastoreUnavailable", "the datastore s3://b/p stopped answering "
                      "while writing b/p/x: EndpointConnectionError: no (5 tries over 19 s).")
    stopped = run_stopped(gone, RUN, "flow.py", None)
    assert stopped.message.startswith(gone.message.rstrip("."))
    assert stopped.message.endswith("Once it answers again, continue the run with: python "
                                    "flow.py resume --origin-run-id 1796574492537216")
    assert run_stopped(DIED, RUN, "flow.py", None) is DIED


class _Client:
    status = "running"


def test_a_client_that_lost_its_scheduler_logs_nothing_while_the_run_ends(caplog) -> None:
    client, logger = _Client(), logging.getLogger("distributed.client")
    with caplog.at_level(logging.INFO, "distributed.client"), quiet_once_lost(client):
        logger.error("while connected")
        client.status = "connecting"
        logger.error("Failed to reconnect to scheduler after 10.00 seconds, closing client")
    logger.error("after the run")
    assert [r.getMessage() for r in caplog.records] == ["while connected", "after the run"]
