"""Shared fixtures: run flow files as a user does, in a fresh working directory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

FLOWS = Path(__file__).parent / "flows"


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DASKFLOW_DEBUG", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@pytest.fixture(scope="session", autouse=True)
def cluster_records(tmp_path_factory: pytest.TempPathFactory):
    """The records of live clusters (daskflow.cluster.records-folder) go to a folder of
    the test session, here and in the flows it runs, not to ~/.daskflow."""
    import dask.config
    folder = str(tmp_path_factory.mktemp("cluster-records"))
    os.environ["DASK_DASKFLOW__CLUSTER__RECORDS_FOLDER"] = folder
    with dask.config.set({"daskflow.cluster.records-folder": folder}):
        yield folder


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory; the client reads `.daskflow/` from it."""
    monkeypatch.chdir(tmp_path)
    import daskflow
    daskflow.default_namespace()
    return tmp_path


@pytest.fixture
def run_flow(workdir: Path):
    """Run `python tests/flows/<flow> <args>` in the working directory, as a user would."""

    def run(flow: str, *args: str, timeout: float = 240,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(FLOWS / flow), *args], cwd=workdir,
                              capture_output=True, text=True, timeout=timeout, env=_env(env))

    return run


@pytest.fixture
def run_in_process(workdir: Path, capsys: pytest.CaptureFixture[str]):
    """Run `python tests/flows/<flow> <args>` in this process, for what needs only the
    graph: the flow file runs as __main__ (so its guard and CLI behave as for a user)."""
    import runpy

    def run(flow: str, *args: str) -> subprocess.CompletedProcess[str]:
        path = str(FLOWS / flow)
        argv = sys.argv
        sys.argv = [path, *args]
        code: int | str | None = 0
        try:
            runpy.run_path(path, run_name="__main__")
        except SystemExit as exc:
            code = exc.code
        finally:
            sys.argv = argv
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess([path, *args], code or 0, out, err)

    return run


def scheduler_address(scheduler_file: Path) -> str | None:
    """The address a scheduler wrote to its ``--scheduler-file``, once all of it is there."""
    import json
    try:
        return json.loads(scheduler_file.read_text())["address"]
    except (OSError, ValueError, KeyError):
        return None


def start_scheduler(folder: Path, *worker_options: str) -> tuple[str, list[subprocess.Popen]]:
    """A real `dask scheduler` and one `dask worker` process with two workers (given
    ``worker_options`` too), in ``folder``: its address, and the two processes."""
    folder.mkdir(parents=True, exist_ok=True)
    sched_file = folder / "scheduler.json"
    procs = [subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", "0", "--dashboard-address", "127.0.0.1:0",
         "--scheduler-file", str(sched_file)],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())]
    deadline = time.time() + 60
    while scheduler_address(sched_file) is None and time.time() < deadline:
        time.sleep(0.1)  # the file comes first, then its text
    procs.append(subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
         str(sched_file), "--nworkers", "2", "--nthreads", "1", "--no-dashboard",
         *worker_options],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env()))
    address = scheduler_address(sched_file)
    assert address is not None, "the dask scheduler did not start within 60 s"
    from distributed import Client
    with Client(address, timeout=30) as client:
        client.wait_for_workers(2, timeout=60)
    return address, procs


def stop_processes(procs: list[subprocess.Popen]) -> None:
    """Terminate ``procs``, last first; kill what is left after 20 s."""
    for proc in reversed(procs):
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


@pytest.fixture(scope="session")
def scheduler(tmp_path_factory: pytest.TempPathFactory):
    """A real `dask scheduler` with two `dask worker` processes, shared by a session."""
    address, procs = start_scheduler(tmp_path_factory.mktemp("scheduler"))
    yield address
    stop_processes(procs)


class _NotFast(RuntimeError):
    """A test marked ``fast`` tried to start a process or a Dask cluster."""


@pytest.fixture(autouse=True)
def _fast_means_in_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """A ``fast`` test may start no process and no Dask cluster: it tests the engine's
    logic alone, so ``pytest -m fast`` stays under a minute. Starting one fails it."""
    if request.node.get_closest_marker("fast") is None:
        yield
        return

    def refuse(what: str):
        def refused(*args, **kwargs):
            raise _NotFast(f"a test marked fast started {what}; drop the marker or the {what}")
        return refused

    def refuse_dask(what: str):
        def refused(self, *args, **kwargs):
            from distributed.core import Status
            self.status = Status.closed  # half-made: its __del__ finds nothing to close
            refuse(what)()
        return refused

    import distributed
    import distributed.deploy.spec
    monkeypatch.setattr(subprocess.Popen, "__init__", refuse("a process"))
    # refused in __init__, undone by monkeypatch: a __new__ set on the class and deleted
    # again leaves CPython's tp_new slot broken for every later instance ("object.__new__()
    # takes exactly one argument"), so no cluster could start after a fast test
    monkeypatch.setattr(distributed.deploy.spec.SpecCluster, "__init__",
                        refuse_dask("a Dask cluster"))
    monkeypatch.setattr(distributed.Client, "__init__", refuse_dask("a Dask client"))
    yield


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """``moto_server`` as a real subprocess on 127.0.0.1; yields its URL. One for the whole
    session, defined here only: a second server would leave fsspec's cached S3 filesystem
    (made from the environment of the test that first used one) talking to the other."""
    import socket
    import sys
    import time

    from .clusters.conftest import MotoURL, _free_port, services_required

    problem = None
    try:
        import boto3
        import moto.server
    except ImportError as exc:
        problem = f"moto[server] not installed ({exc}): pip install 'moto[server]==5.2.5'"
    if problem:
        if services_required("aws"):
            pytest.fail(f"moto is required (DASKFLOW_REQUIRE_SERVICES=1): {problem}")
        pytest.skip(problem)
    port = _free_port()
    env = dict(os.environ, MOTO_IAM_LOAD_MANAGED_POLICIES="true")
    # its access log goes to a file: a pipe nobody reads fills up and blocks the server
    log_path = tmp_path_factory.mktemp("moto") / "moto_server.log"
    log = open(log_path, "wb")
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                               "-p", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                log.close()
                pytest.fail(f"moto_server did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.05)
    yield MotoURL(f"http://127.0.0.1:{port}", log_path)  # .log: its access log
    server.terminate()
    server.wait(10)
    log.close()
