"""A "remote" cluster for tests: stock Dask workers that share nothing with the driver but
the network, and moto's S3 server as the datastore.

The scheduler and two workers are ``dask scheduler`` / ``dask worker`` from the virtual
environment ``.ci/setup-stock-worker.sh`` makes (only the stock ghcr.io/dask/dask
image's packages, no daskflow), started in an empty working directory with no
PYTHONPATH: what the driver's tests can reach of them is what a Kubernetes or AWS
worker would offer. Without that environment the tests skip, unless
DASKFLOW_REQUIRE_SERVICES=1 (or =remote) makes it a failure.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ..clusters.conftest import services_required

BUCKET = "daskflow-remote-tests"


def stock_python_path() -> Path:
    """The stock worker's Python: $DASKFLOW_STOCK_PYTHON, else the setup script's default."""
    default = Path.home() / ".cache" / "daskflow" / "stock-worker" / "bin" / "python"
    return Path(os.environ.get("DASKFLOW_STOCK_PYTHON") or default)


@pytest.fixture(scope="session")
def stock_python(tmp_path_factory) -> Path:
    python = stock_python_path()
    problem = None
    if not python.exists():
        problem = f"no stock worker environment at {python} (run .ci/setup-stock-worker.sh)"
    elif subprocess.run([python, "-c", "import daskflow"], capture_output=True,
                        env=stock_env({}), cwd=tmp_path_factory.mktemp("probe")).returncode == 0:
        problem = f"daskflow is importable in the stock worker environment {python}"
    if problem:
        if services_required("remote"):
            pytest.fail(f"the stock worker is required (DASKFLOW_REQUIRE_SERVICES=1): {problem}")
        pytest.skip(problem)
    return python


def stock_env(extra: dict[str, str]) -> dict[str, str]:
    """A bare environment: no PYTHONPATH, no Dask settings of the driver's; ``extra`` on top."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    return {**{k: os.environ[k] for k in keep if k in os.environ}, **extra}


def aws_env(endpoint: str) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true"}


@dataclass
class StockCluster:
    """The running stock scheduler and workers, and how to start one more worker."""

    address: str
    python: Path
    workdir: Path          # the workers' working directory: must stay empty
    env: dict[str, str]
    processes: list[subprocess.Popen] = field(default_factory=list)

    def start_worker(self, nworkers: int = 1) -> subprocess.Popen:
        dask = str(self.python.parent / "dask")
        process = subprocess.Popen(
            [dask, "worker", self.address, "--nworkers", str(nworkers), "--nthreads", "1",
             "--no-dashboard", "--death-timeout", "60"],
            cwd=self.workdir, env=self.env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        self.processes.append(process)
        return process

    def stop(self, process: subprocess.Popen) -> None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if process in self.processes:
            self.processes.remove(process)


def _address_in(scheduler_file: Path) -> str | None:
    """The address a scheduler wrote to its ``--scheduler-file``, once all of it is there."""
    import json
    try:
        return json.loads(scheduler_file.read_text())["address"]
    except (OSError, ValueError, KeyError):
        return None


def start_stock_cluster(python: Path, workdir: Path, files: Path, env: dict[str, str],
                        workers: int = 2,
                        worker_env: dict[str, str] | None = None) -> StockCluster:
    """A stock ``dask scheduler`` and ``workers`` worker processes (with ``worker_env``
    instead of ``env`` when given), all of them up."""
    scheduler_file = files / "scheduler.json"
    dask = str(python.parent / "dask")
    scheduler = subprocess.Popen(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address",
         "127.0.0.1:0", "--scheduler-file", str(scheduler_file)],
        cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while (address := _address_in(scheduler_file)) is None:  # the file comes, then its text
        if scheduler.poll() is not None or time.monotonic() > deadline:
            scheduler.kill()
            pytest.fail("the stock dask scheduler did not start")
        time.sleep(0.1)
    cluster = StockCluster(address, python, workdir, worker_env or env, [scheduler])
    cluster.start_worker(nworkers=workers)
    import warnings

    from distributed import Client
    from distributed.versions import VersionMismatchWarning
    try:
        with warnings.catch_warnings():  # a test may give its workers other versions
            warnings.simplefilter("ignore", VersionMismatchWarning)
            with Client(address, timeout=30) as client:
                client.wait_for_workers(workers, timeout=60)
    except BaseException:
        for process in reversed(list(cluster.processes)):
            cluster.stop(process)
        raise
    return cluster


def running_stock_cluster(stock_python: Path, moto_server: str, tmp_path_factory,  # noqa: F811
                          name: str):
    """A fixture's body: a stock cluster (scheduler and 2 workers, S3 on moto), stopped
    after; ``name`` names its folders."""
    cluster = start_stock_cluster(stock_python, tmp_path_factory.mktemp(f"{name}-workdir"),
                                  tmp_path_factory.mktemp(f"{name}-scheduler"),
                                  stock_env(aws_env(moto_server)))
    yield cluster
    for process in reversed(list(cluster.processes)):
        cluster.stop(process)


@pytest.fixture(scope="session")
def stock_cluster(stock_python, moto_server, tmp_path_factory):  # noqa: F811
    """``dask scheduler`` and 2 ``dask worker`` processes of the stock environment."""
    yield from running_stock_cluster(stock_python, moto_server, tmp_path_factory, "stock")


@pytest.fixture
def stock_client(stock_cluster):
    """A client of the stock cluster, with its two workers (and only those) up."""
    from distributed import Client
    with Client(stock_cluster.address, timeout=30) as client:
        client.wait_for_workers(2, timeout=60)
        yield client


@pytest.fixture
def s3_root(moto_server, monkeypatch):  # noqa: F811
    """A datastore root on moto's S3 (the bucket made once), with the driver's env set."""
    for key, value in aws_env(moto_server).items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    import s3fs
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    if not fs.exists(BUCKET):
        fs.mkdir(BUCKET)
    return f"s3://{BUCKET}/{os.urandom(4).hex()}"
