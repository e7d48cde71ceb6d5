"""@catch on the splits of a foreach: the caught ones are counted where the run says how
many tasks finished, and `resume --caught` reruns only them."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from daskflow import Flow
from daskflow.runtime.events import PlainLog
from daskflow.runtime.progress import RichProgress


def test_caught_splits_are_counted_and_resume_caught_reruns_only_them(run_flow, workdir):
    result = run_flow("catch_foreach_flow.py", "run", env={"CATCH_FAIL": "2,5"})
    assert result.returncode == 0, result.stderr
    assert "Step 'work': 8/8 tasks finished (2 of them failed, caught by @catch)." \
        in result.stdout
    assert "finished 11 tasks in" in result.stdout
    assert "s, 2 of them failed and were caught by @catch." in result.stdout
    origin = Flow("CatchForeachFlow").latest_run
    assert origin.data.caught == [2, 5]

    again = run_flow("catch_foreach_flow.py", "resume", "--caught")  # now they succeed
    assert again.returncode == 0, again.stderr
    run = Flow("CatchForeachFlow").latest_run
    assert run.id != origin.id and run.successful and run.data.caught == []
    assert run.data.squares == {i: i * i for i in range(8)}
    rerun = {index for index, run_id in run.data.ran_in.items() if run_id == run.id}
    assert rerun == {2, 5}                       # the other 6 splits were cloned
    assert "finished 4 tasks in" in again.stdout  # the 2 splits, the join and end

    nothing = run_flow("catch_foreach_flow.py", "resume", "--caught")
    assert nothing.returncode == 1
    assert nothing.stderr.strip() == (
        f"Cannot resume: Run CatchForeachFlow/{run.id} has no task whose failure @catch "
        f"caught: there is nothing to rerun. Name a step to rerun from: resume STEP.")


def test_a_failed_run_prints_no_usage_of_free_clusters(run_flow, workdir):
    result = run_flow("failing.py", "run")
    assert result.returncode == 1
    assert "worker-s held" not in result.stdout
    ok = run_flow("linear_params.py", "run")
    assert ok.returncode == 0 and "worker-s held" in ok.stdout


@pytest.mark.fast
def test_the_plain_log_counts_caught_splits_as_they_finish(capsys):
    log = PlainLog()
    log.run_started(flow_name="F", run_id="1", datastore="s3://bucket/F")
    log.foreach_expanded(step="start", target="work", count=3)
    log.task_finished(step="work", task_id="2", ok=True, foreach_depth=1)
    log.task_caught(step="work", task_id="3")
    log.task_finished(step="work", task_id="3", ok=True, foreach_depth=1)
    log.task_finished(step="work", task_id="4", ok=True, foreach_depth=1)
    log.task_caught(step="end", task_id="5")
    log.task_finished(step="end", task_id="5", ok=True, foreach_depth=0)
    free = {"name": "default", "backend": "local", "worker_seconds_held": 4.0,
            "worker_seconds_used": 0.0, "cost": 0.0}
    priced = {**free, "name": "step-1", "backend": "aws-ec2", "cost": 0.25,
              "currency": "USD"}
    log.run_finished(flow_name="F", run_id="1", successful=False, tasks=5, seconds=1.0,
                     clusters=[free, priced])
    lines = [line.split(" ", 1)[1] for line in capsys.readouterr().out.splitlines()]
    assert lines == [
        "Workflow starting (run-id 1): F, datastore s3://bucket/F",
        "Foreach 'start' fans out to 3 tasks of 'work'.",
        "Step 'work': 1/3 tasks finished.",
        "Step 'work': 2/3 tasks finished (1 of them failed, caught by @catch).",
        "Step 'work': 3/3 tasks finished (1 of them failed, caught by @catch).",
        "Task 1/end/5 failed; @catch caught it and the flow goes on.",
        # after a failed run, only what cost something
        "Cluster step-1 (aws-ec2): 4.0 worker-s held, 0.0 used (0%), est. cost 0.2500 USD"]


@pytest.mark.fast
def test_the_live_view_shows_caught_splits():
    console = Console(file=io.StringIO(), force_terminal=True, width=120, height=40)
    view = RichProgress(console=console, refresh_per_second=20)
    view.run_started(flow_name="F", run_id="1", datastore="/d")
    view.close()
    view.foreach_expanded(step="start", target="work", count=2)
    for task_id in ("2", "3"):
        view.task_submitted(step="work", task_id=task_id, foreach_depth=1)
    view.task_caught(step="work", task_id="3")
    view.tasks_finished(step="work", task_ids=["2", "3"], foreach_depth=1)
    buffer = io.StringIO()
    Console(file=buffer, width=120, color_system=None).print(view._render_locked())
    text = buffer.getvalue()
    assert "2 tasks done, 1 caught by @catch" in text
    [row] = [line for line in text.splitlines() if " work " in line]
    assert "2/2" in row and "1 caught by @catch" in row
