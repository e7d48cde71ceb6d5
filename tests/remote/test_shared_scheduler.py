"""Many runs on one stock scheduler: each with its own code, a fair share each, and one's
end never taking the other's tasks with it.

A stock ``dask scheduler`` and 2 stock workers (no daskflow, an empty working folder) of
this module's own, the datastore on moto's S3. Runs start as a user starts them
(``python flow.py run --scheduler-address ...``, as subprocesses) and are read back
with the client.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daskflow import Flow, Run, namespace
from daskflow.current import username

from .conftest import running_stock_cluster

HELPERS = '''
def version():
    return {version}
'''

FLOW = '''
import time

from daskflow import FlowSpec, Parameter, parallel_map, step

import helpers


class SharedFlow(FlowSpec):
    splits = Parameter("splits", default=200)
    seconds = Parameter("seconds", default=0.0)
    check = Parameter("check", default=1)   # 0: the splits only sleep (timings)

    @step
    def start(self):
        self.items = list(range(self.splits))
        # a map inside a step: its partitions run with this run's code too
        self.mapped = sorted(set(parallel_map(lambda _: helpers.version(), range(8))))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        time.sleep(self.seconds)
        import daskflow
        self.seen = (helpers.version(), helpers.__file__, daskflow.__file__) \
            if self.check else None
        self.next(self.join)

    @step
    def join(self, inputs):
        seen = [i.seen for i in inputs] if self.check else [(None, None, None)]
        self.versions = sorted({s[0] for s in seen})
        self.files = sorted({s[1] for s in seen})
        self.daskflows = sorted({s[2] for s in seen})
        self.count = len(inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SharedFlow()
'''


@pytest.fixture(scope="module")
def shared_cluster(stock_python, moto_server, tmp_path_factory):
    """A stock scheduler and 2 one-thread workers that this module's runs share."""
    yield from running_stock_cluster(stock_python, moto_server, tmp_path_factory, "shared")


def project(root: Path, version: int) -> Path:
    """A flow folder whose ``helpers.version()`` returns ``version``."""
    root.mkdir(parents=True)
    (root / "helpers.py").write_text(HELPERS.format(version=version))
    flow = root / "flow.py"
    flow.write_text(FLOW)
    return flow


class Started:
    """A run started as a user starts it, in a subprocess."""

    def __init__(self, flow: Path, root: str, address: str, *args: str) -> None:
        name = f"{time.time_ns()}"
        self.id_file = flow.parent / f"run-id-{name}"
        self.out = flow.parent / f"out-{name}"  # files: a pipe nobody reads blocks a run
        self.err = flow.parent / f"err-{name}"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.process = subprocess.Popen(
                [sys.executable, str(flow), "--quiet", "--datastore-root", root, "run",
                 "--scheduler-address", address, "--max-num-splits", "5000",
                 "--run-id-file", str(self.id_file), *args],
                cwd=flow.parent, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                stdout=out, stderr=err)

    def wait(self, timeout: float = 600) -> subprocess.CompletedProcess:
        self.process.wait(timeout=timeout)
        return subprocess.CompletedProcess(self.process.args, self.process.returncode,
                                           self.out.read_text(), self.err.read_text())

    def run_id(self, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while not self.id_file.exists() or not self.id_file.read_text():
            assert time.monotonic() < deadline and self.process.poll() is None, \
                self.err.read_text()
            time.sleep(0.1)
        return self.id_file.read_text()


def finished(started: Started) -> Run:
    done = started.wait()
    assert done.returncode == 0, done.stderr[-3000:]
    namespace(None)
    return Run(f"SharedFlow/{started.run_id()}")


def using(address: str, until, seconds: float = 120) -> dict[str, dict]:
    """The runs ``daskflow scheduler ADDRESS --json`` listed, by id, polled until
    ``until`` holds of all those seen so far."""
    deadline = time.monotonic() + seconds
    seen: dict[str, dict] = {}
    while not until(seen):
        assert time.monotonic() < deadline, seen
        listed = subprocess.run([sys.executable, "-m", "daskflow", "scheduler", address,
                                 "--json"], capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0, listed.stderr
        seen.update({r["run_id"]: r for r in json.loads(listed.stdout)["runs"]})
    return seen


@pytest.mark.timeout(900)
def test_two_versions_at_once_each_split_imports_its_own(shared_cluster, s3_root, tmp_path):
    one = project(tmp_path / "v1", version=1)
    two = project(tmp_path / "v2", version=2)
    runs = [Started(flow, s3_root, shared_cluster.address, "--splits", "60",
                    "--seconds", "0.02") for flow in (one, two)]
    ids = sorted(started.run_id() for started in runs)
    listed = using(shared_cluster.address, until=lambda seen: sorted(seen) == ids)
    assert {(r["flow"], r["share"], r["user"]) for r in listed.values()} == \
        {("SharedFlow", 1, username())}
    import dask.config
    with dask.config.set({"daskflow.datastore.root": s3_root}):
        first, second = [finished(started) for started in runs]
    table = subprocess.run([sys.executable, "-m", "daskflow", "scheduler",
                            shared_cluster.address], capture_output=True, text=True,
                           timeout=60)
    assert table.returncode == 0 and table.stdout.startswith("No daskflow run uses"), table
    with dask.config.set({"daskflow.datastore.root": s3_root}):
        for run, version in ((first, 1), (second, 2)):
            join = run["join"].task.data
            assert join.count == 60 and join.versions == [version]
            assert run["start"].task.data.mapped == [version]
            # every split's helpers and daskflow came from the run's package (unpacked
            # once in each worker process)
            folder = f"{os.sep}daskflow-packages{os.sep}{run.code.sha}{os.sep}"
            assert 1 <= len(join.files) <= 2 and len(join.daskflows) == len(join.files)
            assert all(folder in path for path in join.files + join.daskflows)
        assert first.code.sha != second.code.sha
    assert os.listdir(shared_cluster.workdir) == []


@pytest.mark.timeout(900)
def test_five_runs_of_three_versions_at_once(shared_cluster, s3_root, tmp_path):
    versions = [1, 2, 3, 1, 2]
    flows = {v: project(tmp_path / f"v{v}", version=v) for v in sorted(set(versions))}
    runs = [Started(flows[v], s3_root, shared_cluster.address, "--splits", "60")
            for v in versions]
    import dask.config
    with dask.config.set({"daskflow.datastore.root": s3_root}):
        for started, version in zip(runs, versions):
            join = finished(started)["join"].task.data
            assert (join.count, join.versions) == (60, [version])


@pytest.mark.timeout(900)
def test_ctrl_c_of_one_run_leaves_the_others_tasks_and_result_intact(shared_cluster, s3_root,
                                                                     tmp_path):
    long = project(tmp_path / "long", version=1)
    short = project(tmp_path / "short", version=2)
    cancelled = Started(long, s3_root, shared_cluster.address, "--splits", "200",
                        "--seconds", "0.05")
    cancelled.run_id()
    kept = Started(short, s3_root, shared_cluster.address, "--splits", "60",
                   "--seconds", "0.05")
    kept.run_id()
    time.sleep(2)  # both have tasks on the workers
    cancelled.process.send_signal(signal.SIGINT)
    interrupted = cancelled.wait()
    assert interrupted.returncode != 0
    import dask.config
    with dask.config.set({"daskflow.datastore.root": s3_root}):
        run = finished(kept)
        assert run.successful
        assert (run["join"].task.data.count, run["join"].task.data.versions) == (60, [2])
        resumed = subprocess.run(
            [sys.executable, str(long), "--quiet", "--datastore-root", s3_root, "resume",
             "--origin-run-id", cancelled.run_id(), "--scheduler-address",
             shared_cluster.address, "--max-num-splits", "5000"],
            cwd=long.parent, capture_output=True, text=True, timeout=600)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        namespace(None)
        origin = Run(f"SharedFlow/{cancelled.run_id()}")
        assert not origin.successful
        latest = Flow("SharedFlow").latest_run
        assert latest.origin_run_id == origin.id and latest.successful
        assert (latest["join"].task.data.count, latest["join"].task.data.versions) == (200, [1])


@pytest.mark.timeout(1800)
def test_a_short_run_gets_its_share_next_to_a_long_one(shared_cluster, s3_root, tmp_path):
    """A: 600 splits of 50 ms (15 s of work on the 2 workers); B: 20 splits of 50 ms,
    started once A is on the scheduler's board. B is not queued behind A's splits: it
    ends while A still runs (how much sooner, against each alone, is
    bench/shared_cluster.py's to measure). With 300 splits A once ended 0.3 s before B
    on a loaded machine: B's own start (its process, its code package) takes seconds."""
    a = project(tmp_path / "a", version=1)
    b = project(tmp_path / "b", version=2)
    long_run, short_run = ("--splits", "600", "--seconds", "0.05", "--check", "0"), \
        ("--splits", "20", "--seconds", "0.05", "--check", "0")
    import dask.config
    with dask.config.set({"daskflow.datastore.root": s3_root}):
        started_a = Started(a, s3_root, shared_cluster.address, *long_run)
        using(shared_cluster.address, until=lambda seen: bool(seen))  # A is on the board
        run_b = finished(Started(b, s3_root, shared_cluster.address, *short_run))
        run_a = finished(started_a)
    assert run_a.successful and run_b.successful
    assert run_b.created_at > run_a.created_at
    a_ran, b_ran = (run_a.created_at, run_a.finished_at), (run_b.created_at, run_b.finished_at)
    assert b_ran[1] < a_ran[1], f"A ran {a_ran}, B {b_ran}"


def test_daskflow_scheduler_says_in_one_line_when_nothing_answers(tmp_path):
    done = subprocess.run([sys.executable, "-m", "daskflow", "scheduler", "tcp://127.0.0.1:1"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DASK_DASKFLOW__RUN__SCHEDULER_TIMEOUT": "2s"})
    assert done.returncode == 1
    assert "Cannot reach the Dask scheduler at tcp://127.0.0.1:1" in done.stderr
    assert "Traceback" not in done.stderr
