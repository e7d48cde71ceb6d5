"""The examples in examples/ run end to end, as the README tells a newcomer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from daskflow import Flow

EXAMPLES = Path(__file__).parent.parent / "examples"


def run_example(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_hello(workdir):
    result = run_example("hello.py", "run", "--name", "tests", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "Hello, tests!" in result.stdout
    assert Flow("HelloFlow").latest_run.successful


def test_group_stats(workdir):
    result = run_example("group_stats.py", "run", "--rows", "5000", cwd=workdir)
    assert result.returncode == 0, result.stderr
    run = Flow("GroupStatsFlow").latest_run
    summary = run.data.summary
    assert sorted(summary["region"]) == ["central", "east", "islands", "north", "south",
                                         "west"]
    assert summary["orders"].sum() == 5000
    assert abs(summary["revenue"].sum() - run.data.total_revenue) < 0.01
    assert len(run["stats"]) == 6
    start = run["start"].task
    assert start["sales"].format == "parquet"  # DataFrames are stored as Parquet
    assert len(start.data.sales) == 5000
