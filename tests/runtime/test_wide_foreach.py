"""A foreach of many splits (issue 31): what the user reads back of a wide step, and
the engine's bounds on it.

Flow files run as subprocesses and are read back with the client and the CLI; the
fast tests build a step's records through the store API."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from daskflow import Flow
from daskflow.datastore import ArtifactStore

FLOWS = Path(__file__).resolve().parents[1] / "flows"


def cli(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(FLOWS / "batch_flow.py"), *args], cwd=workdir,
                          capture_output=True, text=True, timeout=120)


def headers(text: str) -> list[str]:
    """The task ids a ``dump`` or ``logs`` printed, in order."""
    return re.findall("/".join([r"^(?:--- )?BatchFlow", r"\d+", "work", r"(\d+)"]), text, re.M)


def test_dump_and_logs_print_a_page_of_a_wide_step(run_flow, workdir):
    assert run_flow("batch_flow.py", "run", "--n", "60", "--max-num-splits", "60").returncode == 0
    run = Flow("BatchFlow").latest_run
    ids = sorted((t.id for t in run["work"]), key=int)

    first = cli(workdir, "dump", f"{run.id}/work")
    assert first.returncode == 0, first.stderr
    assert headers(first.stdout) == ids[:20]
    assert f"Tasks 1 to 20 of 60 of {run.id}/work" in first.stderr
    assert "--page 2 for the next 20" in first.stderr

    last = cli(workdir, "dump", f"{run.id}/work", "--page", "3")
    assert headers(last.stdout) == ids[40:]
    assert "Tasks 41 to 60 of 60" in last.stderr and "--page 4" not in last.stderr

    every = cli(workdir, "dump", f"{run.id}/work", "--all")
    assert headers(every.stdout) == ids and "Tasks" not in every.stderr

    logs = cli(workdir, "logs", f"{run.id}/work", "--page", "2", "--page-size", "5")
    assert logs.returncode == 0, logs.stderr
    assert headers(logs.stdout) == ids[5:10]
    assert "fd " in logs.stdout and "Tasks 6 to 10 of 60" in logs.stderr

    past = cli(workdir, "logs", f"{run.id}/work", "--page", "99")
    assert past.returncode == 0 and headers(past.stdout) == []
    assert "page 99 (20 tasks each) is past the last. Use --page 1 to 3" in past.stderr


@pytest.mark.fast
def test_a_steps_task_ids_come_from_names_alone(tmp_path):
    store = ArtifactStore(str(tmp_path), "F")
    stored = store.stored
    entries = [{"task_id": str(i), "attempt": 0, "start": {}, "done": {"status": "ok"}}
               for i in range(10, 20)]
    stored.write_batch("1", "work", entries[:5])      # 10..14
    stored.write_batch("1", "work", entries[5:])      # 15..19
    stored.claim_attempt("1", "work", "21", {})       # a task that ran alone
    stored.claim_attempt("1", "work", "30", {})
    assert store.task_id_spans("1", "work") == [(10, 19), (21, 21), (30, 30)]


def test_twenty_thousand_splits_run_and_read_back(run_flow, workdir):
    """The CI-sized run of the wide foreach (the million is in bench/)."""
    n = 20_000
    result = run_flow("foreach.py", "--quiet", "run", "--n", str(n), "--max-num-splits", str(n),
                      "--max-workers", "2", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    run = Flow("ForeachFlow").latest_run
    assert run.successful and run.data.count == n and run.data.total == n * (n - 1)
    assert sum(t.data.out for t in run["work"]) == n * (n - 1)   # every split, read back
    folder = workdir / ".daskflow" / "ForeachFlow" / run.id / "work"
    assert len(list((folder / "_batches").iterdir())) < n / 50  # splits shared Dask tasks
    alone = [p for p in folder.iterdir() if p.name != "_batches"]  # batches of one split
    assert len(alone) < 20
    page = subprocess.run([sys.executable, str(FLOWS / "foreach.py"), "dump", f"{run.id}/work"],
                          cwd=workdir, capture_output=True, text=True, timeout=120)
    assert len(re.findall(r"^ForeachFlow/", page.stdout, re.M)) == 20
    assert f"Tasks 1 to 20 of {n:,} of {run.id}/work" in page.stderr
