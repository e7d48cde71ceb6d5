"""Failure diagnosis, in-process: what nannies and Dask say of a dead worker, as causes.

The nanny's events are made as distributed and daskflow's nanny plugin make them
(``worker_memory.py``'s ``worker-restart-memory``; ``_exit_watch.WatchExits``), and a
real ``KilledWorker`` carries the worker's state.
"""

from __future__ import annotations

import logging
import threading
import time

import msgpack
import pytest
from distributed.core import Status
from distributed.scheduler import KilledWorker, WorkerState

from daskflow import causes
from daskflow.clusters.deaths import NannyAccount, exit_words, nanny_death
from daskflow.exceptions import TaskFailed
from daskflow.runtime._exit_watch import journal_name, read_journal
from daskflow.runtime.attempts import death_record, error_of, lost_message
from daskflow.runtime.diagnosis import (
    Deaths,
    LostWorker,
    NannyReports,
    explain,
    lost_worker,
    quiet_once_lost,
    run_stopped,
    scheduler_gone,
)

pytestmark = pytest.mark.fast

PATHSPEC = "/".join(["CrashFlow", "17", "work", "3"])  # a task's pathspec
ADDRESS = "tcp://127.0.0.1:40002"
MiB = 2**20


def worker_state(memory_limit: int = 600 * MiB) -> WorkerState:
    return WorkerState(address=ADDRESS, pid=31337, name=0, nthreads=1,
                       memory_limit=memory_limit, local_directory="", nanny="",
                       server_id="w", status=Status.running)


class Erred:
    """A future as the driver sees one that Dask failed with ``exc``."""

    def __init__(self, key: str, exc: BaseException) -> None:
        self.key, self.status, self._exc = key, "error", exc

    def exception(self) -> BaseException:
        return self._exc


@pytest.mark.parametrize("exitcode, said", [
    (-9, "it was killed by signal 9 (SIGKILL)"),
    (-6, "it was killed by signal 6 (SIGABRT)"),
    (-11, "it was killed by signal 11 (SIGSEGV)"),
    (3, "it exited with status 3"),
    (255, "it was killed by an unknown signal"),
])
def test_an_exit_the_nanny_saw_is_a_lost_worker_said_plainly(exitcode: int, said: str) -> None:
    death = nanny_death(NannyAccount(exitcode=exitcode), 600 * MiB)
    assert (death.cause, death.message) == (causes.WORKER_LOST, said)
    assert exit_words(exitcode) == said.removeprefix("it ")


def test_the_memory_monitor_stopping_a_worker_is_out_of_memory() -> None:
    # what distributed's NannyMemoryManager logs before it terminates the process
    event = {"worker": ADDRESS, "pid": 31337, "rss": 640 * MiB}
    death = nanny_death(NannyAccount(exitcode=-15, memory=event), 600 * MiB)
    assert death.cause == causes.OUT_OF_MEMORY
    assert death.message == ("it ran out of memory: it used 640 MiB, over 95% of its 600 MiB "
                             "limit, and Dask's nanny stopped it")


def test_no_word_from_the_nanny_is_still_a_lost_worker() -> None:
    death = nanny_death(None, None)
    assert death.cause == causes.WORKER_LOST and "nothing says why" in death.message


def test_reports_hand_over_what_the_nannies_said_of_one_worker() -> None:
    reports = NannyReports()
    reports.heard_memory((time.time(), {"worker": ADDRESS, "pid": 1, "rss": 700 * MiB}))
    reports.heard_exit((time.time(), {"worker": "tcp://127.0.0.1:1", "exitcode": -9,
                                      "journals": {}}))
    later = threading.Timer(0.1, reports.heard_exit, args=(
        (time.time(), {"worker": ADDRESS, "exitcode": -15, "journals": {"k": b"x"}}),))
    later.start()  # the nanny's word trails the scheduler's: it is waited for
    account = reports.account(ADDRESS, wait=5)
    assert account == NannyAccount(-15, {"worker": ADDRESS, "pid": 1, "rss": 700 * MiB},
                                   {"k": b"x"})
    assert reports.account(ADDRESS, wait=0) == NannyAccount()  # taken once
    assert reports.account("tcp://127.0.0.1:1", wait=0).exitcode == -9


def test_a_memory_kill_named_by_the_predecessors_address_is_found_by_its_pid() -> None:
    # a nanny names a worker process that it restarted by the previous process's address
    # until the new one has told it its own (the memory monitor may stop it before)
    reports = NannyReports()
    reports.heard_memory((time.time(), {"worker": "tcp://127.0.0.1:1", "pid": 4242,
                                        "rss": 700 * MiB}))
    account = reports.account(ADDRESS, wait=0, pid=4242)
    assert account.memory == {"worker": "tcp://127.0.0.1:1", "pid": 4242, "rss": 700 * MiB}
    assert reports.account("tcp://127.0.0.1:1", wait=0) == NannyAccount()  # taken once
    assert reports.account(ADDRESS, wait=0, pid=7) == NannyAccount()


def test_a_killed_worker_names_the_worker_and_the_task_it_blames() -> None:
    killed = lost_worker(Erred("work-3-17", KilledWorker("work-3-17", worker_state(), 0)))
    assert killed == LostWorker("work-3-17", ADDRESS, 0, 600 * MiB, 31337)
    upstream = lost_worker(Erred("end-4-17", KilledWorker("work-3-17", worker_state(), 0)))
    assert upstream.task == "work-3-17"  # lost with the task it waited for
    assert lost_worker(Erred("work-3-17", ValueError("no"))) is None


def test_deaths_hold_what_a_worker_took_until_it_is_diagnosed() -> None:
    deaths = Deaths()
    worker = LostWorker("a", ADDRESS, 0, None)
    assert deaths.lost("default", worker, "future-a", "a") is True  # diagnose it
    assert deaths.lost("default", worker, "batch-b", "b") is False  # the same death
    assert deaths.with_parent("a", "future-c") is False            # waits for "a" to rerun
    assert deaths.diagnosed(ADDRESS) == (worker, ["future-a", "batch-b"])
    assert deaths.sent_again("a") == ["future-c"]
    assert deaths.with_parent("a", "future-d") is True             # "a" runs again already
    deaths.lost("default", LostWorker("a", "tcp://127.0.0.1:3", 1, None), "future-a", "a")
    assert deaths.with_parent("a", "future-e") is False            # lost again: waits again
    assert all(deaths.unstarted_loss("x") for _ in range(4)) and not deaths.unstarted_loss("x")


def test_a_dead_attempts_record_says_its_cause_and_how() -> None:
    start = {"started_at": 10.0, "pid": 4242, "worker": ADDRESS, "frames": [], "parents": []}
    record = death_record(start, 1, causes.OUT_OF_MEMORY,
                          lost_message(start, 1, "it ran out of memory"), ended=12.0)
    assert record["status"] == "failed" and record["cause"] == causes.OUT_OF_MEMORY
    assert record["error"]["message"] == (
        "the worker process (pid 4242) running it died during attempt 1: it ran out of "
        "memory; @retry runs a task again after such a crash")
    assert causes.of_record(record) == causes.OUT_OF_MEMORY
    unrecorded = error_of(None, start, 0)  # an attempt nobody wrote a record for
    assert unrecorded["type"] == "WorkerDied" and "(killed, crashed" in unrecorded["message"]


def test_records_written_before_causes_say_theirs_through_the_error() -> None:
    assert causes.of_record({"status": "ok"}) is None
    assert causes.of_record({"status": "failed", "error": {"type": "ValueError"}}) == "exception"
    assert causes.of_record({"status": "failed", "error": {
        "type": "TimeoutError", "message": "ran longer than its @timeout of 3s"}}) == "timeout"
    assert causes.of_record({"status": "failed", "error": {"type": "WorkerDied"}}) == \
        "worker-lost"


def test_a_journal_cut_short_by_a_kill_gives_its_whole_notes() -> None:
    notes = [("s", {"task_id": "7", "attempt": 0, "start": {}}),
             ("e", {"task_id": "7", "attempt": 0, "done": {"status": "ok"}})]
    data = b"".join(msgpack.packb(n) for n in notes)
    assert read_journal(data) == [tuple(n) for n in notes]
    assert read_journal(data + msgpack.packb(("s", {"task_id": "8"}))[:-3]) == \
        [tuple(n) for n in notes]
    assert journal_name("work-4x2.1-17") == "work-4x2.1-17"


def test_dasks_own_failures_are_said_plainly() -> None:
    cancelled = explain(PATHSPEC, None)
    assert (cancelled.type_name, cancelled.message) == ("Cancelled", "the task was cancelled")
    killed = explain(PATHSPEC, KilledWorker("work-3-17", worker_state(), 3))
    assert killed.type_name == "WorkerDied" and "kept dying" in killed.message
    assert killed.cause == causes.WORKER_LOST and ADDRESS in killed.message
    other = explain(PATHSPEC, OSError("connection lost"))
    assert (other.type_name, other.message, other.cause) == (
        "OSError", "connection lost", "exception")


def test_the_backends_diagnosis_comes_first() -> None:
    class OutOfMemory(Exception):
        cause = causes.OUT_OF_MEMORY

    said = explain(PATHSPEC, OSError("worker lost"),
                   OutOfMemory("SLURM job 12 was killed for using more than 1 GiB"))
    assert (said.type_name, said.message, said.cause) == (
        "OutOfMemory", "SLURM job 12 was killed for using more than 1 GiB", "out-of-memory")


def test_a_failure_line_says_the_cause_where_the_step_did_not_raise() -> None:
    assert TaskFailed(PATHSPEC, "ValueError", "bad").explained() == "raised ValueError: bad"
    died = TaskFailed(PATHSPEC, "WorkerDied", "it was killed", cause="worker-lost")
    assert died.explained() == "failed (worker-lost): it was killed"


# -- what the whole run needs, gone ------------------------------------------------------------

RUN = "SlowForeachFlow/1796574492537216"
#: a task's own failure (its worker died): not the run's
DIED = TaskFailed(PATHSPEC, "WorkerDied", "the worker process (pid 31337) running it died "
                  "during attempt 0: it was killed by signal 9 (SIGKILL)", cause="worker-lost")


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


def test_a_task_that_finished_on_a_worker_that_died_lost_only_its_result(tmp_path) -> None:
    # Its worker died a moment after it ended, before the scheduler heard: the attempt
    # stands (no dead attempt to count against @retry), and a rerun returns what it stored.
    from daskflow.datastore import ArtifactStore
    from daskflow.runtime.attempts import end_lost_attempt
    store = ArtifactStore(str(tmp_path / "root"), "SomeFlow")
    start = {"worker": "tcp://w:1", "pid": 7, "started_at": 1.0}
    store.claim_attempt("1", "inner", "5", start)
    store.write_done("1", "inner", "5", 0, {"attempt": 0, "status": "ok"})
    assert end_lost_attempt(store, "1", "inner", "5", "tcp://w:1", causes.WORKER_LOST,
                            "") is None
    assert store.read_done("1", "inner", "5", 0)["status"] == "ok"
    # one that was running there is recorded dead
    store.claim_attempt("1", "work", "7", start)
    ended = end_lost_attempt(store, "1", "work", "7", "tcp://w:1", causes.WORKER_LOST, "")
    assert ended is not None and ended.attempt == 0 and ended.error["type"] == "WorkerDied"
    assert store.read_done("1", "work", "7", 0)["status"] == "failed"
