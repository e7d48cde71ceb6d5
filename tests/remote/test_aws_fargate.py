"""A real flow step on the aws-fargate backend, its worker started from what moto recorded.

The driver is ``python flow.py run`` as a user runs it, with the datastore on moto's S3.
Its ``@resources(backend="aws-fargate")`` step makes dask-cloudprovider's FargateCluster
register a task definition and run a worker task against moto's server. moto runs no
containers, so :class:`StockImageContainers` stands in for the ECS agent: it reads the
recorded task (``list_tasks``/``describe_tasks``) and runs its container command verbatim,
``dask worker tcp://... --name ... --nthreads 1 --memory-limit 2GB ...``, from the stock
worker environment (``.ci/setup-stock-worker.sh``: the stock Dask image's packages, no
daskflow) in an empty working directory. What is translated, and why:

- ``dask`` is found on ``PATH``, whose first entry is the stock environment's ``bin``,
  as the image's own ``PATH`` has its Python's ``bin`` first. The argv is untouched.
- The container's environment is the stock one (no PYTHONPATH, no Dask settings of the
  driver's), then the task definition's variables, then the task's overrides, as ECS
  merges them. On top, moto's endpoint and its dummy keys: on AWS the task role gives
  the worker its credentials and the VPC routes it to S3, neither through the task
  definition, so the stand-in adds them itself, as the platform would.

The scheduler is a stock ``dask scheduler`` given as ``daskflow.cluster.aws.scheduler-address``:
a scheduler task recorded by moto would advertise a made-up private IP that nothing here
answers, so its workers could never connect.
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

pytest.importorskip("dask_cloudprovider.aws")
boto3 = pytest.importorskip("boto3")

from daskflow import Flow, namespace

from ..clusters.conftest import ECSContainers, aws, moto_account  # noqa: F401  (fixtures)
from ..clusters.test_aws import moto_leftovers
from .conftest import aws_env, stock_env

GiB = 2**30

FLOW = '''
import os
import sys

from daskflow import FlowSpec, resources, step


class FargateFlow(FlowSpec):
    @step
    def start(self):
        self.x = 20
        self.next(self.remote)

    @resources(backend="aws-fargate", cpu=1, memory="2GiB")
    @step
    def remote(self):
        from distributed import get_worker
        worker = get_worker()
        self.where = {"executable": sys.executable, "prefix": sys.prefix, "cwd": os.getcwd(),
                      "process_group": os.getpgid(0), "worker": worker.address,
                      "name": worker.name, "nthreads": worker.state.nthreads,
                      "memory_limit": worker.memory_manager.memory_limit}
        self.y = self.x + 1
        self.next(self.end)

    @step
    def end(self):
        self.z = 2 * self.y


if __name__ == "__main__":
    FargateFlow()
'''


class StockImageContainers(ECSContainers):
    """The ECS agent for worker tasks of one scheduler, with the stock environment as the image.

    Only tasks whose command names ``scheduler`` are started: moto is shared by the
    session, and another test's leftover task is not this cluster's capacity.
    """

    def __init__(self, *, python: Path, scheduler: str, workdir: Path, logs: Path,
                 endpoint: str) -> None:
        self.python, self.scheduler, self.endpoint = python, scheduler, endpoint
        self.cwd, self.logs = str(workdir), str(logs)
        super().__init__()

    def argv(self, command: list[str]) -> list[str] | None:
        return command if command[:3] == ["dask", "worker", self.scheduler] else None

    def base_env(self) -> dict[str, str]:
        env = stock_env(aws_env(self.endpoint))
        env["PATH"] = os.pathsep.join([str(self.python.parent), env.get("PATH", os.defpath)])
        return env

    def log_tails(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
                         for path in sorted(Path(self.logs).iterdir()))


@pytest.fixture
def stock_scheduler(stock_python, tmp_path):
    """A stock ``dask scheduler`` with no workers, started in an empty folder; yields its address."""
    folder, files = tmp_path / "scheduler-cwd", tmp_path / "scheduler-files"
    folder.mkdir()
    files.mkdir()
    scheduler_file = files / "scheduler.json"
    process = subprocess.Popen(
        [str(stock_python.parent / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
         "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(scheduler_file)],
        cwd=folder, env=stock_env({}), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120  # a loaded machine: imports alone take seconds
    while not scheduler_file.exists() or not scheduler_file.read_text().strip().endswith("}"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait(10)
            pytest.fail("the stock dask scheduler did not start within 120 s")
        time.sleep(0.1)
    yield json.loads(scheduler_file.read_text())["address"]
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


@pytest.fixture
def stock_containers(aws, stock_python, stock_scheduler, tmp_path):  # noqa: F811
    workdir, logs = tmp_path / "container-cwd", tmp_path / "container-logs"
    workdir.mkdir()
    logs.mkdir()
    runner = StockImageContainers(python=stock_python, scheduler=stock_scheduler,
                                  workdir=workdir, logs=logs, endpoint=aws)
    yield runner
    runner.close()


def workers_of(address: str) -> dict:
    from distributed import Client
    with Client(address, timeout=60) as client:
        return client.scheduler_info(n_workers=-1)["workers"]


@pytest.mark.aws
@pytest.mark.timeout(900)  # a driver, a cluster and a stock worker on a loaded machine
def test_a_flow_step_runs_on_a_worker_started_from_the_recorded_fargate_task(
        aws, s3_root, stock_python, stock_scheduler, stock_containers, tmp_path):  # noqa: F811
    flow = tmp_path / "project" / "fargate_flow.py"
    flow.parent.mkdir()
    flow.write_text(FLOW)
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "DASK_DASKFLOW__CLUSTER__AWS__SCHEDULER_ADDRESS": stock_scheduler,
           # moto's tasks have no public IP: the workers' address is the private one
           "DASK_DASKFLOW__CLUSTER__AWS__USE_PRIVATE_IP": "True"}
    done = subprocess.run([sys.executable, str(flow), "--datastore-root", s3_root, "run"],
                          cwd=flow.parent, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (f"{done.stdout}\n{done.stderr}\ncontainers: "
                                  f"{stock_containers.log_tails()}\nlast error of the "
                                  f"ECS stand-in: {stock_containers.last_error!r}")

    # exactly one worker task was recorded for this scheduler, and its command was run
    [(arn, command)] = stock_containers.commands.items()
    assert command[:5] == ["dask", "worker", stock_scheduler, "--name", command[4]]
    assert command[command.index("--nthreads") + 1] == "1"
    assert command[command.index("--memory-limit") + 1] == "2GB"  # dask-cloudprovider's
    assert command[-2:] == ["--memory-limit", str(2 * GiB)]  # daskflow's exact limit, last
    cluster = stock_containers.clusters[arn]
    [task] = boto3.client("ecs").describe_tasks(cluster=cluster, tasks=[arn])["tasks"]
    assert task["launchType"] == "FARGATE"
    definition = boto3.client("ecs").describe_task_definition(
        taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
    assert (definition["cpu"], definition["memory"]) == ("1024", "2048")  # a Fargate size
    assert task["overrides"]["containerOverrides"][0]["command"] == command

    # the step ran in that process group, with the stock Python, as that command said
    namespace(None)
    import dask.config
    with dask.config.set({"daskflow.datastore.root": s3_root}):
        run = Flow("FargateFlow").latest_run
        assert run.successful
        assert run["end"].task.data.z == 42
        step = run["remote"].task
        where = step.data.where
        assert where["process_group"] == stock_containers.processes[arn].pid
        assert where["executable"] == str(stock_python)
        assert Path(where["prefix"]) == stock_python.parent.parent
        assert where["cwd"] == stock_containers.cwd
        # (dask worker makes a numeric --name an int)
        assert (str(where["name"]), where["nthreads"], where["memory_limit"]) == (
            command[4], 1, 2 * GiB)
        assert step.metadata_dict["worker"] == where["worker"]
        assert run["start"].task.metadata_dict["worker"] != where["worker"]
        # the stock scheduler has no bokeh to render a performance report: the step says
        # so and succeeds
        assert step.performance_report is None
        assert "no Dask performance report for remote" in step.stderr

    # close() stopped the task; its container's processes are gone, as on ECS
    [task] = boto3.client("ecs").describe_tasks(cluster=cluster, tasks=[arn])["tasks"]
    assert task["lastStatus"] == "STOPPED"
    stock_containers.settle(timeout=60)
    assert arn in stock_containers.stopping  # stopped because moto said STOPPED
    assert not stock_containers.running(arn), stock_containers.log_tails()
    assert moto_leftovers(task["group"].removeprefix("family:dask-").removesuffix("-worker")) \
        == []
    deadline = time.monotonic() + 60
    while workers_of(stock_scheduler) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert workers_of(stock_scheduler) == {}
    assert os.listdir(stock_containers.cwd) == []  # the shipped code went elsewhere
