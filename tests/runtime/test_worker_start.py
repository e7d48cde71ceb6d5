"""Local workers fork from a warm fork server (daskflow.local.start-method)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daskflow import Flow, Runner
from daskflow.clusters import ClusterBackend, register_backend, registry

FLOWS = Path(__file__).parents[1] / "flows"


EXPECTED_ENV = {"OMP_NUM_THREADS": "1", "DRIVER_MARK": "from-the-driver",
                "started with MALLOC_TRIM_THRESHOLD_": True}


def run_and_read(run_flow, workdir, *args, **env):
    log = workdir / "imports.log"
    result = run_flow("worker_start_flow.py", "run", "--max-workers", "2", *args,
                      env={"IMPORT_LOG": str(log), "DRIVER_MARK": "from-the-driver", **env})
    assert result.returncode == 0, result.stderr
    join = Flow("WorkerStartFlow").latest_run["join"].task.data
    importers = [int(line) for line in log.read_text().split()]
    return join, importers


def test_workers_fork_from_a_server_that_never_runs_the_flow_file(run_flow, workdir):
    # --pre: the splits come after Dask's memory manager had time to drop copies
    join, importers = run_and_read(run_flow, workdir, "--pre", "2.5")
    [driver] = importers  # only the driver: neither the fork server nor a worker
    assert len(join.pids) == 2
    assert driver not in join.pids
    [server] = join.ppids  # one parent for all workers: the fork server
    assert server != driver
    assert join.parent_threads == 1  # forking it is safe: it runs no other thread
    # what a spawned worker would have: Dask's pre-spawn variables and the driver's
    for env in join.envs:
        assert env == EXPECTED_ENV


def test_spawn_start_method_starts_each_worker_afresh(run_flow, workdir):
    join, importers = run_and_read(run_flow, workdir,
                                   DASK_DASKFLOW__LOCAL__START_METHOD="spawn")
    driver = importers[0]
    assert set(join.pids) <= set(importers[1:])  # each worker imported the flow itself
    assert join.ppids == [driver]
    for env in join.envs:
        assert env == EXPECTED_ENV


def test_an_unknown_start_method_is_refused_before_the_run(run_flow, workdir):
    result = run_flow("worker_start_flow.py", "run",
                      env={"DASK_DASKFLOW__LOCAL__START_METHOD": "fork"})
    assert result.returncode == 1
    assert "daskflow.local.start-method is 'fork'" in result.stderr
    assert "forkserver, spawn" in result.stderr and "Traceback" not in result.stderr
    assert not (workdir / ".daskflow" / "WorkerStartFlow").exists()  # nothing stored


def test_a_bad_dashboard_delay_is_refused_before_the_run(run_flow, workdir):
    result = run_flow("worker_start_flow.py", "run",
                      env={"DASK_DASKFLOW__LOCAL__DASHBOARD_DELAY": "soon"})
    assert result.returncode == 1
    assert "daskflow.local.dashboard-delay is 'soon'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (workdir / ".daskflow" / "WorkerStartFlow").exists()  # nothing stored


FORKED_PROBE = """
import multiprocessing, sys
sys.path.insert(0, sys.argv[1])
import probe
from daskflow.clusters.local import forkserver
assert forkserver.warm_up(["tabnanny"])   # a module nothing else here imports
with multiprocessing.get_context("forkserver").Pool(1) as pool:
    print(pool.apply(probe.loaded, ("tabnanny",)), pool.apply(probe.loaded, ("pydoc_data.topics",)),
          pool.apply(probe.frozen) > 10_000)
"""


def test_the_fork_server_imports_what_the_datastore_needs_before_workers_fork(workdir):
    """``prepare(imports=["s3fs"])`` (the run's datastore on S3): the fork server imports
    it once, so a forked worker's first task does not (half a second on s3fs); and what
    the server imported is frozen out of the worker's garbage collections."""
    (workdir / "probe.py").write_text("def loaded(name):\n    import sys\n"
                                      "    return name in sys.modules\n"
                                      "def frozen():\n    import gc\n"
                                      "    return gc.get_freeze_count()\n")
    result = subprocess.run([sys.executable, "-c", FORKED_PROBE, str(workdir)], cwd=workdir,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False", "True"]


class _Preparing(ClusterBackend):
    """A backend that only notes what a run asks it to prepare."""

    name = "preparing-test"
    local_machine = True
    shares_filesystem = True
    imports: list[list[str]] = []

    def prepare(self, *, imports=()):
        type(self).imports.append(list(imports))


@pytest.mark.fast
@pytest.mark.parametrize("root, expected", [("s3://bucket/runs", ["s3fs"]), ("here", [])])
def test_a_run_prepares_its_backends_with_its_datastores_filesystem(root, expected, workdir,
                                                                   monkeypatch):
    monkeypatch.setattr(registry, "known_backends", dict(registry.known_backends))
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))
    register_backend(_Preparing.name, _Preparing)
    _Preparing.imports.clear()
    runner = Runner(FLOWS / "linear_params.py", cluster=_Preparing.name, datastore_root=root)
    runner._preflight()
    assert _Preparing.imports == [expected]
