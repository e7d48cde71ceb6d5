"""The graph check allows and refuses what Metaflow's does; allowed flows run."""

from __future__ import annotations

from daskflow import Flow


def test_switch_inside_a_foreach_runs_each_split_down_its_own_path(run_flow, workdir):
    result = run_flow("switch_in_foreach.py", "run")
    assert result.returncode == 0, result.stderr
    run = Flow("SwitchForeachFlow").latest_run
    assert run.successful
    assert sorted(run["join"].task.data.labels) == [
        "1->4 small", "2->1 small", "3->10 big", "4->2 small"]
    # Each split took one path at each switch: 2 halved and 2 grown, 1 big and 3 small.
    assert len(run["halve"]) == 2 and len(run["grow"]) == 2
    assert [t.data.n for t in run["big"]] == [3]
    assert sorted(t.data.n for t in run["small"]) == [1, 2, 4]


def test_a_switch_straight_into_a_join_is_refused(run_flow, workdir):
    result = run_flow("bad/switch_into_join.py", "check")
    assert result.returncode == 1
    assert "switch_into_join.py:15:" in result.stderr
    assert "Step 'pick' chooses with condition=" in result.stderr
    assert "cannot lead directly to a join" in result.stderr
    assert "Add a plain step on that path before 'join'" in result.stderr
    assert "Traceback" not in result.stderr
