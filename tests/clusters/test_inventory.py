"""``daskflow clusters list`` and ``gc``, run as a user runs them, against real clusters.

- A flow is killed with ``kill -9`` during a ``@resources`` step on the local
  backend and on SLURM: before, ``list`` shows its step cluster with its run alive;
  after, no worker process (local) and no job in squeue (SLURM) is left within the
  workers' death timeout, and ``list`` no longer shows it alive.
- ``gc`` ends what a dead driver left and nothing else: a recorded cluster whose
  worker (a real process) outlived its driver; ECS tasks under moto's server,
  found by their tags (where orphans really happen: the scheduler is not the
  driver's), stopped.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from daskflow.clusters import ResourceRequest
from daskflow.clusters.labels import ClusterLabels, labelled
from daskflow.clusters.processes import alive

FLOWS = Path(__file__).parent.parent / "flows"


def daskflow_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m daskflow ...`` (the ``daskflow`` console command) in a subprocess."""
    return subprocess.run([sys.executable, "-m", "daskflow", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env=dict(os.environ))


def listed(*backends: str, cwd: Path | None = None) -> list[dict[str, Any]]:
    result = daskflow_cli("clusters", "list", "--json",
                          *(a for b in backends for a in ("--backend", b)), cwd=cwd)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["notes"] == [], document["notes"]
    return document["clusters"]


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def start_and_kill(workdir: Path, backend: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run orphan_flow.py until its @resources step holds its workers, check what ``list``
    shows, SIGKILL the driver; return (what the step saw, the listed step cluster)."""
    driver = subprocess.Popen([sys.executable, str(FLOWS / "orphan_flow.py"), "run"],
                              cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "ORPHAN_BACKEND": backend})
    try:
        deadline = time.monotonic() + 180
        while not (workdir / "holding.json").exists():
            if driver.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the flow never reached its step: {driver.stderr.read()[-3000:]}")
            time.sleep(0.2)
        seen = json.loads((workdir / "holding.json").read_text())
        clusters = listed("local", backend, cwd=workdir)
        [step] = [c for c in clusters if c["step"] == "hold"]
        assert step["backend"] == backend and step["run"].startswith("OrphanFlow/")
        assert step["run_alive"] is True and step["workers"] == 2
        assert step["user"] and step["version"] and step["driver"].endswith(f":{driver.pid}")
        assert any(c["step"] is None and c["run"] == step["run"] for c in clusters)  # default
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(10)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(10)
        driver.stderr.close()  # type: ignore[union-attr]
    return seen, step


def wait_for(check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        left = check()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def test_a_killed_local_driver_leaves_no_worker_and_no_live_cluster(workdir: Path) -> None:
    seen, step = start_and_kill(workdir, "local")
    assert len(seen["pids"]) == 2
    assert wait_for(lambda: alive(seen["pids"]), 30) == []   # death timeout: 30 s at most
    left = [c for c in listed("local", cwd=workdir) if c["run"] == step["run"]]
    assert left == []  # their records went with them


@pytest.mark.slurm
def test_a_killed_driver_leaves_no_slurm_job(workdir: Path, require_slurm: None) -> None:
    from dask.utils import parse_timedelta

    from daskflow import config
    seen, step = start_and_kill(workdir, "slurm")
    assert len([j for j in seen["jobs"] if j != "None"]) == 2

    def jobs() -> list[str]:
        out = subprocess.run(["squeue", "-h", "-o", "%i", "-j", ",".join(seen["jobs"])],
                             capture_output=True, text=True, timeout=30).stdout
        return out.split()

    death_timeout = parse_timedelta(config.get("cluster.slurm.death-timeout"))
    still = [c for c in listed("slurm", cwd=workdir) if c["name"] == step["name"]]
    assert all(c["run_alive"] is False for c in still)  # while its jobs end: seen as orphans
    assert wait_for(jobs, death_timeout + 10) == []
    assert [c for c in listed("slurm", cwd=workdir) if c["name"] == step["name"]] == []


def test_gc_ends_a_recorded_cluster_whose_driver_is_gone(tmp_path: Path) -> None:
    from daskflow.clusters import records
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    living = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    host = socket.gethostname()
    try:
        records.write("daskflow-orphan1", backend="local", scheduler=None, pids=[orphan.pid],
                      workers=1, started_at=time.time() - 3 * 3600,
                      labels=ClusterLabels(run="GoneFlow/1", step="train", user="ana",
                                           version="0.1.0", driver=f"{host}:{dead_pid()}"))
        records.write("daskflow-alive1", backend="local", scheduler=None, pids=[living.pid],
                      workers=1, started_at=time.time(),
                      labels=ClusterLabels(user="ana", driver=f"{host}:{os.getpid()}"))
        table = daskflow_cli("clusters", "list", "--backend", "local", cwd=tmp_path)
        assert table.returncode == 0, table.stderr
        lines = table.stdout.splitlines()
        assert lines[0].split() == ["BACKEND", "NAME", "RUN", "STEP", "AGE", "WORKERS",
                                    "STATE", "RUN", "ALIVE"]
        [row] = [line for line in lines if "daskflow-orphan1" in line]
        assert row.split()[:7] == ["local", "daskflow-orphan1", "GoneFlow/1", "train", "3.0h",
                                   "1", "running"] and "no (driver pid" in row

        dry = daskflow_cli("clusters", "gc", "--dry-run", "--backend", "local", cwd=tmp_path)
        assert "would close local cluster daskflow-orphan1 (run GoneFlow/1, step train" in \
            dry.stdout
        assert "1 cluster(s) would be closed." in dry.stdout
        assert orphan.poll() is None  # a dry run ends nothing

        done = daskflow_cli("clusters", "gc", "--backend", "local", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "closed local cluster daskflow-orphan1" in done.stdout
        assert "killed 1 worker process(es)" in done.stdout
        assert "kept local cluster daskflow-alive1" in done.stdout
        assert "1 cluster(s) closed." in done.stdout
        assert orphan.wait(10) == -signal.SIGKILL and living.poll() is None
        assert {c["name"] for c in listed("local", cwd=tmp_path)} == {"daskflow-alive1"}
    finally:
        for process in (orphan, living):
            process.kill()
            process.wait(10)
        records.remove("daskflow-alive1")
        records.remove("daskflow-orphan1")


def test_gc_says_when_there_is_nothing_to_close(tmp_path: Path) -> None:
    for dry in (["--dry-run"], []):
        result = daskflow_cli("clusters", "gc", *dry, "--backend", "local", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "No live clusters: nothing to close.\n"


# -- AWS, under moto's server ------------------------------------------------------------------------
@pytest.mark.aws
def test_gc_stops_the_ecs_tasks_of_a_dead_driver(aws, local_scheduler, ecs_containers,
                                                 tmp_path: Path) -> None:
    import boto3

    from daskflow.clusters import get_backend
    backend = get_backend("aws-fargate", scheduler_address=local_scheduler,
                          use_private_ip=True)
    labels = ClusterLabels(run="LostFlow/7", step="train", user="ana", version="0.1.0",
                           driver=f"{socket.gethostname()}:{dead_pid()}")
    ecs = boto3.client("ecs")
    with labelled(labels), backend.open(ResourceRequest(cpu=1, memory=2**30, workers=2)) \
            as cluster:
        name = cluster.job_name
        [definition] = [arn for arn in ecs.list_task_definitions(
            familyPrefix=f"dask-{name}-worker")["taskDefinitionArns"]]
        tags = {t["key"]: t["value"] for t in ecs.describe_task_definition(
            taskDefinition=definition, include=["TAGS"])["tags"]}
        assert tags["daskflow-run"] == "LostFlow/7" and tags["daskflow-cluster"] == name
        [found] = [c for c in listed("aws", cwd=tmp_path) if c["name"] == name]
        assert (found["backend"], found["run"], found["step"], found["workers"]) == \
            ("aws-fargate", "LostFlow/7", "train", 2)
        assert found["run_alive"] is False and found["state"] == "RUNNING"

        done = daskflow_cli("clusters", "gc", "--backend", "aws", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert f"closed aws-fargate cluster {name} (run LostFlow/7, step train" in done.stdout
        assert "stopped 2 ECS task(s)" in done.stdout
        ecs_containers.settle()
        assert [c for c in listed("aws", cwd=tmp_path) if c["name"] == name] == []
        # the workers' "containers" (this test's only ones) ended with their tasks
        assert len(ecs_containers.processes) == 2
        assert not any(ecs_containers.running(arn) for arn in ecs_containers.processes)
