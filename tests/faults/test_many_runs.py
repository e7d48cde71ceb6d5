"""Many runs of one flow at once on one machine, sharing one datastore folder.

20 drivers started together, each with a local cluster of one worker (the machine has
two cores: the runs are tiny), then 20 together on one existing scheduler. All succeed,
no two get one run id, ``Flow.runs()`` lists every one, and each run's artifacts are its
own (each carries its run's ``mark``).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from daskflow import Flow

from ..conftest import FLOWS, _env

pytestmark = pytest.mark.faults

RUNS = 20


def _start_together(workdir, *options: str) -> dict[str, subprocess.CompletedProcess]:
    procs = {f"m{i}": subprocess.Popen(
        [sys.executable, str(FLOWS / "many_runs_flow.py"), "run", "--mark", f"m{i}",
         "--max-workers", "1", *options],
        cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
        for i in range(RUNS)}
    ended = {}
    for mark, proc in procs.items():
        out, err = proc.communicate(timeout=280)
        ended[mark] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return ended


def _check(ended: dict[str, subprocess.CompletedProcess], before: set[str]) -> None:
    for mark, done in ended.items():
        assert done.returncode == 0, f"run {mark}: {done.stderr[-2000:]}"
    runs = [r for r in Flow("ManyRunsFlow").runs() if r.id not in before]
    assert len(runs) == RUNS and len({r.id for r in runs}) == RUNS
    marks = set()
    for run in runs:
        assert run.successful
        mark = run.data.seen[0][0]
        marks.add(mark)
        assert run.data.seen == [(mark, f"{mark}-{i}", run.id) for i in range(3)]
        for task in run["work"]:
            assert task.data.seen[0] == mark and task.data.seen[2] == run.id
    assert marks == set(ended)


def test_twenty_runs_at_once_each_with_its_local_cluster(workdir):
    _check(_start_together(workdir), set())


def test_twenty_runs_at_once_on_one_scheduler(workdir, scheduler):
    _check(_start_together(workdir, "--scheduler-address", scheduler), set())
