"""A foreach whose splits go on to a second step before their join, batched whole
(issue 31): each split's chain runs in one Dask task, each step still a task of its
own.  Flow files run as subprocesses, read back with the client; batch objects are
looked at only to check that the chains did share Dask tasks."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from daskflow import Flow
from daskflow.client import Task
from daskflow.datastore import ArtifactStore

from ..conftest import FLOWS, _env
from .test_batching import UNBATCHED, batch_objects
from .test_failure_causes import bodies, kill_running_workers

STEPS = ("double", "plus_one")


def test_each_split_runs_its_chain_in_a_batch_and_a_failing_second_step_is_retried_alone(
        run_flow, workdir):
    result = run_flow("chain_flow.py", "run", "--max-num-splits", "300",
                      env={"CHAIN_FAIL_AT": "150"})
    assert result.returncode == 0, result.stderr
    run = Flow("ChainFlow").latest_run
    assert run.data.total == sum(2 * i + 1 for i in range(300))
    assert (run.data.count, run.data.rows) == (300, 900)
    for step in STEPS:  # the chains did share Dask tasks: a few objects a step
        assert 0 < len(batch_objects(workdir, "ChainFlow", run.id, step)) < 100
    doubles = {t.index: t for t in run["double"]}
    pluses = {t.index: t for t in run["plus_one"]}
    assert sorted(doubles) == sorted(pluses) == list(range(300))
    for index, plus in pluses.items():
        [parent] = plus.parent_tasks
        assert parent.pathspec == doubles[index].pathspec
        assert plus.data.out == 2 * index + 1 and plus.data.rows == 3
        assert plus.stdout == f"plus_one {index} in plus_one/{plus.id}\n"
    double = doubles[7]
    assert double.data.doubled == 14 and double.stdout == f"double 7 in double/{double.id}\n"
    pd.testing.assert_frame_equal(double.data.frame,
                                  pd.DataFrame({"i": [7] * 3, "v": [1.5, 2.5, 3.5]}))
    failed = pluses[150]
    assert failed.attempts == [0, 1] and failed.successful
    assert Task(failed.pathspec, attempt=0).exception.exception == \
        "plus_one of split 150 fails once"
    assert doubles[150].attempts == [0]      # its first step was not run again
    assert [t.attempts for t in run["plus_one"] if t.index != 150] == [[0]] * 299
    assert [t.attempts for t in run["double"]] == [[0]] * 300
    join = run["join"].task
    assert [p.rsplit("/", 2)[1] for p in join.parent_task_pathspecs] == ["plus_one"] * 300
    # the live lines and the run report count both steps' tasks
    assert "Step 'double': 300/300 tasks finished." in result.stdout
    assert "Step 'plus_one': 200 tasks finished." in result.stdout
    assert f"Task {run.id}/plus_one/{failed.id} failed (attempt 0" in result.stdout
    report = (workdir / ".daskflow" / "ChainFlow" / run.id / "_report.html").read_text()
    for step in STEPS:
        assert f"{step}\n@retry()\n300 tasks" in report


def test_a_batched_chain_reads_back_as_the_same_chain_unbatched(run_flow, workdir):
    assert run_flow("chain_flow.py", "run", "--n", "60").returncode == 0
    batched = Flow("ChainFlow").latest_run
    assert run_flow("chain_flow.py", "run", "--n", "60", env=UNBATCHED).returncode == 0
    plain = Flow("ChainFlow").latest_run
    for step in STEPS:
        assert batch_objects(workdir, "ChainFlow", batched.id, step)
        assert not (workdir / ".daskflow" / "ChainFlow" / plain.id / step / "_batches").exists()

    def seen(run, step):
        return {t.index: (t.id, t.stdout, t.stderr, t.attempts, t.successful, sorted(t.data),
                          [p.split("/", 2)[2] for p in t.parent_task_pathspecs])
                for t in run[step]}

    for step in STEPS:  # the same task ids, output, artifacts and parents
        assert seen(batched, step) == seen(plain, step)
    assert batched.data.total == plain.data.total
    # dump and logs page through both steps' tasks as through any step's
    for step in STEPS:
        listed = run_flow("chain_flow.py", "dump", f"{batched.id}/{step}")
        assert listed.returncode == 0, listed.stderr
        assert f"Tasks 1 to 20 of 60 of {batched.id}/{step}" in listed.stderr
        assert listed.stdout.count(f"ChainFlow/{batched.id}/{step}/") == 20
    some = next(t for t in batched["plus_one"] if t.index == 5)
    shown = run_flow("chain_flow.py", "dump", f"{batched.id}/plus_one/{some.id}")
    assert shown.returncode == 0 and "out (int): 11" in shown.stdout, shown.stdout
    logs = run_flow("chain_flow.py", "logs", f"{batched.id}/plus_one")
    assert logs.returncode == 0, logs.stderr
    assert f"--- ChainFlow/{batched.id}/plus_one/{some.id} (foreach item 5) ---\n" \
        f"plus_one 5 in plus_one/{some.id}\n" in logs.stdout


def files_under(workdir, run_id: str, step: str) -> list[str]:
    """Every file of a step of a ChainFlow run, found through the datastore's layers."""
    store = ArtifactStore(str(workdir / ".daskflow"), "ChainFlow")
    return store.files.fs.find(store.layout.step(run_id, step))


def read_back(task):
    """What the client shows of a task of the chain (its pathspec aside)."""
    return (task.id, task.stdout, task.stderr, task.successful, task.finished,
            task.attempts, sorted(task.data),
            {name: getattr(task.data, name) for name in ("doubled", "out", "rows")
             if name in task.data},
            [p.split("/", 2)[2] for p in task.parent_task_pathspecs])


def resumed_chain(run_flow, workdir, *args):
    """A 300-split ChainFlow run whose join failed, and its resume with ``args``."""
    failed = run_flow("chain_flow.py", "run", "--max-num-splits", "300",
                      env={"CHAIN_FAIL_JOIN": "1"})
    assert failed.returncode == 1 and "the join fails" in failed.stderr
    origin = Flow("ChainFlow").latest_run
    result = run_flow("chain_flow.py", "resume", *args, "--origin-run-id", origin.id)
    assert result.returncode == 0, result.stderr
    run = Flow("ChainFlow").latest_run
    assert run.id != origin.id and run.data.total == sum(2 * i + 1 for i in range(300))
    assert batch_objects(workdir, "ChainFlow", origin.id, "plus_one")   # it was batched
    return origin, run, result


def test_resume_after_the_join_failed_clones_both_steps_of_the_chain(run_flow, workdir):
    """Issue 31: the clones of both steps are batch objects (a few, not one per split),
    and read back as the origin's tasks do."""
    origin, run, _ = resumed_chain(run_flow, workdir)
    for step in STEPS:
        before = {t.index: (t.pathspec, read_back(t)) for t in origin[step]}
        assert {t.index: (t.origin_pathspec, read_back(t)) for t in run[step]} == before
        # an object per origin object, cut at a thousand: not a folder or object a split
        files = files_under(workdir, run.id, step)
        assert 0 < len(files) <= len(files_under(workdir, origin.id, step)) < 100, files
    some = next(t for t in run["plus_one"] if t.index == 42)
    assert some.data.out == 85 and some.data.rows == 3 and some.origin_pathspec
    [parent] = some.parent_tasks
    assert parent.pathspec == next(t for t in run["double"] if t.index == 42).pathspec
    pd.testing.assert_frame_equal(parent.data.frame,
                                  pd.DataFrame({"i": [42] * 3, "v": [1.5, 2.5, 3.5]}))
    logs = run_flow("chain_flow.py", "logs", f"{run.id}/plus_one/{some.id}")
    assert logs.returncode == 0 and f"plus_one 42 in plus_one/{some.id}\n" in logs.stdout
    listed = run_flow("chain_flow.py", "dump", f"{run.id}/plus_one")
    assert listed.returncode == 0 and f"Tasks 1 to 20 of 300 of {run.id}/plus_one" \
        in listed.stderr, listed.stderr
    report = (workdir / ".daskflow" / "ChainFlow" / run.id / "_report.html").read_text()
    for step in STEPS:
        assert f"{step}\n@retry()\n300 tasks" in report
    # a second resume clones the clones
    again = run_flow("chain_flow.py", "resume", "join", "--origin-run-id", run.id)
    assert again.returncode == 0, again.stderr
    third = Flow("ChainFlow").latest_run
    assert third.id not in (run.id, origin.id) and third.data.total == run.data.total
    for step in STEPS:
        assert {t.index: (t.origin_pathspec, read_back(t)) for t in third[step]} == \
            {t.index: (t.pathspec, read_back(t)) for t in run[step]}


def test_resume_from_the_chains_second_step_runs_it_in_batches(run_flow, workdir):
    """``resume plus_one``: ``double`` is cloned, ``plus_one`` runs again in batches (not
    one Dask task a split), each split given its ``double``'s clone."""
    origin, run, result = resumed_chain(run_flow, workdir, "plus_one")
    doubles = {t.index: t for t in run["double"]}
    assert {t.index: t.origin_pathspec for t in doubles.values()} == \
        {t.index: t.pathspec for t in origin["double"]}
    # it ran in batches (the last few splits may run alone, a folder each): one Dask task
    # a split would leave a folder of two records or more each, 600 files or more
    assert 0 < len(batch_objects(workdir, "ChainFlow", run.id, "plus_one")) < 100
    assert len(files_under(workdir, run.id, "plus_one")) < 200
    for plus in run["plus_one"]:
        assert plus.origin_pathspec is None and plus.attempts == [0] and plus.successful
        [parent] = plus.parent_tasks
        assert parent.pathspec == doubles[plus.index].pathspec
        assert plus.data.out == 2 * plus.index + 1 and plus.data.rows == 3
        assert plus.stdout == f"plus_one {plus.index} in plus_one/{plus.id}\n"
    assert {t.index: t.id for t in run["plus_one"]} == \
        {t.index: t.id for t in origin["plus_one"]}
    assert "Step 'plus_one': 200 tasks finished." in result.stdout   # as in a run


def test_a_chain_with_a_step_that_may_not_be_batched_is_not_batched(run_flow, workdir):
    result = run_flow("chain_timeout_flow.py", "run")
    assert result.returncode == 0, result.stderr
    run = Flow("ChainTimeoutFlow").latest_run
    assert run.data.outs == [2 * i + 1 for i in range(8)]
    for step in ("double", "plus_one"):  # @timeout on plus_one: one Dask task a task
        assert not (workdir / ".daskflow" / "ChainTimeoutFlow" / run.id / step /
                    "_batches").exists()


#: splits of the chain whose workers are killed
KILL_N = 600


def test_workers_killed_under_a_batched_chain_leave_every_split_and_step_counted(workdir):
    # its output goes to files: each split prints, more than a pipe holds unread; batches
    # aim at 1 s, so that splits slowed by the machine's load still share them
    with open(workdir / "out", "w") as out, open(workdir / "err", "w") as err:
        # 600 splits of 50 ms in their second step: long enough on a quiet machine for
        # four kills 2 s apart, and most of a worker's time in a body, where a kill
        # cuts one short (1,000 of 12 ms ended after three kills in a quiet run)
        proc = subprocess.Popen([sys.executable, str(FLOWS / "chain_flow.py"), "run", "--n",
                                 str(KILL_N), "--nap", "0.05", "--max-num-splits",
                                 str(KILL_N)],
                                cwd=workdir, stdout=out, stderr=err,
                                env=_env({"CHAIN_NOTES": "1",
                                          "DASK_DASKFLOW__RUN__BATCH_TARGET": "1s"}))
        killed = kill_running_workers(workdir, proc, times=4)
        proc.wait(timeout=300)
    assert proc.returncode == 0, (workdir / "err").read_text()
    assert len(killed) == 4, "the foreach ended before four workers were killed"
    run = Flow("ChainFlow").latest_run
    assert run.data.total == sum(2 * i + 1 for i in range(KILL_N))
    for step in STEPS:  # the kills hit batches
        assert 0 < len(batch_objects(workdir, "ChainFlow", run.id, step)) < KILL_N / 2

    runs, cut_short = bodies(workdir)
    assert len(cut_short) >= 2, "most kills should have hit a body"
    # plus_one naps, double does not: the kills hit a chain in its second step
    hit = {task_id for task_id, _ in cut_short if int(task_id) > KILL_N + 1}
    assert hit, cut_short
    steps_of = {}
    for step in STEPS:
        tasks = list(run[step])
        assert len(tasks) == KILL_N
        for task in tasks:
            steps_of[task.id] = step
            attempts = [Task(task.pathspec, attempt=a) for a in task.attempts]
            succeeded = [a.current_attempt for a in attempts if a.successful]
            assert len(succeeded) == 1, (task.pathspec, task.attempts)
            # no body ran again once an attempt had succeeded, nor twice as one attempt:
            # a double that finished is not run again when its plus_one died
            ran = runs[task.id]
            assert ran.count(succeeded[0]) == 1 and max(ran) == succeeded[0], (task.id, ran)
            for attempt in attempts:
                assert attempt.successful or attempt.failure_cause == "worker-lost"
    for plus in run["plus_one"]:   # the double of a split killed in its plus_one stood
        if plus.id in hit:
            [double] = plus.parent_tasks
            assert double.attempts == [0] and runs[double.id] == [0], (plus.id, double.id)
    for task_id, attempt in cut_short:  # each body cut short: a worker-lost attempt there
        dead = Task(f"{run.pathspec}/{steps_of[task_id]}/{task_id}", attempt=attempt)
        assert dead.failure_cause == "worker-lost" and "SIGKILL" in dead.exception.exception
        assert dead.stderr.endswith("Task failed.\n")   # as Metaflow ends a dead task's
    assert "worker-lost" in (workdir / "out").read_text()
