"""Loops: Metaflow's recursive switch (a step that chooses itself again), alone and
inside a foreach, and the resume of a run that failed in the middle of one.

The expected values are what Metaflow 2.19.39 gives for the same flow file (its
``from daskflow import`` changed to ``from metaflow import``), run with
``python loop_flow.py run`` (and ``LOOP_FAIL=2:2 ... run`` then ``... resume``) and read
back with Metaflow's client.
"""

from __future__ import annotations

from daskflow import Flow


def test_a_recursive_switch_runs_its_step_again_alone_and_in_a_foreach(run_flow, workdir):
    result = run_flow("loop_flow.py", "run")
    assert result.returncode == 0, result.stderr
    assert "4/3 tasks" not in result.stdout  # a loop has no total of its foreach's width
    run = Flow("LoopFlow").latest_run
    assert run.successful
    # Metaflow: start 1, loop 2 3 4, fan 5; the step lists its tasks newest first, and
    # its task is the last pass
    assert [t.id for t in run["loop"]] == ["4", "3", "2"]
    assert run["loop"].task.id == "4" and run["loop"].task.data.count == 3
    assert [t.data.count for t in run["loop"]] == [3, 2, 1]
    assert run["fan"].task.id == "5" and run["start"].task.id == "1"
    # each pass's parent is the pass before
    assert [p.id for p in run["loop"]["3"].parent_tasks] == ["2"]
    # inside the foreach: one more pass than the split's index, each split its own loop
    join = run["join"].task.data
    assert join.passes == [1, 2, 3]
    assert join.stacks == [[(0, 3)], [(1, 3)], [(2, 3)]]
    assert [len(trail) for trail in join.trails] == [1, 2, 3]
    grow = list(run["grow"])
    assert len(grow) == 6 and sorted(t.index for t in grow) == [0, 1, 1, 2, 2, 2]
    assert len(run["after"]) == 3


def test_resume_clones_the_passes_before_the_failed_one(run_flow, workdir):
    failed = run_flow("loop_flow.py", "run", env={"LOOP_FAIL": "2:2"})
    assert failed.returncode == 1 and "pass 2 of split 2 fails" in failed.stderr
    origin = Flow("LoopFlow").latest_run
    resumed = run_flow("loop_flow.py", "resume")
    assert resumed.returncode == 0, resumed.stderr
    run = Flow("LoopFlow").latest_run
    assert run.successful and run.origin_run_id == origin.id
    # Metaflow clones the loop's three passes, the splits 0 and 1 whole, and pass 1 of
    # split 2; it runs passes 2 and 3 of split 2 again, and what follows
    assert all(t.origin_pathspec for t in run["loop"])
    cloned = sorted((t.index, t.data.passes) for t in run["grow"] if t.origin_pathspec)
    ran = sorted((t.index, t.data.passes) for t in run["grow"] if not t.origin_pathspec)
    assert cloned == [(0, 1), (1, 1), (1, 2), (2, 1)]
    assert ran == [(2, 2), (2, 3)]
    trails = run["join"].task.data.trails
    assert [[t.split("/")[0] for t in trail] for trail in trails] == [
        [origin.id], [origin.id, origin.id], [origin.id, run.id, run.id]]
