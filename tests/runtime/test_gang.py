"""num_parallel: a gang of nodes on a cluster of their own, meeting at node 0."""

from __future__ import annotations

from daskflow import Flow


def check_gang(run, nodes):
    join = run["join"].task.data
    assert join.places == [(i, nodes, join.places[0][2]) for i in range(nodes)]
    assert join.totals == [sum(range(nodes))]          # every node met node 0
    assert join.env_indices == [str(i) for i in range(nodes)]
    tasks = list(run["train"])
    assert join.places[0][2] in {t.id for t in tasks}   # control task: node 0's
    assert len({t.record["worker"] for t in tasks}) == nodes  # one worker per node
    gang = [c for c in run._record["clusters"] if c["step"] == "train"]
    assert len(gang) == 1 and gang[0]["workers"] == nodes and gang[0]["stopped_at"]


def test_a_gang_meets_and_joins_on_the_local_backend(run_flow, workdir):
    result = run_flow("gang_flow.py", "run", "--nodes", "3")
    assert result.returncode == 0, result.stderr
    check_gang(Flow("GangFlow").latest_run, 3)


def test_retry_reruns_the_whole_gang(run_flow, workdir):
    # node 1 fails the first round while node 0 waits for it at the rendezvous: the
    # whole gang runs again (a lone node could never meet the others)
    result = run_flow("gang_flow.py", "run", "--nodes", "3", "--fail_once", "1")
    assert result.returncode == 0, result.stderr
    run = Flow("GangFlow").latest_run
    check_gang(run, 3)
    assert run["join"].task.data.rounds == [1, 1, 1]
    failed = next(t for t in run["train"] if t.index == 1)
    from daskflow import Task
    assert "fails the first round" in Task(failed.pathspec, attempt=0).exception.exception
