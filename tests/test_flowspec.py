"""Class constants and the foreach attributes Metaflow flows read, checked through the client."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from daskflow import Flow

FLOWS = Path(__file__).parent / "flows"


@pytest.fixture(scope="module")
def constants_run(tmp_path_factory):
    """One run of the flow, read by every test here (each check is on stored results)."""
    folder = tmp_path_factory.mktemp("constants")
    result = subprocess.run([sys.executable, str(FLOWS / "constants.py"), "run"], cwd=folder,
                            capture_output=True, text=True, timeout=240,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert result.returncode == 0, result.stderr
    return Flow("ConstantsFlow", _root=str(folder / ".daskflow")).latest_run


def test_class_constants_are_artifacts_of_every_task(constants_run):
    run = constants_run
    for step in run:
        for task in step:
            assert task.data.MAX == 10 and task.data.LABELS == ["a", "b", "c"], task
            # Not constants: private names, properties, methods, parameters' own view.
            for name in ("_private", "doubled", "helper", "make"):
                assert name not in task.data, (task, name)
    assert run.data.MAX == 10
    assert run["start"].task.data.seen == (10, 20, 2, "made")
    assert run["join"].task.data.max_of_inputs == [10, 10, 10]


def test_constants_and_parameters_cannot_be_assigned_in_a_step(constants_run):
    refused = dict(constants_run["start"].task.data.refused)
    assert set(refused) == {"MAX", "scale"}
    for message in refused.values():
        assert message.startswith("Flow level attributes and Parameters are not modifiable")
    assert "'MAX' is a class constant of flow ConstantsFlow" in refused["MAX"]


def test_foreach_stack_and_current_step_as_metaflow_gives_them(constants_run):
    run = constants_run
    start = run["start"].task.data
    assert start.start_step == "start" and start.start_stack == ([], [])
    bodies = sorted(run["body"], key=lambda t: t.index)
    for index, (task, label) in enumerate(zip(bodies, "abc")):
        (frame,) = task.data.stack
        assert tuple(frame) == ("body", "LABELS", 3, index, label)
        assert (frame.step, frame.var, frame.num_splits, frame.index, frame.value) == \
            ("body", "LABELS", 3, index, label)
        assert task.data.public_stack == [(index, 3, label)]
        assert task.data.body_step == "body"
    assert run["join"].task.data.labels == ["aa", "bb", "cc"]
    assert run.data.end_step == "end"
