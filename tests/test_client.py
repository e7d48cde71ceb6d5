"""The client's Metaflow API for lineage, metadata, logs and resume, on stored runs."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from daskflow import Flow
from daskflow.exceptions import DataNotFoundError

FLOWS = Path(__file__).parent / "flows"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A run of lineage.py whose second split fails, and its resume (read by every test)."""
    folder = tmp_path_factory.mktemp("lineage")

    def run(*args: str, **env: str) -> None:
        result = subprocess.run([sys.executable, str(FLOWS / "lineage.py"), *args],
                                cwd=folder, capture_output=True, text=True, timeout=240,
                                env={**os.environ, "PYTHONUNBUFFERED": "1", **env})
        assert result.returncode == (1 if env else 0), result.stderr

    run("run", LINEAGE_FAIL="1")
    run("resume")
    resumed, origin = list(Flow("LineageFlow", _root=str(folder / ".daskflow")))[:2]
    return origin, resumed


def _names(tasks) -> list[str]:
    return [t.pathspec.split("/", 2)[2] for t in tasks]


def _names_full(tasks) -> list[str]:
    return [t.pathspec for t in tasks]


def _only(run, step):
    (task,) = run[step]
    return task


def test_parent_and_child_tasks_follow_the_graph(runs):
    _, run = runs
    start, fan, other = (_only(run, s) for s in ("start", "fan", "other"))
    gather, join, end = (_only(run, s) for s in ("gather", "join", "end"))
    other_more = _only(run, "other_more")
    works = sorted(run["work"], key=lambda t: t.index)
    assert list(start.parent_tasks) == [] and list(end.child_tasks) == []
    assert sorted(_names(start.child_tasks)) == sorted(_names([fan, other]))
    assert sorted(_names(fan.child_tasks)) == sorted(_names(works))
    for work in works:
        assert _names(work.parent_tasks) == _names([fan])
        assert _names(work.child_tasks) == _names([gather])
    assert _names(gather.parent_tasks) == _names(works)  # the join's inputs, in order
    assert _names(other.child_tasks) == _names([other_more])
    assert _names(join.parent_tasks) == _names([gather, other_more])
    assert _names(end.parent_tasks) == _names([join])


def test_lineage_of_a_resumed_run_stays_in_the_run(runs):
    _, run = runs
    cloned = [t for step in run for t in step if t.origin_pathspec]
    assert {t.step_name for t in cloned} == {"start", "fan", "other", "other_more", "work"}
    for step in run:
        for task in step:
            for parent in task.parent_tasks:
                assert parent.run_id == run.id and parent.successful, (task, parent)
                assert task.pathspec in _names_full(parent.child_tasks), (task, parent)


def test_origin_pathspec_names_the_resumed_run(runs):
    origin, run = runs
    assert run.origin_pathspec == f"LineageFlow/{origin.id}"
    assert origin.origin_pathspec is None
    start = run["start"].task
    assert start.origin_pathspec == f"LineageFlow/{origin.id}/start/{origin['start'].task.id}"
    assert run["end"].task.origin_pathspec is None
    # a step of a resumed run: the same step in the origin (Metaflow's Step.origin_pathspec;
    # Metaflow gives "LineageFlow/None/start" for a run that is no resume, daskflow None)
    assert run["start"].origin_pathspec == f"LineageFlow/{origin.id}/start"
    assert origin["start"].origin_pathspec is None


def test_metadata_dict_uses_metaflow_names(runs):
    origin, run = runs
    failed = next(t for t in origin["work"] if not t.successful)
    meta = failed.metadata_dict
    assert meta["attempt"] == "0" and meta["attempt_ok"] == "False"
    assert meta["origin-run-id"] == "None" and meta["ds-type"] == "local"
    assert meta["user"] == origin.record["user"]
    assert all(isinstance(v, str) for v in meta.values())
    start = run["start"].task.metadata_dict
    assert start["origin-run-id"] == origin.id
    assert start["origin-task-id"] == origin["start"].task.id
    assert start["attempt_ok"] == "True"


def test_loglines_gives_timestamped_lines_per_stream(runs):
    origin, _ = runs
    start = origin["start"].task
    out = list(start.loglines("stdout"))
    assert [line for _, line in out] == ["one", "", "two"]
    assert [line for _, line in start.loglines("stderr")] == ["careful"]
    assert [line for _, line in start.loglines("stdout", as_unicode=False)] == \
        [b"one", b"", b"two"]
    begun = datetime.fromtimestamp(start.started_at, timezone.utc).replace(tzinfo=None)
    ended = datetime.fromtimestamp(start.finished_at, timezone.utc).replace(tzinfo=None)
    for when, _ in out:
        assert begun <= when <= ended
    assert list(origin["other"].task.loglines("stdout")) == []
    with pytest.raises(DataNotFoundError, match="no log stream 'stdin'"):
        list(start.loglines("stdin"))
