"""Short foreach splits run in batches, each still a task of its own (issue 18).

Flow files run as subprocesses, read back with the client; the batch objects are
looked at only to check that the splits did share Dask tasks."""

from __future__ import annotations

import json
from pathlib import Path

from daskflow import Flow
from daskflow.client import Task

UNBATCHED = {"DASK_DASKFLOW__RUN__BATCHING": "false"}


def batch_objects(workdir: Path, flow: str, run_id: str, step: str) -> list[list[dict]]:
    folder = workdir / ".daskflow" / flow / run_id / step / "_batches"
    return [json.loads(p.read_text())["entries"] for p in sorted(folder.glob("*.json"))]


def test_a_failing_split_in_a_batch_is_retried_alone(run_flow, workdir):
    result = run_flow("batch_flow.py", "run", "--max-num-splits", "300",
                      env={"BATCH_FAIL_AT": "150"})
    assert result.returncode == 0, result.stderr
    run = Flow("BatchFlow").latest_run
    assert run.data.total == sum(2 * i for i in range(300)) and run.data.count == 300
    failed = next(t for t in run["work"] if t.index == 150)
    assert failed.attempts == [0, 1]
    assert Task(failed.pathspec, attempt=0).exception.exception == "split 150 fails"
    assert failed.stdout.startswith(f"split 150 attempt 1 task {failed.id}\n")
    assert [t.attempts for t in run["work"] if t.index != 150] == [[0]] * 299
    batches = batch_objects(workdir, "BatchFlow", run.id, "work")
    assert len(batches) < 100  # the splits did share Dask tasks
    holder = next(b for b in batches if any(e["task_id"] == failed.id for e in b))
    ids = [e["task_id"] for e in holder]
    assert ids.index(failed.id) > 0 and len(set(ids)) > 2  # in the middle of a batch
    assert [e["attempt"] for e in holder if e["task_id"] == failed.id] == [0, 1]


def test_catch_on_one_split_of_a_batch(run_flow, workdir):
    result = run_flow("batch_catch_flow.py", "run", "--max-num-splits", "300",
                      env={"BATCH_FAIL_AT": "77", "BATCH_FAIL_MODE": "always"})
    assert result.returncode == 0, result.stderr
    run = Flow("BatchCatchFlow").latest_run
    assert run.data.caught == [77]
    assert run.data.total == sum(2 * i for i in range(300) if i != 77)
    caught = next(t for t in run["work"] if t.index == 77)
    assert caught.data.problem.exception == "split 77 fails"
    assert "out" not in caught.data
    assert len(batch_objects(workdir, "BatchCatchFlow", run.id, "work")) < 100


def test_timeout_stops_only_the_slow_split(run_flow, workdir):
    result = run_flow("batch_timeout_flow.py", "run")
    assert result.returncode == 0, result.stderr
    run = Flow("BatchTimeoutFlow").latest_run
    assert run.data.outs == [0, 2, None, 6, 8, 10]
    slow = next(t for t in run["work"] if t.index == 2)
    assert slow.data.problem.type == "metaflow.plugins.timeout_decorator.TimeoutException"
    assert all(t.attempts == [0] for t in run["work"] if t.index != 2)
    assert not (workdir / ".daskflow" / "BatchTimeoutFlow" / run.id / "work" /
                "_batches").exists()  # @timeout splits never share a Dask task


def test_resume_reuses_the_finished_splits_of_batches(run_flow, workdir):
    failed = run_flow("batch_flow.py", "run", "--n", "2000", "--max-num-splits", "2000",
                      env={"BATCH_FAIL_AT": "1500", "BATCH_FAIL_MODE": "always"})
    assert failed.returncode == 1
    assert "split 1500 fails" in failed.stderr
    origin = Flow("BatchFlow").latest_run
    finished = {t.index for t in origin["work"] if t.successful}
    assert 0 < len(finished) < 2000 and 1500 not in finished
    result = run_flow("batch_flow.py", "resume", "--origin-run-id", origin.id)
    assert result.returncode == 0, result.stderr
    run = Flow("BatchFlow").latest_run
    assert run.id != origin.id and run.data.count == 2000
    assert run.data.total == sum(2 * i for i in range(2000))
    cloned = {t.index for t in run["work"] if t.origin_pathspec is not None}
    assert cloned == finished
    again = next(t for t in run["work"] if t.index == 3)
    assert again.stdout == next(t for t in origin["work"] if t.index == 3).stdout


def resume_after_the_join_failed(run_flow, n: int, env: dict[str, str] | None = None):
    """A run of ``n`` splits whose join failed, and its resume: both runs."""
    failed = run_flow("batch_flow.py", "run", "--n", str(n), "--max-num-splits", str(n),
                      env={"BATCH_FAIL_JOIN": "1", **(env or {})})
    assert failed.returncode == 1 and "the join fails" in failed.stderr
    origin = Flow("BatchFlow").latest_run
    result = run_flow("batch_flow.py", "resume", "--origin-run-id", origin.id)
    assert result.returncode == 0, result.stderr
    run = Flow("BatchFlow").latest_run
    assert run.id != origin.id and run.data.count == n
    assert run.data.total == sum(2 * i for i in range(n))
    return origin, run


def clones_of(origin, run) -> None:
    """Every split of ``run`` is its origin's split: same artifact and output."""
    before = {t.index: (t.data.out, t.pathspec, t.stdout, t.stderr) for t in origin["work"]}
    assert {t.index: (t.data.out, t.origin_pathspec, t.stdout, t.stderr)
            for t in run["work"]} == before


def test_resume_of_a_wide_foreach_writes_its_clones_as_batch_objects(run_flow, workdir):
    """Issue 31: the clones of 3,000 splits are batch objects, not a folder each;
    the client, ``logs`` and a second resume read them as they read batched splits."""
    origin, run = resume_after_the_join_failed(run_flow, 3000)
    clones_of(origin, run)
    step = workdir / ".daskflow" / "BatchFlow" / run.id / "work"
    assert [p.name for p in step.iterdir()] == ["_batches"]   # no folder per split
    # an object per origin object, cut at a thousand: a few, not one per split
    assert len(batch_objects(workdir, "BatchFlow", run.id, "work")) <= \
        len(batch_objects(workdir, "BatchFlow", origin.id, "work")) + 3 < 100
    some = next(t for t in run["work"] if t.index == 1234)
    assert some.successful and some.attempts == [0]
    logs = run_flow("batch_flow.py", "logs", "/".join([run.id, "work", some.id]))
    assert logs.returncode == 0 and "split 1234 attempt 0" in logs.stdout
    again = run_flow("batch_flow.py", "resume", "join", "--origin-run-id", run.id)
    assert again.returncode == 0, again.stderr
    third = Flow("BatchFlow").latest_run
    assert third.id not in (run.id, origin.id) and third.data.count == 3000
    assert {t.index: t.origin_pathspec for t in third["work"]} == \
        {t.index: t.pathspec for t in run["work"]}
    assert third.data.total == run.data.total


def test_resume_clones_splits_that_ran_alone_into_batch_objects(run_flow, workdir):
    origin, run = resume_after_the_join_failed(run_flow, 150, env=UNBATCHED)
    assert len(list((workdir / ".daskflow" / "BatchFlow" / origin.id / "work").iterdir())) \
        == 150   # the origin's splits ran alone: a folder each
    clones_of(origin, run)
    assert batch_objects(workdir, "BatchFlow", run.id, "work")
    assert next(t for t in run["work"] if t.index == 7).stderr == "to stderr 7\n"


def test_logs_and_artifacts_match_a_run_without_batches(run_flow, workdir):
    assert run_flow("batch_flow.py", "run", "--n", "120", "--max-num-splits", "120").returncode == 0
    batched = Flow("BatchFlow").latest_run
    assert run_flow("batch_flow.py", "run", "--n", "120", "--max-num-splits", "120",
                    env=UNBATCHED).returncode == 0
    plain = Flow("BatchFlow").latest_run
    assert batch_objects(workdir, "BatchFlow", batched.id, "work")
    assert not (workdir / ".daskflow" / "BatchFlow" / plain.id / "work" / "_batches").exists()

    def seen(run):
        return {t.index: (t.id, t.stdout, t.stderr, t.data.out, t.data.big, t.attempts,
                          t.successful, sorted(t.data), list(t.parent_task_pathspecs)[0]
                          .split("/", 2)[2])
                for t in run["work"]}

    assert seen(batched) == seen(plain)
    some = seen(batched)[7]
    assert some[1] == f"split 7 attempt 0 task {some[0]}\nfd 7\n"
    assert some[2] == "to stderr 7\n"
    assert batched.data.total == plain.data.total
    join = batched["join"].task
    assert len(list(join.parent_task_pathspecs)) == 120
