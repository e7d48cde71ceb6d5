"""num_parallel: a gang of nodes on a cluster of their own, meeting at node 0."""

from __future__ import annotations

import pytest

from daskflow import Flow


def check_gang(run, nodes):
    join = run["join"].task.data
    assert join.places == [(i, nodes, join.places[0][2]) for i in range(nodes)]
    assert join.totals == [sum(range(nodes))]          # every node met node 0
    assert join.env_indices == [str(i) for i in range(nodes)]
    tasks = list(run["train"])
    assert join.places[0][2] in {t.id for t in tasks}   # control task: node 0's
    # Metaflow's Step.control_tasks(): the gang's control task (its node 0)
    assert [t.id for t in run["train"].control_tasks()] == [join.places[0][2]]
    assert run["train"].control_task.metadata_dict["internal_task_type"] == "control_task"
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



# -- the gang's state and retry policy, in-process -------------------------------------


@pytest.mark.fast
def test_the_step_after_num_parallel_is_a_gang(flow_graph):
    from daskflow.runtime.gang import is_gang

    graph = flow_graph("gang_flow.py")
    assert [n.name for n in graph if is_gang(graph, n.name)] == ["train"]


@pytest.mark.fast
def test_a_failed_node_sends_the_whole_gang_again_while_retry_allows():
    from daskflow.runtime.gang import Gang, Gangs

    gangs = Gangs(retries=lambda step: {"train": 2}.get(step, 0))
    gang = Gang("train", [], [], "gang:train", ["train-2-7", "train-3-7", "train-4-7"])
    gangs.sent(gang)
    assert gangs.retryable("train-3-7") is gang
    assert gangs.next_round(gang) == ["train-2-7", "train-3-7", "train-4-7"]
    gangs.sent(gang)
    assert gang.keys == ["train-2-7-r1", "train-3-7-r1", "train-4-7-r1"]
    # the replaced round's other nodes end (cancelled): their ends mean nothing
    assert gangs.superseded("train-2-7") and not gangs.superseded("train-2-7-r1")
    assert gangs.retryable("train-4-7-r1") is gang
    gangs.next_round(gang)
    gangs.sent(gang)
    assert gang.keys[0] == "train-2-7-r2" and gang.round == 2
    assert gangs.retryable("train-2-7-r2") is None          # @retry(times=2) used up


@pytest.mark.fast
def test_a_task_of_no_gang_or_without_retry_is_not_retried_whole():
    from daskflow.runtime.gang import Gang, Gangs

    gangs = Gangs(retries=lambda step: 0)
    gangs.sent(Gang("train", [], [], "gang:train", ["train-2-7"]))
    assert gangs.retryable("train-2-7") is None
    assert gangs.retryable("start-1-7") is None


class _Scheduler:
    """Dask's answers to ``Client.scheduler_info``, one per call, the last one kept."""

    def __init__(self, *answers: dict[str, str]) -> None:
        self.answers = list(answers)

    def scheduler_info(self, n_workers: int = 0) -> dict:
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return {"workers": {address: {"status": status} for address, status in answer.items()}}


@pytest.mark.fast
def test_a_round_goes_out_once_every_node_has_a_worker():
    from daskflow.runtime.gang import node_workers

    # after a restart, the worker of the node that died is still being started again by
    # its nanny: the round waits for it (and never counts a worker that is closing)
    client = _Scheduler({"tls://b:1": "running"},
                        {"tls://b:1": "running", "tls://a:2": "closing"},
                        {"tls://b:1": "running", "tls://a:3": "running"})
    assert node_workers(client, "train", 2) == ["tls://a:3", "tls://b:1"]


@pytest.mark.fast
def test_a_gang_is_never_sent_short_of_a_node():
    import dask

    from daskflow.clusters.errors import ClusterStartTimeoutError
    from daskflow.runtime.gang import node_workers

    with dask.config.set({"daskflow.cluster.start-timeout": "0.3s"}), \
            pytest.raises(ClusterStartTimeoutError, match="Step 'train': its gang of 3 nodes"
                          ".* only 2 of its cluster's workers were up"):
        node_workers(_Scheduler({"tls://a:1": "running", "tls://b:1": "running"}), "train", 3)
