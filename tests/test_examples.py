"""The examples in examples/ run end to end, as the README tells a newcomer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from daskflow import Flow

EXAMPLES = Path(__file__).parent.parent / "examples"


def run_example(name: str, *args: str, cwd: Path,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_hello(workdir):
    result = run_example("hello.py", "run", "--name", "tests", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "Hello, tests!" in result.stdout
    assert Flow("HelloFlow").latest_run.successful


def test_group_stats(workdir):
    temp = workdir / "tmp"
    temp.mkdir()
    result = run_example("group_stats.py", "run", "--rows", "5000", cwd=workdir,
                         env={"TMPDIR": str(temp)})
    assert result.returncode == 0, result.stderr
    assert list(temp.rglob("*.csv")) == []  # the generated table stays in memory
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


def test_mixed_backends_show_plans_every_cluster_without_starting_one(workdir):
    result = run_example("mixed_backends.py", "show", cwd=workdir)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "runs on: slurm, 4 workers x (4 cores, 8 GiB)" in out
    assert "runs on: kubernetes: 1 worker pod requesting cpu=8, memory=32Gi, " \
        "nvidia.com/gpu=1" in out
    assert "runs on: aws-fargate: 2 tasks of 4 vCPU / 16 GiB (Fargate size 4096/16384)" in out
    assert "runs on: aws-ec2: 1 g4dn.2xlarge instance" in out
    assert not (workdir / ".daskflow").exists()


def test_group_stats_reads_a_csv(workdir):
    import pandas as pd
    pd.DataFrame({"region": ["north", "south", "north"], "product": ["a", "b", "a"],
                  "units": [1, 2, 3], "price": [10.0, 20.0, 30.0]}).to_csv(
        workdir / "sales.csv", index=False)
    result = run_example("group_stats.py", "run", "--csv", "sales.csv", cwd=workdir)
    assert result.returncode == 0, result.stderr
    summary = Flow("GroupStatsFlow").latest_run.data.summary
    assert summary.set_index("region")["revenue"].to_dict() == {"north": 100.0, "south": 40.0}
