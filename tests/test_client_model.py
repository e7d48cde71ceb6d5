"""The client's object model as Metaflow's: every object's parent and path components,
``Task.metadata``, the ``_namespace_check`` keyword, ``current.run`` / ``current.task``.

The expected values are what Metaflow 2.19.39 gives for tests/flows/client_model_flow.py
(its ``from daskflow import`` changed to ``from metaflow import``), run with
``python client_model_flow.py run`` and read back with Metaflow's client.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from daskflow import DataArtifact, Flow, Run, Step, Task, namespace
from daskflow.exceptions import DataNotFoundError

FLOWS = Path(__file__).parent / "flows"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    result = subprocess.run([sys.executable, str(FLOWS / "client_model_flow.py"), "run"],
                            cwd=folder, capture_output=True, text=True, timeout=240,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert result.returncode == 0, result.stderr
    before = os.getcwd()
    os.chdir(folder)
    try:
        namespace(None)
        yield Flow("ClientModelFlow").latest_run
    finally:
        os.chdir(before)
        namespace(None)


def retried(run):
    return next(t for t in run["each"] if t.index == 1)


def test_every_object_has_its_parent_and_path_components(run):
    task = retried(run)
    # Metaflow: Run.parent is the Flow, whose parent is None; each object's
    # path_components are its pathspec's parts; an artifact's parent is its task
    assert run.parent.name == "ClientModelFlow" and run.parent.parent is None
    assert run["each"].parent.pathspec == run.pathspec
    assert task.parent.pathspec == run["each"].pathspec
    assert task.parent.parent.parent.pathspec == "ClientModelFlow"
    assert run.path_components == ["ClientModelFlow", run.id]
    assert run["each"].path_components == ["ClientModelFlow", run.id, "each"]
    assert task.path_components == ["ClientModelFlow", run.id, "each", task.id]
    artifact = DataArtifact(f"{task.pathspec}/value")
    assert artifact.data == 2 and artifact.parent.pathspec == task.pathspec
    assert artifact.path_components == [*task.path_components, "value"]
    assert Flow("ClientModelFlow").path_components == ["ClientModelFlow"]


def test_a_step_lists_its_tasks_newest_first(run):
    # Metaflow: [t.id for t in run["each"]] == ['3', '2']; run["each"].task is '3'
    assert [t.id for t in run["each"]] == ["3", "2"]
    assert run["each"].task.id == "3"


def test_task_metadata_lists_each_attempt(run):
    task = retried(run)
    metadata = task.metadata
    names = {(m.name, m.type) for m in metadata}
    # the names Metaflow records that daskflow knows, with their types
    assert {("attempt", "attempt"), ("attempt-done", "attempt-done"),
            ("attempt_ok", "internal_attempt_status"), ("ds-root", "ds-root"),
            ("ds-type", "ds-type"), ("origin-run-id", "origin-run-id"),
            ("python_version", "python_version"), ("runtime", "runtime"),
            ("user", "user")} <= names
    # Metaflow: attempts ['0', '1'], attempt_ok ['False', 'True'], attempt-done ['0', '1']
    assert sorted(m.value for m in metadata if m.name == "attempt") == ["0", "1"]
    assert sorted(m.value for m in metadata if m.name == "attempt_ok") == ["False", "True"]
    assert sorted(m.value for m in metadata if m.name == "attempt-done") == ["0", "1"]
    assert all(isinstance(m.value, str) and isinstance(m.created_at, int) for m in metadata)
    assert all(m.task.pathspec == task.pathspec for m in metadata)
    # metadata_dict is the latest value of each name
    latest = task.metadata_dict
    assert (latest["attempt"], latest["attempt_ok"], latest["attempt-done"]) == \
        ("1", "True", "1")
    assert latest["origin-run-id"] == "None" and latest["runtime"] == "daskflow"
    # one attempt asked for: its metadata alone
    first = Task(task.pathspec, attempt=0)
    assert sorted((m.name, m.value) for m in first.metadata
                  if m.name in ("attempt", "attempt_ok", "attempt-done")) == [
        ("attempt", "0"), ("attempt-done", "0"), ("attempt_ok", "False")]
    assert first.metadata_dict["attempt_ok"] == "False"


def test_current_run_and_task_inside_a_step(run):
    start = run["start"].task
    # Metaflow: (repr(current.run), current.run.id, current.run.finished) ==
    # ("Run('ClientModelFlow/<id>')", '<id>', False), and the same of current.task
    assert start.data.seen_run == (f"Run('{run.pathspec}')", run.id, False)
    assert start.data.seen_task == (f"Task('{start.pathspec}')", "1", False)


def test_namespace_check_keyword_on_every_object(run):
    task = retried(run)
    namespace("user:somebody-else")
    try:
        for kind, pathspec in ((Run, run.pathspec), (Step, f"{run.pathspec}/each"),
                               (Task, task.pathspec), (DataArtifact, f"{task.pathspec}/value")):
            # Metaflow raises MetaflowNamespaceMismatch: "Object not in namespace ..."
            with pytest.raises(DataNotFoundError, match="not in namespace"):
                kind(pathspec)
            assert kind(pathspec, _namespace_check=False).pathspec == pathspec
        assert [t.id for t in Step(f"{run.pathspec}/each", _namespace_check=False)] == \
            ["3", "2"]
        assert list(Flow("ClientModelFlow")) == []
        assert [r.id for r in Flow("ClientModelFlow", _namespace_check=False)] == [run.id]
    finally:
        namespace(None)


def test_a_step_that_is_no_gang_has_no_control_task(run):
    assert list(run["each"].control_tasks()) == [] and run["each"].control_task is None
