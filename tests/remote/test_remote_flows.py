"""Whole flows on a stock-Dask cluster: no daskflow there, no flow folder, an empty working
directory, the datastore on moto's S3. The run ships its own code; nothing is set up by
hand. Run as a user runs them (``python flow.py run --scheduler-address ...``) and read back
through the client."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from daskflow import Flow, namespace

from .test_stock_workers import make_project

FLOW = '''
import os

import pandas as pd

from daskflow import FlowSpec, Parameter, step
from {helper} import weight


class RemoteFlow(FlowSpec):
    fail_at = Parameter("fail_at", default=-1)

    @step
    def start(self):
        self.items = [1, 2, 3]
        self.next(self.scale, foreach="items")

    @step
    def scale(self):
        print(f"scaling {{self.input}}")
        if self.input == self.fail_at and not os.environ.get("REMOTE_FLOW_FIXED"):
            raise ValueError(f"cannot scale {{self.input}}")
        self.value = weight(self.input)
        self.frame = pd.DataFrame({{"x": [self.input] * 3}})
        self.cwd = os.getcwd()
        self.next(self.join)

    @step
    def join(self, inputs):
        self.values = sorted(i.value for i in inputs)
        self.frame = pd.concat([i.frame for i in inputs], ignore_index=True)
        self.cwds = sorted({{i.cwd for i in inputs}})
        import dask.dataframe as dd
        self.lazy = dd.from_pandas(self.frame, npartitions=2)  # the workers write it to S3
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    RemoteFlow()
'''


def _run(flow: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(flow), *args], cwd=flow.parent, env=env,
                          capture_output=True, text=True, timeout=240)


def test_a_flow_with_helpers_runs_fails_and_resumes_on_stock_workers(
        stock_cluster, s3_root, tmp_path):
    _, helper, _ = make_project(tmp_path)
    flow = tmp_path / "remote_flow.py"
    flow.write_text(FLOW.format(helper=helper))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    where = ["--datastore-root", s3_root]
    cluster = ["--scheduler-address", stock_cluster.address]

    failed = _run(flow, *where, "run", *cluster, "--fail_at", "2", env=env)
    assert failed.returncode == 1, failed.stderr
    assert "raised ValueError: cannot scale 2" in failed.stderr
    assert 'remote_flow.py", line' in failed.stderr and "in scale" in failed.stderr

    # the fix reaches the remote workers as the step's environment (the driver's own
    # environment never does)
    fixed = _run(flow, *where, "resume", *cluster, "--with",
                 "environment:vars={'REMOTE_FLOW_FIXED': '1'}", env=env)
    assert fixed.returncode == 0, fixed.stderr
    assert f"Run report: {s3_root}/RemoteFlow/" in fixed.stdout  # kept with the run, on S3
    assert not (tmp_path / "daskflow-remote-tests").exists()

    namespace(None)
    import dask.config
    with dask.config.set({"daskflow.datastore.root": s3_root}):
        runs = list(Flow("RemoteFlow"))
        resumed, first = runs[0], runs[1]
        assert not first.successful and resumed.successful
        assert resumed.origin_run_id == first.id
        assert resumed.data.values == [3, 6, 9]
        assert resumed.data.frame["x"].tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3]
        assert resumed["join"].task.data.cwds == [str(stock_cluster.workdir)]
        failed_task = next(t for t in first["scale"] if not t.successful)
        assert "scaling 2" in failed_task.stdout
        lazy = resumed["join"].task.data.lazy
        assert lazy.npartitions == 2 and sorted(lazy.compute()["x"]) == \
            [1, 1, 1, 2, 2, 2, 3, 3, 3]
        code = resumed.code
        assert f"{helper}.py" in code.tarball.getnames()
        assert "class RemoteFlow" in code.flowspec
    dumped = _run(flow, *where, "dump", f"{resumed.id}/join", env=env)
    assert dumped.returncode == 0, dumped.stderr
    assert "values (list): [3, 6, 9]" in dumped.stdout
    assert "frame (DataFrame): 9 rows x 1 columns" in dumped.stdout
    logs = _run(flow, *where, "logs", f"{first.id}/scale", env=env)
    assert "scaling 2" in logs.stdout and "cannot scale 2" in logs.stderr
    assert os.listdir(stock_cluster.workdir) == []  # the workers' folder stays clean


CACHED_FLOW = '''
import os

from daskflow import FlowSpec, JSONType, Parameter, step


class RemoteCacheFlow(FlowSpec):
    items = Parameter("items", type=JSONType, default="[1, 2, 3]")

    @step
    def start(self):
        self.values = list(self.items)
        self.next(self.work, foreach="values")

    @step
    def work(self):
        self.double = self.input * 2
        self.cwd = os.getcwd()
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.double for i in inputs)
        self.cwds = sorted({i.cwd for i in inputs})
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    RemoteCacheFlow()
'''


def test_a_cached_flow_reuses_what_stock_workers_made_on_s3(stock_cluster, s3_root, tmp_path):
    """Keys the workers wrote to S3 serve the driver's lookups: one changed item reruns
    start, its split and the join; everything else is taken from the first run."""
    flow = tmp_path / "remote_cache_flow.py"
    flow.write_text(CACHED_FLOW)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    args = ["--datastore-root", s3_root, "run", "--scheduler-address",
            stock_cluster.address, "--with", "cache"]
    first = _run(flow, *args, env=env)
    assert first.returncode == 0, first.stderr
    again = _run(flow, *args, "--items", "[1, 2, 4]", env=env)
    assert again.returncode == 0, again.stderr
    assert "reused 3 from the cache (work 2, end 1)" in again.stdout

    namespace(None)
    import dask.config
    with dask.config.set({"daskflow.datastore.root": s3_root}):
        run, origin = list(Flow("RemoteCacheFlow"))
        assert run.data.total == 14
        assert run["join"].task.data.cwds == [str(stock_cluster.workdir)]
        ran = sorted(t.data.double for t in run["work"] if not t.cached)
        assert ran == [8]
        assert {t.origin_pathspec.rsplit("/", 2)[0] for t in run["work"] if t.cached} \
            == {origin.pathspec}


def test_a_lone_task_dask_ran_again_after_its_worker_died_claims_attempt_1_on_s3(
        stock_cluster, s3_root, tmp_path):
    """A step that never runs in batches claims its attempt 0 with no listing (one PUT
    where its folder holds nothing); the scheduler, not daskflow's, runs it again by
    itself after its worker was killed: that run finds attempt 0 claimed, records it
    dead, and claims attempt 1 beside it, never over it."""
    flow = tmp_path / "lone_death_flow.py"
    flow.write_text((Path(__file__).parents[1] / "flows" / "lone_death_flow.py").read_text())
    result = _run(flow, "--datastore-root", s3_root, "run", "--scheduler-address",
                  stock_cluster.address, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert result.returncode == 0, result.stderr

    namespace(None)
    import dask.config
    with dask.config.set({"daskflow.datastore.root": s3_root}):
        task = Flow("LoneDeathFlow").latest_run["fragile"].task
        assert task.attempts == [0, 1] and task.data.attempt_that_worked == 1
        from daskflow.client import Task
        dead = Task(task.pathspec, attempt=0)
        assert not dead.successful and dead.failure_cause == "worker-lost"
        assert "dies" in dead.stdout and f"process {task.data.pid} " not in dead.stdout
