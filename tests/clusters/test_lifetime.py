"""The maximum lifetime is enforced by the scheduler itself, on a stock Dask install.

The scheduler command lines that the ECS (Fargate) and Kubernetes backends build
are run here for real, from the stock-worker environment (dask and distributed,
no daskflow: .ci/setup-stock-worker.sh), with one worker joined: at the deadline
the scheduler closes, its worker follows, and both processes exit. Only the
executable (``dask`` -> that Python's ``-m distributed.cli.dask_scheduler``),
the listening host (127.0.0.1) and a scheduler file (to find its port) differ
from what the container would run.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import dask.config
import pytest

from daskflow.clusters import ResourceRequest, get_backend

from .conftest import services_required

#: long enough for a scheduler and a worker to start on a busy 2-core machine (about 6 s)
LIFETIME = 12.0


@pytest.fixture(scope="module")
def stock_python() -> str:
    python = Path(os.environ.get("DASKFLOW_STOCK_PYTHON") or
                  Path.home() / ".cache" / "daskflow" / "stock-worker" / "bin" / "python")
    if not python.exists():
        if services_required("remote"):
            pytest.fail(f"no stock worker environment at {python} (DASKFLOW_REQUIRE_SERVICES=1)")
        pytest.skip(f"no stock worker environment at {python} (.ci/setup-stock-worker.sh)")
    return str(python)


def ecs_command() -> list[str]:
    pytest.importorskip("dask_cloudprovider")
    from daskflow.clusters.aws.cluster import DaskCLIScheduler
    kwargs = get_backend("aws-fargate").cluster_kwargs(ResourceRequest(), name="c1")
    task = DaskCLIScheduler(port=8786, tls=False, scheduler_timeout=kwargs["scheduler_timeout"],
                            scheduler_extra_args=kwargs["scheduler_extra_args"], client=None,
                            cluster_arn="", task_definition_arn="", vpc_subnets=[],
                            security_groups=[], fargate=True, environment={}, tags={})
    return list(task._overrides["command"])


def kubernetes_command() -> list[str]:
    pytest.importorskip("dask_kubernetes")
    spec = get_backend("kubernetes").cluster_spec(ResourceRequest(), "daskflow-abc")
    container = spec["spec"]["scheduler"]["spec"]["containers"][0]
    return [*container.get("command", []), *container["args"]]


def stock_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    return {k: os.environ[k] for k in keep if k in os.environ}


@pytest.mark.parametrize("command", [ecs_command, kubernetes_command],
                         ids=["ecs", "kubernetes"])
def test_the_scheduler_ends_itself_and_its_workers_at_the_max_lifetime(
        command, stock_python: str, tmp_path: Path) -> None:
    with dask.config.set({"daskflow.cluster.max-lifetime": f"{LIFETIME}s"}):
        argv = command()
    assert argv[:2] == ["dask", "scheduler"] and "--preload" in argv
    argv = [stock_python, "-m", "distributed.cli.dask_scheduler", *argv[2:]]
    if "--host" in argv:
        argv[argv.index("--host") + 1] = "127.0.0.1"
    else:
        argv += ["--host", "127.0.0.1"]
    scheduler_file = tmp_path / "scheduler.json"
    argv += ["--port", "0", "--dashboard-address", "127.0.0.1:0",
             "--scheduler-file", str(scheduler_file)]
    log = open(tmp_path / "scheduler.log", "w+")
    started = time.monotonic()
    scheduler = subprocess.Popen(argv, cwd=tmp_path, env=stock_env(), stdout=log,
                                 stderr=subprocess.STDOUT)
    worker = None
    try:
        while not scheduler_file.exists() or \
                not scheduler_file.read_text().strip().endswith("}"):  # the file, then its text
            assert scheduler.poll() is None and time.monotonic() - started < 30, \
                (tmp_path / "scheduler.log").read_text()[-2000:]
            time.sleep(0.1)
        worker = subprocess.Popen(
            [stock_python, "-m", "distributed.cli.dask_worker", "--scheduler-file",
             str(scheduler_file), "--nthreads", "1", "--death-timeout", "120",
             "--no-dashboard"], cwd=tmp_path, env=stock_env(),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        from distributed import Client
        with Client(scheduler_file=str(scheduler_file), timeout=30) as client:
            client.wait_for_workers(1, timeout=30)
            assert client.submit(sum, [1, 2]).result(timeout=30) == 3
            joined = time.monotonic() - started
        assert joined < LIFETIME, "too slow a start to tell the lifetime apart"
        scheduler.wait(timeout=LIFETIME + 30)
        lived = time.monotonic() - started
        worker.wait(timeout=30)  # its scheduler told it to close: no death timeout needed
        log.seek(0)
        text = log.read()
        assert "closing the scheduler at its maximum lifetime of 12.0s" in text, text[-2000:]
        assert LIFETIME <= lived < LIFETIME + 20
    finally:
        for process in (scheduler, worker):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)
        log.close()


def test_a_local_step_cluster_closes_at_its_max_lifetime() -> None:
    """In-driver schedulers (local, SLURM) get the same preload: a step outliving it ends."""
    import psutil

    from daskflow.clusters.processes import worker_pids
    started = time.monotonic()
    with get_backend("local").open(ResourceRequest(workers=1, max_lifetime=6)) as cluster:
        pids = worker_pids(cluster)
        assert pids and cluster.scheduler.status.name == "running"
        while cluster.scheduler.status.name != "closed":
            assert time.monotonic() - started < 6 + 20
            time.sleep(0.1)
        assert time.monotonic() - started >= 6
    # the teardown raised nothing: it found nothing of the cluster left; and independently:
    assert not [pid for pid in pids if psutil.pid_exists(pid)
                and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
