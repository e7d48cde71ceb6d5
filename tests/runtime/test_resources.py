"""@resources: steps on clusters of their own, started for them and torn down after."""

from __future__ import annotations

import psutil
import pytest

from daskflow import Flow


def test_steps_get_their_own_right_sized_clusters(run_flow, workdir):
    result = run_flow("resources_flow.py", "run")
    assert result.returncode == 0, result.stderr
    run = Flow("ResourcesFlow").latest_run
    default = run["start"].task.data.default
    big = run["big"].task.data.facts
    assert big["scheduler"] != default["scheduler"]
    assert big["memory_limits"] == [2**30, 2**30] and big["nthreads"] == [1, 1]
    assert run["big"].task.data.squares == sum(x * x for x in range(100))
    # adjacent steps of the same size share one cluster
    assert run["big_again"].task.data.facts["scheduler"] == big["scheduler"]
    # a foreach step gets one cluster for all its splits, a worker per split
    join = run["join"].task.data
    assert len(join.schedulers) == 1 and join.schedulers[0] != big["scheduler"]
    assert join.split_facts["memory_limits"] == [768 * 2**20] * 3
    # steps without @resources run on the run's default cluster
    assert run["end"].task.data.end_facts["scheduler"] == default["scheduler"]
    clusters = run.record["clusters"]
    assert [c["name"] for c in clusters] == ["default", "step-1", "step-2"]
    assert all(c["stopped_at"] for c in clusters)
    assert "Cluster 'step-1' for step 'big' started: local, 2 workers x (1 core, 1 GiB)" \
        in result.stdout
    assert "Cluster 'step-1' closed after" in result.stdout
    # a step on its own cluster keeps a Dask performance report, bundled to open offline
    report = run["big"].task.performance_report
    assert report and report.endswith("big/2/0.performance.html")
    with open(report) as f:
        page = f.read()
    assert "Task Stream" in page and "cdn.bokeh.org" not in page
    assert run["start"].task.performance_report is None
    # nothing is left running
    for facts in (default, big, join.split_facts):
        assert not [pid for pid in facts["pids"] if psutil.pid_exists(pid)]


def test_a_join_on_a_step_cluster_takes_a_branch_that_finished_long_before(run_flow,
                                                                            workdir):
    # the quick branch ends (on the default cluster) before the slow one (on its own
    # cluster) does: the join, placed then, gets the quick branch's result as a value
    result = run_flow("branch_clusters.py", "run", timeout=180)
    assert result.returncode == 0, result.stderr
    run = Flow("BranchClusterFlow").latest_run
    assert run.successful and run["join"].task.data.total == 3
    assert "total 3" in result.stdout


def test_reuse_of_adjacent_clusters_can_be_turned_off(run_flow, workdir):
    result = run_flow("resources_flow.py", "run",
                      env={"DASK_DASKFLOW__CLUSTER__REUSE_ADJACENT": "false"})
    assert result.returncode == 0, result.stderr
    run = Flow("ResourcesFlow").latest_run
    assert run["big_again"].task.data.facts["scheduler"] != \
        run["big"].task.data.facts["scheduler"]
    assert len(run.record["clusters"]) == 4


def test_request_bigger_than_the_machine_fails_before_anything_runs(run_flow, workdir):
    result = run_flow("resources_flow.py", "run", "--with", "resources:memory=10TiB")
    assert result.returncode == 1
    assert "10 TiB" in result.stderr and "Traceback" not in result.stderr


def test_show_lists_resources_and_backends(run_flow, workdir):
    result = run_flow("resources_flow.py", "show")
    assert result.returncode == 0, result.stderr
    assert "Step big\n    @resources(memory='1GiB', workers=2)" in result.stdout
    assert "runs on: local, 2 workers x (1 core, 1 GiB)" in result.stdout
    assert "Step start\n    runs on: the run's default cluster" in result.stdout


def test_a_step_whose_workers_cannot_see_a_local_datastore_is_refused(tmp_path, monkeypatch):
    from daskflow import Runner
    from daskflow.exceptions import ConfigurationError

    flow = tmp_path / "k8s_flow.py"
    flow.write_text(
        "from daskflow import FlowSpec, resources, step\n\n\n"
        "class K8sFlow(FlowSpec):\n"
        "    @step\n"
        "    def start(self):\n"
        "        self.next(self.train)\n\n"
        "    @resources(cpu=1, backend='kubernetes')\n"
        "    @step\n"
        "    def train(self):\n"
        "        self.next(self.end)\n\n"
        "    @step\n"
        "    def end(self):\n"
        "        pass\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match="Step 'train' runs on the kubernetes backend, "
                                                 "whose workers do not share this machine's "
                                                 "disk.*daskflow.datastore.root: s3://"):
        Runner(str(flow), quiet=True).run()
    assert not (tmp_path / ".daskflow" / "K8sFlow").exists()  # nothing stored
