"""Client details as Metaflow has them: datetimes, typed parameters, mutable tags, and the
`tag` and `logs` commands a user types."""

from __future__ import annotations

import shlex
import subprocess
import sys
from datetime import datetime

import pytest

from daskflow import Flow
from daskflow.exceptions import TagError

from .conftest import FLOWS, _env


def _cli(workdir, flow: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(FLOWS / flow), *args], cwd=workdir,
                          env=_env(), capture_output=True, text=True, timeout=240)


def test_run_details_tags_and_foreach_logs(workdir):
    proc = _cli(workdir, "foreach.py", "--quiet", "run", "--n", "3", "--tag", "first")
    assert proc.returncode == 0, proc.stderr
    run = Flow("ForeachFlow").latest_run
    assert isinstance(run.created_at, datetime) and isinstance(run.finished_at, datetime)
    assert run.created_at <= run.finished_at
    assert isinstance(run["start"].task.created_at, datetime)
    assert run.parameters == {"n": 3, "mode": "list"}  # typed, not their text

    run.add_tag("second")
    run.replace_tag("first", "third")
    assert {"second", "third"} <= run.user_tags and "first" not in run.user_tags
    with pytest.raises(TagError, match="system tag"):
        run.remove_tag("user:" + run.record["user"])
    with pytest.raises(TagError, match="non-empty string"):
        run.add_tag("")

    run.add_tag("<b>bold</b>")
    shown = run._repr_html_()
    assert "&lt;b&gt;bold&lt;/b&gt;" in shown and "<b>bold" not in shown  # escaped
    assert "success" in shown and "<code>n</code>=3" in shown
    assert "&lt;b&gt;bold" in Flow("ForeachFlow")._repr_html_()
    assert "3 (3 successful)" in run["work"]._repr_html_()
    assert "foreach index" in run["work"].task._repr_html_().lower()
    run.remove_tag("<b>bold</b>")

    listed = _cli(workdir, "foreach.py", "tag", "remove", "--run-id", run.id, "second")
    assert listed.returncode == 0, listed.stderr
    assert "user tags:   third" in listed.stdout
    assert Flow("ForeachFlow").latest_run.user_tags == {"third"}
    assert "third" in _cli(workdir, "foreach.py", "tag", "list").stdout

    logs = _cli(workdir, "foreach.py", "logs", f"{run.id}/work")
    assert logs.returncode == 0, logs.stderr
    headers = [line for line in logs.stdout.splitlines() if line.startswith("--- ")]
    # one header per task, in task id order (pages of a wide step follow it)
    assert headers == [f"--- {task.pathspec} (foreach item {task.index}) ---"
                       for task in sorted(run["work"], key=lambda t: int(t.id))]
    assert logs.stdout.count("(this task printed nothing)") == 3


def test_failure_hint_is_a_command_that_works(workdir):
    proc = _cli(workdir, "failing.py", "run")
    assert proc.returncode == 1
    hint = proc.stderr.strip().splitlines()[-1]
    assert hint.startswith("See its output with: python ")
    command = shlex.split(hint.split(": ", 1)[1])
    shown = subprocess.run([sys.executable, *command[1:]], cwd=workdir, env=_env(),
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "about to fail" in shown.stdout
