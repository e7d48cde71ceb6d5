#!/usr/bin/env python
"""From a worker's death to its split running again: seconds, whole process.

A foreach of ``--n`` splits (``flows/die_once_flow.py``) in which one split dies on its
first attempt, noting the moment just before (its worker process SIGKILLed; on SLURM,
``--how job`` cancels its job instead); its second attempt notes when it starts.  The
gap is what a user waits for: the scheduler seeing the worker gone, the driver hearing
why (the nanny's account, SLURM's), recording the attempt and sending the split again,
and a worker taking it (the nanny's new process, or a fresh SLURM job).

Usage:
  python bench/retry_latency.py                          # default cluster (batched), local
  python bench/retry_latency.py --on local                # a local step cluster
  python bench/retry_latency.py --on slurm                # a SLURM step cluster
  python bench/retry_latency.py --on slurm --how job      # ... whose job is cancelled

Prints each repetition's gap and the median, and the 1-minute load average. Not a
pytest test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

FLOW = Path(__file__).parent / "flows" / "die_once_flow.py"


def once(on: str | None, how: str, n: int) -> float:
    with tempfile.TemporaryDirectory(prefix="retry-latency-") as folder:
        env = {**os.environ, "DIE_HOW": how, "PYTHONUNBUFFERED": "1"}
        if on:
            env["DIE_BACKEND"] = on
        victim = n // 2
        done = subprocess.run([sys.executable, str(FLOW), "run", "--n", str(n),
                               "--victim", str(victim)], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise SystemExit(f"the run failed:\n{done.stderr[-3000:]}")
        died = float(Path(folder, f"{victim}-0.time").read_text())
        again = float(Path(folder, f"{victim}-1.time").read_text())
        return again - died


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--on", default=None, help="backend of the split step's own "
                        "cluster (local, slurm); default: the run's default cluster")
    parser.add_argument("--how", default="process", choices=("process", "job"))
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    gaps = []
    for rep in range(args.reps):
        gaps.append(once(args.on, args.how, args.n))
        print(f"rep {rep + 1}: {gaps[-1]:.2f} s from the death to the next attempt's start",
              flush=True)
    where = f"{args.on} step cluster" if args.on else "the default cluster (batched splits)"
    print(f"median {statistics.median(gaps):.2f} s ({where}, {args.how} killed; "
          f"load {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
