#!/usr/bin/env python
"""All day in one process: 200 ``MyFlow.run()`` and 500 ``parallel_map`` calls, and what
the process holds along the way.

Runs ``tests/faults/all_day.py`` (a small foreach flow run in-process, with the maps that
keep pace after each run) in a fresh working folder with a temporary folder of its own
(``TMPDIR``), and prints the curves' end points: resident memory, open files, threads,
child processes, entries in the temporary folder and TLS credential folders, after the
warm-up (``--warmup`` runs), halfway and at the end, with memory's growth from the
warm-up to the end. With ``--trace N`` the allocations that grew most after the warm-up
(tracemalloc, N frames each) are printed too.

Usage:
  python bench/all_day.py                          # 200 runs, 500 maps
  python bench/all_day.py --runs 60 --maps 150 --trace 1

Not a pytest test (``tests/faults/test_all_day.py`` is the CI-sized one).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TREE = Path(__file__).resolve().parents[1]
SCRIPT = TREE / "tests" / "faults" / "all_day.py"
COLUMNS = ("rss_mib", "open_files", "threads", "children", "temp_entries", "tls_folders")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--maps", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--trace", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="all-day-") as folder:
        tmp = Path(folder) / "tmp"
        tmp.mkdir()
        result = Path(folder) / "result.json"
        env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(TREE)}
        started = time.time()
        subprocess.run([sys.executable, str(SCRIPT), str(result), "--runs", str(args.runs),
                        "--maps", str(args.maps), "--warmup", str(args.warmup),
                        "--every", str(args.every), "--trace", str(args.trace)],
                       cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL)
        seconds = time.time() - started
        data = json.loads(result.read_text())
    sys.path.insert(0, str(SCRIPT.parent))
    from all_day import memory_growth
    samples = {s["runs"]: s for s in data["samples"]}
    memory = memory_growth(data["samples"], args.warmup)
    points = [("warm-up", samples[args.warmup]), ("halfway", samples[memory["half_runs"]]),
              ("end", samples[args.runs])]
    print(f"{args.runs} runs, {args.maps} parallel_map calls in one process: {seconds:.0f} s, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'point':<8} {'runs':>5} {'maps':>5} " + " ".join(f"{c:>12}" for c in COLUMNS))
    for name, s in points:
        print(f"{name:<8} {s['runs']:>5} {s['maps']:>5} "
              + " ".join(f"{s[c]:>12.1f}" if c == "rss_mib" else f"{s[c]:>12}"
                         for c in COLUMNS))
    warm, half, end = memory["warm"], memory["half"], memory["end"]
    print(f"memory: +{end - warm:.1f} MiB ({memory['growth']:.1f}%) from the warm-up "
          f"to the end, +{end - half:.1f} MiB ({memory['second_half']:.1f}%) in the "
          f"second half (the rule: within 10% from the warm-up to the end)")
    for row in data["growth"][:15]:
        print(f"  {row['kib']:>9.1f} KiB {row['count']:>7}  {' <- '.join(row['where'][::-1])}")


if __name__ == "__main__":
    main()
