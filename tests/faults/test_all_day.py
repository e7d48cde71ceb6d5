"""All day in one process: flows run with ``MyFlow.run()`` and ``parallel_map`` calls, one
after another in one Python process, as a notebook or a service does.

``tests/faults/all_day.py`` runs them and samples what the process holds; after the
warm-up nothing may keep growing: open files, threads, child processes (the session cluster's
workers), files in its temporary folder, TLS credential folders; and memory stays within
10% of what it was after the warm-up. ``bench/all_day.py`` runs the issue's full size
(200 runs, 500 maps) and prints the curves' end points.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import _env

pytestmark = pytest.mark.faults

SCRIPT = Path(__file__).with_name("all_day.py")
RUNS, MAPS, WARMUP = 30, 75, 10
STEADY = ("open_files", "threads", "children", "temp_entries", "tls_folders")


def test_a_process_that_runs_flows_and_maps_all_day_holds_steady(tmp_path):
    tmp, work = tmp_path / "tmp", tmp_path / "work"
    tmp.mkdir()
    work.mkdir()
    result = tmp_path / "samples.json"
    done = subprocess.run([sys.executable, str(SCRIPT), str(result), "--runs", str(RUNS),
                           "--maps", str(MAPS), "--warmup", str(WARMUP), "--every", "5"],
                          cwd=work, env=_env({"TMPDIR": str(tmp)}), capture_output=True,
                          text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
    samples = [s for s in json.loads(result.read_text())["samples"] if s["runs"] >= WARMUP]
    warm, end = samples[0], samples[-1]
    assert end["runs"] == RUNS and end["maps"] == MAPS
    # A leak grows with the runs and maps: the second half of the samples after the warm-up
    # holds no more of anything than the first half did at its most (a connection pool
    # that opens one more socket under load, once, stays level).
    first, second = samples[:len(samples) // 2 + 1], samples[len(samples) // 2 + 1:]
    for key in STEADY:
        assert max(s[key] for s in second) <= max(s[key] for s in first), \
            (key, [(s["runs"], s[key], s["fds"]) for s in samples])
    assert end["tls_folders"] == 0
    assert end["rss_mib"] <= 1.10 * warm["rss_mib"], (warm, end)
