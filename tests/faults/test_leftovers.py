"""What a SIGKILLed driver leaves on its machine is swept: by the next run, or by
``daskflow clusters gc``.

The driver of ``orphan_flow.py`` is killed while its ``@resources`` step holds its
workers: the step's output spool (in the temporary folder) and, on SLURM, the folder of
TLS credentials its jobs read are left. The spool is kept as the killed attempt's log
before it goes; nothing of either is left after.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from daskflow import Flow, Task

from ..clusters.conftest import require_slurm  # noqa: F401  (a fixture)
from ..conftest import FLOWS, _env

pytestmark = pytest.mark.faults


def _kill_while_holding(workdir, env) -> dict:
    driver = subprocess.Popen([sys.executable, str(FLOWS / "orphan_flow.py"), "run"],
                              cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (workdir / "holding.json").exists():
        assert time.time() < deadline and driver.poll() is None, "the step never held"
        time.sleep(0.2)
    holding = json.loads((workdir / "holding.json").read_text())
    time.sleep(0.5)  # the print is spooled as it comes: let it land
    driver.send_signal(signal.SIGKILL)
    driver.wait(30)
    return holding


def _spools(tmp) -> list:
    return sorted((tmp / f"daskflow-spool-{os.getuid()}").glob("*"))


def test_a_killed_drivers_spool_is_kept_as_its_log_and_swept_by_the_next_run(
        workdir, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = _env({"TMPDIR": str(tmp)})
    holding = _kill_while_holding(workdir, env)
    assert any(p.suffix == ".stdout" for p in _spools(tmp)), _spools(tmp)
    killed = Flow("OrphanFlow").latest_run
    deadline = time.time() + 120  # its workers end by themselves: their scheduler is gone
    while any(psutil.pid_exists(p) for p in holding["pids"]):
        assert time.time() < deadline, "the killed driver's workers did not end"
        time.sleep(0.5)

    done = subprocess.run([sys.executable, str(FLOWS / "orphan_flow.py"), "run", "--wait",
                           "0"], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr
    assert _spools(tmp) == []
    task = killed["hold"].task
    assert "holding its workers" in Task(task.pathspec, attempt=0).stdout


@pytest.mark.slurm
def test_a_killed_drivers_tls_folder_and_jobs_go_with_clusters_gc(
        require_slurm, workdir, tmp_path):  # noqa: F811
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = _env({"TMPDIR": str(tmp), "ORPHAN_BACKEND": "slurm"})
    holding = _kill_while_holding(workdir, env)
    logs = workdir / ".daskflow" / "slurm-logs"
    assert list(logs.glob(".daskflow-tls-*")), "the jobs' credentials should be there"
    gc = subprocess.run([sys.executable, "-m", "daskflow", "clusters", "gc", "--backend",
                         "slurm"], cwd=workdir, env=env, capture_output=True, text=True,
                        timeout=120)
    assert gc.returncode == 0, gc.stderr
    assert "removed" in gc.stdout and ".daskflow-tls-" in gc.stdout, gc.stdout
    assert not list(logs.glob(".daskflow-tls-*"))
    queued = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True,
                            timeout=30).stdout.split()
    assert not set(holding["jobs"]) & set(queued)
