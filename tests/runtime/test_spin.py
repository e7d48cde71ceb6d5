"""``spin``: one step of a past run again, on its task's inputs, as Metaflow 2.19 does it.

Metaflow's results were recorded with Metaflow 2.19.39 in a separate virtual environment:
tests/flows/spin_flow.py with ``from metaflow import ...``, ``run --alpha 3``, then
``spin RUN/process/TASK`` of the split whose input is 2 (index 1), with and without
``--persist --artifacts-module`` (ARTIFACTS = {"base": 100, "alpha": 5}), ``spin RUN/join
--persist``, and the kept tasks read with ``inspect_spin(".")`` and Metaflow's client.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from daskflow import Flow
from daskflow.datastore import ArtifactStore
from daskflow.runtime.spin import SPIN_TASK_ID, SpinError, SpinStore, inspect_spin, \
    parse_spin_pathspec

FLOWS = Path(__file__).parents[1] / "flows"


def _spin_flow(workdir: Path) -> Path:
    flow = workdir / "spin_flow.py"
    shutil.copy(FLOWS / "spin_flow.py", flow)
    return flow


def _run(flow: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(flow), *args], cwd=flow.parent,
                          capture_output=True, text=True, timeout=240)


def _split_with_input(run, value):
    return next(t for t in run["process"] if t.data.value == 10 + value * 3)


def test_spin_reruns_one_step_on_its_inputs_and_keeps_nothing(workdir):
    flow = _spin_flow(workdir)
    assert _run(flow, "run", "--alpha", "3").returncode == 0
    run = Flow("SpinFlow").latest_run
    task = _split_with_input(run, 2)
    runs_before = sorted(p.name for p in (workdir / ".daskflow" / "SpinFlow").iterdir())

    spun = _run(flow, "spin", f"{run.id}/process/{task.id}")
    assert spun.returncode == 0, spun.stderr
    # Metaflow 2.19.39 printed "processing 2 -> 16 run <its new run id> task 0"
    line = next(l for l in spun.stdout.splitlines() if "processing" in l)
    spin_id = line.split(" run ")[1].split()[0]
    assert line == f"[{spin_id}/process/0] processing 2 -> 16 run {spin_id} task 0"
    assert spin_id != run.id and "it set value=16." in spun.stdout
    assert sorted(p.name for p in (workdir / ".daskflow" / "SpinFlow").iterdir()) == \
        runs_before
    assert not (workdir / ".daskflow_spin").exists()
    assert Flow("SpinFlow").latest_run.id == run.id

    # the point of spin: the step's code changed, its inputs did not
    flow.write_text(flow.read_text().replace("self.base + self.input * self.alpha",
                                             "self.base - self.input * self.alpha"))
    again = _run(flow, "spin", f"{run.id}/process/{task.id}")
    assert "processing 2 -> 4 run" in again.stdout


def test_a_kept_spin_and_replaced_inputs_as_metaflow(workdir):
    flow = _spin_flow(workdir)
    assert _run(flow, "run", "--alpha", "3").returncode == 0
    run = Flow("SpinFlow").latest_run
    task = _split_with_input(run, 2)
    (workdir / "arts.py").write_text('ARTIFACTS = {"base": 100, "alpha": 5}\n')
    kept = _run(flow, "spin", f"{run.id}/process/{task.id}", "--persist",
                "--artifacts-module", "arts.py", "--run-id-file", "spin.id")
    assert kept.returncode == 0, kept.stderr
    spin_id = (workdir / "spin.id").read_text()
    joined = _run(flow, "spin", f"SpinFlow/{run.id}/join", "--persist")
    assert joined.returncode == 0, joined.stderr

    assert Flow("SpinFlow").latest_run.id == run.id       # not a run of the flow
    import dask.config
    configured = dask.config.get("daskflow.datastore.root")
    assert inspect_spin() == str(workdir / ".daskflow_spin")
    try:
        spin = Flow("SpinFlow")[spin_id]["process"].task
        # Metaflow 2.19.39: these artifacts, value 110, the split's index kept
        assert spin.pathspec == f"SpinFlow/{spin_id}/process/{SPIN_TASK_ID}"
        assert sorted(a.id for a in spin.artifacts) == ["alpha", "base", "items", "name",
                                                        "value"]
        assert (spin.data.value, spin.data.alpha, spin.index) == (110, 5, 1)
        join = Flow("SpinFlow").latest_run["join"].task
        assert sorted(a.id for a in join.artifacts) == ["alpha", "name", "values"]
        assert join.data.values == [13, 16, 19]
        assert "spin" in Flow("SpinFlow").latest_run.system_tags
    finally:
        dask.config.set({"daskflow.datastore.root": configured})


def test_a_failing_spin_shows_the_traceback_and_one_line(workdir):
    flow = _spin_flow(workdir)
    assert _run(flow, "run").returncode == 0
    flow.write_text(flow.read_text().replace('print("joined", self.values)',
                                             'raise ValueError("bad join")'))
    failed = _run(flow, "spin", "join")
    assert failed.returncode == 1
    assert 'spin_flow.py", line' in failed.stderr and "in join" in failed.stderr
    assert failed.stderr.strip().splitlines()[-1].startswith(
        "Spin error: Spin of SpinFlow/") and "failed: ValueError: bad join" in failed.stderr


def test_a_gang_step_is_refused_as_metaflow_refuses_parallel(run_in_process):
    result = run_in_process("gang_flow.py", "spin", "train")
    assert result.returncode == 1
    assert "Spinning steps with @parallel decorator is not supported." in result.stderr


@pytest.mark.fast
@pytest.mark.parametrize("given,parsed", [
    ("start", (None, "start", None)),
    ("12/start", ("12", "start", None)),
    ("12/start/3", ("12", "start", "3")),
    ("SpinFlow/12/start", ("12", "start", None)),
    ("SpinFlow/12/start/3", ("12", "start", "3")),
])
def test_the_pathspecs_metaflow_takes(given, parsed):
    assert parse_spin_pathspec(given, "SpinFlow") == parsed


@pytest.mark.fast
def test_the_pathspecs_metaflow_refuses():
    with pytest.raises(SpinError, match="Flow name 'Other' in pathspec does not match "
                                        "current flow 'SpinFlow'"):
        parse_spin_pathspec("Other/12/start/3", "SpinFlow")
    with pytest.raises(SpinError, match="Invalid pathspec format"):
        parse_spin_pathspec("1/2/3/4/5", "SpinFlow")


@pytest.mark.fast
def test_the_spin_store_writes_there_and_reads_the_rest_from_the_run(tmp_path):
    origin = ArtifactStore(str(tmp_path / "origin"), "SpinFlow")
    target = ArtifactStore(str(tmp_path / "target"), "SpinFlow")
    parent = origin.put_artifact([1, 2], "items")
    origin.write_done("7", "start", "1", 0, {"status": "ok"})
    store = SpinStore(origin, target, "7", "99", "process")
    assert store.read_done("99", "start", "1", 0) == {"status": "ok"}  # the run's parent
    assert store.get_artifact(parent) == [1, 2]
    mine = store.put_artifact("spun", "value")
    store.write_done("99", "process", SPIN_TASK_ID, 0, {"status": "ok", "mine": True})
    assert store.read_done("99", "process", SPIN_TASK_ID, 0)["mine"] is True
    assert target.get_artifact(mine) == "spun"
    assert origin.read_done("99", "process", SPIN_TASK_ID, 0) is None
