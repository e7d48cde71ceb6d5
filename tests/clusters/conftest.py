"""Fixtures for the cluster tests: a real SLURM when there is one, job logs in a temp folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any

import dask.config
import pytest


def slurm_problem() -> str | None:
    """Why SLURM cannot be used here, or None when ``sinfo`` answers."""
    if shutil.which("sinfo") is None:
        return "sinfo is not on PATH (run .ci/setup-slurm.sh)"
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True,
                              timeout=10)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 10 s (slurmctld down?)"
    if done.returncode != 0:
        return f"sinfo failed: {done.stderr.strip()}"
    if not any(s.startswith(("idle", "mix", "alloc")) for s in done.stdout.split()):
        return f"no SLURM node is up (sinfo states: {done.stdout.split()})"
    return None


@pytest.fixture(scope="session")
def require_slurm() -> None:
    """Skip without SLURM, unless DASKFLOW_REQUIRE_SERVICES=1 (or =slurm) makes that a failure."""
    problem = slurm_problem()
    if problem is None:
        return
    if services_required("slurm"):
        pytest.fail(f"SLURM is required (DASKFLOW_REQUIRE_SERVICES=1) but unusable: {problem}")
    pytest.skip(f"SLURM unavailable: {problem}")


@pytest.fixture(autouse=True)
def slurm_logs_in_tmp(tmp_path):
    """Job logs of this test's SLURM clusters go to its own temp folder."""
    with dask.config.set({"daskflow.cluster.slurm.log-directory": str(tmp_path / "slurm-logs")}):
        yield tmp_path / "slurm-logs"


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "ssh: needs sshd and asyncssh (a private sshd on 127.0.0.1 is started)")


def services_required(service: str) -> bool:
    """``DASKFLOW_REQUIRE_SERVICES=1`` (or ``all``) requires every service; ``slurm,ssh`` some."""
    wanted = {s.strip() for s in os.environ.get("DASKFLOW_REQUIRE_SERVICES", "").split(",")}
    return bool(wanted & {"1", "all", service})


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A private sshd on 127.0.0.1 (its own host key, one client key); yields connect options."""
    import socket
    import time

    problem = None
    sshd_bin = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd")
                                        else None)
    if sshd_bin is None or shutil.which("ssh-keygen") is None:
        problem = "sshd/ssh-keygen not installed (apt-get install openssh-server)"
    try:
        # asyncssh imports DSA, which cryptography 51 deprecates: a warning, made an
        # error by the suite's filters when this fixture is the first to import it
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="DSA is deprecated")
            import asyncssh  # noqa: F401
    except ImportError:
        problem = problem or "asyncssh not installed (pip install 'daskflow[ssh]')"
    if problem:
        if services_required("ssh"):
            pytest.fail(f"SSH is required (DASKFLOW_REQUIRE_SERVICES=1): {problem}")
        pytest.skip(problem)

    folder = tmp_path_factory.mktemp("sshd")
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        str(folder / key)], check=True)
    (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (folder / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPidFile {folder / 'sshd.pid'}\n"
        "UsePAM no\nStrictModes no\nPasswordAuthentication no\nPermitRootLogin yes\n"
        "AcceptEnv *\nSubsystem sftp internal-sftp\n")
    os.makedirs("/run/sshd", exist_ok=True)  # privilege separation directory
    server = subprocess.Popen([sshd_bin, "-D", "-e", "-f", str(folder / "sshd_config")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                err = server.stderr.read().decode() if server.poll() is not None else ""
                server.kill()
                message = f"sshd did not start: {err.strip()}"
                if services_required("ssh"):
                    pytest.fail(message)
                pytest.skip(message)
            time.sleep(0.05)
    yield {"port": port, "known_hosts": None, "client_keys": [str(folder / "client_key")]}
    server.terminate()
    server.wait(10)
    server.stderr.close()


# -- AWS: moto's server on 127.0.0.1, and a stand-in for the containers ECS would run ------------
_configure_before_aws = pytest_configure


def pytest_configure(config) -> None:
    _configure_before_aws(config)
    config.addinivalue_line(
        "markers", "aws: needs moto[server]; the test starts moto_server on 127.0.0.1 and "
                   "talks to it over HTTP with the real AWS clients")


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoURL(str):
    """moto's URL, and ``log``: its access log, one line per S3 request (to count them)."""

    def __new__(cls, url: str, log: Path) -> MotoURL:
        self = super().__new__(cls, url)
        self.log = log
        return self


@pytest.fixture(scope="session")
def moto_account(moto_server):
    """moto set up once: ECS tasks kept RUNNING until stopped, long task ARNs (for tags).

    Not reset between tests (a reset makes moto reload its IAM policies and EC2
    data, about 2 s): tests tell their resources apart by their unique names.
    """
    import json
    import urllib.request

    body = json.dumps({"model_name": "ecs::task",
                       "transition": {"progression": "manual", "times": 10**9}}).encode()
    # moto moves a task PROVISIONING -> ... -> RUNNING -> STOPPED on its own; real ECS
    # keeps it RUNNING until StopTask: "manual" progression does the same
    urllib.request.urlopen(urllib.request.Request(
        f"{moto_server}/moto-api/state-manager/set-transition", data=body, method="POST"),
        timeout=30).read()
    import boto3
    ecs = boto3.client("ecs", endpoint_url=moto_server, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    ecs.put_account_setting(name="taskLongArnFormat", value="enabled")
    return moto_server


@pytest.fixture
def aws(moto_account, monkeypatch, tmp_path):
    """The environment of a user of the moto account: dummy credentials, us-east-1."""
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_account)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-role lookup
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    yield moto_account


@pytest.fixture(scope="session")
def local_scheduler():
    """A ``dask scheduler`` subprocess on 127.0.0.1: ECS workers get it as scheduler_address.

    Shared by the tests: each test's workers are gone (verified) before it ends.
    """
    import sys
    import time
    proc = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler",
                             "--host", "127.0.0.1", "--port", "0", "--dashboard-address", ":0",
                             "--no-show"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    address = None
    deadline = time.monotonic() + 30
    for line in proc.stderr:  # type: ignore[union-attr]
        if "Scheduler at:" in line:
            address = line.split("Scheduler at:")[1].strip()
            break
        if time.monotonic() > deadline:
            break
    if address is None:
        proc.kill()
        pytest.fail("the local dask scheduler did not start")
    import threading
    threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep the pipe drained
    yield address
    proc.terminate()
    proc.wait(10)
    proc.stderr.close()  # type: ignore[union-attr]


class ECSContainers:
    """Runs each RUNNING ECS task's container command as a local process; kills it on StopTask.

    moto records tasks but runs no containers. This stands in for the ECS agent:
    the command is exactly what dask-cloudprovider put in the task's container
    overrides (``dask worker <scheduler> --nthreads ... --memory-limit ...``), run
    with this Python instead of the image's. When moto shows the task STOPPED (or
    its desired status STOPPED), the process gets SIGTERM, then SIGKILL after 2 s
    (the ECS agent waits stopTimeout, 30 s by default). On ECS a task is STOPPED
    only once its container has exited; moto says so at once, so :meth:`settle`
    waits for the processes of stopped tasks to be gone.
    """

    def __init__(self) -> None:
        import threading

        import boto3
        self.ecs = boto3.client("ecs")
        self.processes: dict[str, subprocess.Popen] = {}
        self.clusters: dict[str, str] = {}   # task ARN -> cluster ARN
        self.stopping: dict[str, float] = {}
        self.commands: dict[str, list[str]] = {}  # task ARN -> the command it was started with
        self.last_error: Exception | None = None  # what the last look at moto raised
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.poll()
            except Exception as exc:  # a cluster deleted between two calls: look again
                self.last_error = exc
            self.stop.wait(0.1)

    def poll(self) -> None:
        import signal
        import time
        listed = self.ecs.list_clusters()["clusterArns"][-100:]
        active = [c["clusterArn"] for c in (self.ecs.describe_clusters(clusters=listed)[
            "clusters"] if listed else []) if c["status"] == "ACTIVE"]
        for cluster in active:
            arns = [a for a in self.ecs.list_tasks(cluster=cluster)["taskArns"]
                    if a not in self.processes]
            for task in (self.ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]
                         if arns else []):
                if task.get("lastStatus") == "RUNNING" and task.get("desiredStatus") == "RUNNING":
                    self.start(cluster, task)
        by_cluster: dict[str, list[str]] = {}
        for arn, cluster in self.clusters.items():
            if arn not in self.stopping:
                by_cluster.setdefault(cluster, []).append(arn)
        for cluster, arns in by_cluster.items():
            for task in self.ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]:
                if "STOPPED" in (task.get("lastStatus"), task.get("desiredStatus")):
                    with self.lock:
                        self.stopping[task["taskArn"]] = time.monotonic()
                        self.processes[task["taskArn"]].send_signal(signal.SIGTERM)
        for arn, since in list(self.stopping.items()):
            if self.running(arn) and time.monotonic() - since > 2:
                self.kill_group(arn)  # the container goes, with every process in it

    def running(self, arn: str) -> bool:
        """Whether any process of the task's "container" (its process group) still runs."""
        process = self.processes[arn]
        process.poll()  # reap it, so that a zombie does not count
        try:
            os.killpg(process.pid, 0)
            return True
        except ProcessLookupError:
            return False

    def kill_group(self, arn: str) -> None:
        import signal
        try:
            os.killpg(self.processes[arn].pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.processes[arn].poll()

    def argv(self, command: list[str]) -> list[str] | None:
        """The process to run for a task's container command; None: not runnable here.

        The image's ``dask`` script is not this Python's: run its module instead.
        """
        import sys
        if command[:2] == ["dask", "worker"]:
            return [sys.executable, "-m", "distributed.cli.dask_worker", *command[2:]]
        if command[:2] == ["dask", "scheduler"]:
            return [sys.executable, "-m", "distributed.cli.dask_scheduler", *command[2:]]
        return None  # dask-cuda-worker and the like: not something this machine can run

    def base_env(self) -> dict[str, str]:
        """The container's environment before the task definition's and the task's own."""
        return dict(os.environ)

    #: the container's working directory (None: this process's)
    cwd: str | None = None
    #: a folder for each container's output, ``<task id>.log`` (None: discarded)
    logs: str | None = None

    def start(self, cluster: str, task: dict) -> None:
        [override] = task["overrides"]["containerOverrides"]
        argv = self.argv(list(override["command"]))
        if argv is None:
            return
        # as ECS does: the task definition's environment, then the task's overrides
        definition = self.ecs.describe_task_definition(
            taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
        env = self.base_env()
        for source in (definition["containerDefinitions"][0], override):
            env.update({e["name"]: e["value"] for e in source.get("environment", [])})
        env.update(container_secrets(definition["containerDefinitions"][0]))
        output: Any = subprocess.DEVNULL
        if self.logs is not None:
            output = open(os.path.join(self.logs, task["taskArn"].rsplit("/", 1)[1] + ".log"),
                          "wb")
        with self.lock:
            self.clusters[task["taskArn"]] = cluster
            self.commands[task["taskArn"]] = list(override["command"])
            self.processes[task["taskArn"]] = subprocess.Popen(  # its own group: a container
                argv, env=env, cwd=self.cwd, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True)
        if self.logs is not None:
            output.close()  # the container holds its own copy

    def settle(self, timeout: float = 15) -> None:
        """Wait until the process of every stopped task has exited (ECS's meaning of STOPPED)."""
        import time
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                running = [a for a in self.stopping if self.running(a)]
            if not running:
                return
            time.sleep(0.05)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        for arn, process in self.processes.items():
            self.kill_group(arn)
            process.wait(10)


def container_secrets(container: dict) -> dict[str, str]:
    """As the ECS agent does: each ``secrets`` entry's value, read from Secrets Manager."""
    import boto3
    sm = boto3.client("secretsmanager")
    return {e["name"]: sm.get_secret_value(SecretId=e["valueFrom"])["SecretString"]
            for e in container.get("secrets", [])}


@pytest.fixture
def ecs_containers(aws):
    runner = ECSContainers()
    yield runner
    runner.close()
