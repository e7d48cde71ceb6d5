"""The flow page's logic without a cluster: a run's counts as the page shows them, the
scheduler's side of the page, the link a run prints, and the observer that feeds it."""

from __future__ import annotations

import json
from types import SimpleNamespace

import dask.config
import pytest

from daskflow.dashboard import RunBoard, flow_page_link
from daskflow.dashboard import _on_scheduler
from daskflow.exceptions import TaskFailed
from daskflow.report.model import step_activity
from daskflow.runtime.events import Observers, RunObserver

pytestmark = pytest.mark.fast

STEPS = ["start", "work", "join", "end"]


def counts(board: RunBoard, step: str) -> dict:
    return {s["name"]: s for s in board.state(now=0.0)["steps"]}[step]


def test_a_foreach_counts_queued_running_done_failed_and_splits_not_sent_yet():
    board = RunBoard("PageFlow", "7", STEPS, flow_file="page_flow.py")
    board.finished("start", "1", ok=True)
    board.expanded("work", 40)
    board.submitted("work", 6)                      # a first few batches
    board.running_on("default", {"work": 2})
    board.batch_finished("work", ["2", "3"])
    work = counts(board, "work")
    assert (work["queued"], work["running"], work["done"], work["total"]) == (36, 2, 2, 40)
    board.running_on("default", {"work": 9})        # never more running than in flight
    assert counts(board, "work")["running"] == 4
    assert counts(board, "start")["done"] == 1 and board.status == "running"


def test_caught_retried_and_reused_tasks_count_apart():
    board = RunBoard("F", "7", STEPS)
    board.submitted("work", 3)
    board.caught("work", "3")
    board.finished("work", "2", ok=False, retrying=True)    # an attempt; another follows
    board.batch_finished("work", ["2", "3", "4"])
    board.finished("join", "5", ok=True, reused=True)
    work, join = counts(board, "work"), counts(board, "join")
    assert (work["done"], work["failed"], work["caught"], work["retried"]) == (2, 1, 1, 1)
    assert (join["reused"], join["done"]) == (1, 0)
    assert board.status == "running"


def test_a_failure_names_its_error_line_and_the_logs_command():
    board = RunBoard("PageFlow", "7", STEPS, flow_file="page_flow.py")
    board.expanded("work", 5)
    board.submitted("work", 2)
    failure = TaskFailed("/".join(["PageFlow", "7", "work", "3"]), "ValueError",
                         "split 1 <refuses> & stops" + "x" * 400 + "\nsecond line")
    board.finished("work", "3", ok=False, failure=failure)
    state = board.state(now=5.0)
    assert state["status"] == "failed" and state["finished_at"] == 5.0
    [shown] = state["failures"]
    assert shown["pathspec"] == "/".join(["PageFlow", "7", "work", "3"]) \
        and shown["type"] == "ValueError"
    assert shown["message"].startswith("split 1 <refuses> & stops")
    assert "second line" not in shown["message"] and len(shown["message"]) <= 303
    assert shown["logs"] == "python page_flow.py logs " + "/".join(["7", "work", "3"])
    work = counts(board, "work")   # the run stopped there: the rest will not run
    assert (work["failed"], work["queued"], work["cancelled"]) == (1, 0, 4)


def test_the_run_succeeds_at_end_and_a_run_let_go_of_unfinished_was_stopped():
    done = RunBoard("F", "1", STEPS)
    done.finished("end", "9", ok=True)
    done.ended()
    assert done.status == "succeeded"
    stopped = RunBoard("F", "2", STEPS)
    stopped.submitted("work", 3)
    stopped.running_on("default", {"work": 2})
    stopped.ended()
    assert stopped.status == "stopped" and counts(stopped, "work")["running"] == 0


def test_clusters_count_worker_seconds_and_cost_so_far_then_keep_their_totals():
    meter = SimpleNamespace(so_far=lambda: (3600.0, 1800.0))
    board = RunBoard("F", "1", STEPS)
    board.cluster_up("step-1", step="work", backend="slurm", description="slurm, 2 workers",
                     workers=2, dashboard="http://h:1/daskflow", price=0.5, meter=meter)
    board.cluster_up("default", step=None, backend="local", description="local",
                     workers=2, dashboard=None, price=None, meter=meter)
    state = board.state()
    step = state["clusters"][0]
    assert (step["held"], step["used"], step["cost"], step["up"]) == (3600.0, 1800.0, 0.5, True)
    assert state["clusters"][1]["cost"] is None      # no price: no cost, not zero
    assert state["worker_seconds"] == 7200.0 and state["cost"] == 0.5
    board.cluster_down("step-1", held=7200.0, used=7000.0)
    step = board.state()["clusters"][0]
    assert (step["held"], step["cost"], step["up"]) == (7200.0, 1.0, False)


def test_the_state_stays_small_however_wide_the_run():
    board = RunBoard("F", "1", STEPS)
    board.expanded("work", 100_000)
    for first in range(0, 100_000, 50):
        board.submitted("work", 50)
        board.batch_finished("work", [str(i) for i in range(first, first + 50)])
    text = json.dumps(board.state())
    assert counts(board, "work")["done"] == 100_000 and len(text) < 2000


def test_the_printed_link_is_the_flow_page_beside_dasks_own():
    assert flow_page_link("http://127.0.0.1:8787/status") == "http://127.0.0.1:8787/daskflow"
    assert flow_page_link("https://h/proxy/8787/status") == "https://h/proxy/8787/daskflow"
    assert flow_page_link(None) is None
    with dask.config.set({"daskflow.dashboard.flow-page": False}):
        assert flow_page_link("http://h:8787/status") == "http://h:8787/status"


def test_a_steps_time_by_activity_adds_up_over_its_clusters():
    merged = step_activity([{"steps": {"a": {"compute": 1.0, "spill": 0.5, "span": "F/1/a"}}},
                            {"name": "x"}, {"steps": {"a": {"compute": 2.0}}}])
    assert merged["a"]["compute"] == 3.0 and merged["a"]["spill"] == 0.5
    assert merged["a"]["span"] == "F/1/a" and merged["a"]["idle"] == 0.0


def test_every_event_reaches_every_observer():
    heard: list[tuple[str, int]] = []

    class Ear(RunObserver):
        def __init__(self, number):
            self.number = number

        def __getattribute__(self, name):
            if name in EVENTS:
                return lambda **kw: heard.append((name, object.__getattribute__(self,
                                                                                 "number")))
            return object.__getattribute__(self, name)

    EVENTS = [n for n in vars(RunObserver) if not n.startswith("_")
              and n != "wants_task_started"]
    both = Observers(Ear(1), Ear(2))
    for name in EVENTS:
        getattr(both, name)()
    assert heard == [(name, n) for name in EVENTS for n in (1, 2)]
    assert not Observers(RunObserver()).wants_task_started()


# -- the scheduler's side, on plain objects --------------------------------------------


def _task(key):
    return SimpleNamespace(key=key)


def test_the_scheduler_counts_a_runs_tasks_running_by_step():
    board = _on_scheduler.FlowBoard("<html>")
    board.scheduler = SimpleNamespace(workers={
        "a": SimpleNamespace(nthreads=2, processing=[_task("work-2x5-7"), _task("work-9-7"),
                                                     _task("work-11-7")]),
        "b": SimpleNamespace(nthreads=1, processing=[_task("join-30-7"),
                                                     _task("work-4-8"), _task(("x", 1))]),
    })
    assert board.running_tasks("7") == {"work": 2, "join": 1}


def test_the_scheduler_keeps_running_runs_and_the_latest_finished_ones():
    board = _on_scheduler.FlowBoard("<html>")
    for i in range(_on_scheduler.KEEP_FINISHED + 5):
        board.update({"key": f"F/{i}", "status": "succeeded", "started_at": i}, None, "c")
    board.update({"key": "F/live", "status": "running", "started_at": 0}, "<svg/>", "c")
    snapshot = board.snapshot(after=0)
    keys = [r["key"] for r in snapshot["runs"]]
    assert keys[0] == "F/live" and len(keys) == _on_scheduler.KEEP_FINISHED + 1
    assert snapshot["runs"][0]["graph"] == "<svg/>"
    assert board.snapshot(after=snapshot["version"])["runs"][0]["graph"] is None
    board.remove_client(None, "c")                 # its driver went without a word
    assert board.runs["F/live"]["state"]["status"] == "driver gone"
