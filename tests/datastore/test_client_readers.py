"""What reads stored runs (the client, dump, logs, report, resume) reads only what is its own."""

from __future__ import annotations

import json
import os

import pytest

from daskflow import Flow, Run, Step, Task
from daskflow.exceptions import InvalidNameError


def test_stray_files_in_the_datastore_break_no_reader(run_flow, workdir):
    assert run_flow("linear_params.py", "run").returncode == 0
    run_id = Flow("LinearFlow").latest_run.id
    flow_root = workdir / ".daskflow" / "LinearFlow"
    for folder, _, _ in os.walk(flow_root):  # as Finder leaves them, in every folder
        (workdir / folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (flow_root / run_id / "notes.txt").write_text("a note beside the steps")

    run = Flow("LinearFlow")[run_id]
    assert sorted(step.id for step in run) == ["end", "middle", "start"]
    assert [task.id for step in run for task in step] == ["3", "2", "1"]
    assert run.data.summary["count"] == 3 and run.successful
    assert [r.id for r in Flow("LinearFlow")] == [run_id]

    dump = run_flow("linear_params.py", "dump", f"{run_id}/start")
    assert dump.returncode == 0 and "values (list): [1, 2]" in dump.stdout, dump.stderr
    logs = run_flow("linear_params.py", "logs", f"{run_id}/middle")
    assert logs.returncode == 0 and "to stderr too" in logs.stderr, logs.stderr
    report = run_flow("linear_params.py", "report", run_id, "--output", "report.html")
    assert report.returncode == 0, report.stderr
    assert "LinearFlow" in (workdir / "report.html").read_text()
    resumed = run_flow("linear_params.py", "resume", "end", "--origin-run-id", run_id)
    assert resumed.returncode == 0, resumed.stderr
    assert Flow("LinearFlow").latest_run["start"].task.origin_pathspec is not None


def test_resume_refuses_an_origin_outside_the_datastore(run_flow, workdir):
    outside = workdir / "outside" / "123"  # a run copied out of the datastore
    outside.mkdir(parents=True)
    (outside / "_run.json").write_text(json.dumps({"status": "failed", "parameter_refs": {}}))
    (workdir / ".daskflow" / "LinearFlow").mkdir(parents=True)
    result = run_flow("linear_params.py", "resume", "--origin-run-id", "../../outside/123")
    assert result.returncode == 1
    assert "Run id '../../outside/123' is not a daskflow run id" in result.stderr
    assert "Traceback" not in result.stderr
    assert os.listdir(workdir / ".daskflow" / "LinearFlow") == []  # no run was started


@pytest.mark.parametrize("make", [
    lambda: Flow("../../tmp"),
    lambda: Run("LinearFlow/.."),
    lambda: Run("../1"),
    lambda: Step("LinearFlow/1/.."),
    lambda: Task("LinearFlow/1/start/..."),
    lambda: Flow("LinearFlow")[".."],
])
def test_the_client_refuses_names_that_are_not_names(workdir, make):
    (workdir / ".daskflow" / "LinearFlow").mkdir(parents=True)
    with pytest.raises(InvalidNameError, match="is not a (Python identifier|daskflow "
                                               "(run|task) id)"):
        make()
