"""A driver killed with kill -9 leaves a run that reads as failed, and resume refuses a
run whose driver still runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from daskflow import Flow

FLOWS = Path(__file__).parents[1] / "flows"
FAST = {"DASK_DASKFLOW__RUN__HEARTBEAT_INTERVAL": "0.5s",
        "DASK_DASKFLOW__RUN__DRIVER_LOST_AFTER": "3s"}


def _wait_for_record(workdir: Path, flow: str, timeout: float = 60) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for path in (workdir / ".daskflow" / flow).glob("*/_run.json"):
            try:
                if json.loads(path.read_text()).get("status") == "running":
                    return path
            except ValueError:
                pass
        time.sleep(0.1)
    raise AssertionError("the run was never recorded")


def test_a_killed_driver_reads_as_failed_and_a_live_one_is_not_resumed(workdir, monkeypatch):
    for key, value in FAST.items():
        monkeypatch.setenv(key, value)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, str(FLOWS / "slow_foreach.py"), "run", "--n",
                             "2", "--nap", "30"], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _wait_for_record(workdir, "SlowForeachFlow")
        alive = subprocess.run([sys.executable, str(FLOWS / "slow_foreach.py"), "resume"],
                               cwd=workdir, env=env, capture_output=True, text=True,
                               timeout=120)
        assert alive.returncode == 1
        assert "is still running (driver pid" in alive.stderr, alive.stderr
        run = Flow("SlowForeachFlow").latest_run
        assert run.status == "running" and not run.driver_lost
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers: no goodbye
        proc.communicate(timeout=60)
    import dask.config
    time.sleep(3.5)
    with dask.config.set({"daskflow.run.driver-lost-after": "3s"}):  # as the env says
        run = Flow("SlowForeachFlow").latest_run
        assert run.driver_lost and run.status == "failed"
