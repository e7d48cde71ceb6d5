#!/usr/bin/env python
"""How long a killed driver's clusters outlive it: ``kill -9`` -> nothing of them left.

For each backend (local, slurm), side by side, interleaved:

  daskflow     ``flows/orphan_daskflow.py run``: a ``@resources`` step (2 workers)
               notes its workers (pids, SLURM job ids) and sleeps; the driver is
               SIGKILLed; timed until none of those pids runs (local) / squeue
               lists none of those jobs (slurm). Nothing helps: the workers end by
               themselves (their scheduler lived in the driver).
  daskflow+gc  the same, and right after the kill ``python -m daskflow clusters gc``
               (its whole process is inside the time).
  rawdask      ``flows/orphan_rawdask.py``: ``LocalCluster`` / ``SLURMCluster`` opened
               directly by a process that is SIGKILLed the same way.

Prints the median seconds per backend and peer and the ratios to rawdask. The
machine is shared: the 1-minute load average is printed with the results.

Usage:
  python bench/orphan_cleanup.py                  # local and slurm, 3 reps
  python bench/orphan_cleanup.py --backends local --reps 5

SLURM is skipped, saying why, when ``sinfo`` does not answer. Not a pytest test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
TREE = str(HERE.parent)


def alive(pids: list[int]) -> list[int]:
    import psutil
    found = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                found.append(pid)
        except psutil.Error:
            pass
    return found


def jobs_left(jobs: list[str]) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i", "-j", ",".join(jobs)],
                         capture_output=True, text=True, timeout=30).stdout
    return out.split()


def one(backend: str, peer: str, records: str) -> float:
    folder = tempfile.mkdtemp(prefix="orphan-bench-")
    env = {**os.environ, "PYTHONPATH": TREE, "ORPHAN_BACKEND": backend,
           "DASK_DASKFLOW__CLUSTER__RECORDS_FOLDER": records}
    if peer == "rawdask":
        argv = [sys.executable, str(HERE / "flows" / "orphan_rawdask.py"), backend]
    else:
        argv = [sys.executable, str(HERE / "flows" / "orphan_daskflow.py"), "run"]
    driver = subprocess.Popen(argv, cwd=folder, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        holding = Path(folder) / "holding.json"
        deadline = time.monotonic() + 300
        while not holding.exists():
            if driver.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{peer} on {backend} never held its workers")
            time.sleep(0.1)
        seen = json.loads(holding.read_text())
        killed = time.monotonic()
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        if peer == "daskflow+gc":
            subprocess.run([sys.executable, "-m", "daskflow", "clusters", "gc", "--backend",
                            backend], cwd=folder, env=env, capture_output=True, timeout=120)
        left = (lambda: jobs_left(seen["jobs"])) if backend == "slurm" else \
            (lambda: alive(seen["pids"]))
        while left():
            if time.monotonic() - killed > 300:
                raise RuntimeError(f"{peer} on {backend}: still there after 300 s: {left()}")
            time.sleep(0.05)
        return time.monotonic() - killed
    finally:
        try:
            os.killpg(driver.pid, signal.SIGKILL)  # whatever of that run is left
        except ProcessLookupError:
            pass
        shutil.rmtree(folder, ignore_errors=True)


def slurm_problem() -> str | None:
    if shutil.which("sinfo") is None:
        return "sinfo not on PATH"
    try:
        done = subprocess.run(["sinfo", "-h"], capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer"
    return None if done.returncode == 0 else "sinfo failed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", nargs="+", default=["local", "slurm"])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    peers = ["daskflow", "daskflow+gc", "rawdask"]
    records = tempfile.mkdtemp(prefix="orphan-bench-records-")
    results: dict[tuple[str, str], list[float]] = {}
    for backend in args.backends:
        if backend == "slurm" and slurm_problem():
            print(f"slurm skipped: {slurm_problem()}")
            continue
        for rep in range(args.reps):
            order = peers[rep % len(peers):] + peers[:rep % len(peers)]
            for peer in order:
                seconds = one(backend, peer, records)
                results.setdefault((backend, peer), []).append(seconds)
                print(f"{backend:6} {peer:12} rep {rep + 1}: {seconds:.2f}s", flush=True)
    shutil.rmtree(records, ignore_errors=True)
    print(f"\nload average (1 min): {os.getloadavg()[0]:.2f}")
    print(f"{'backend':8}{'peer':14}{'median s':>10}{'vs rawdask':>12}")
    for (backend, peer), values in results.items():
        median = statistics.median(values)
        raw = results.get((backend, "rawdask"))
        ratio = f"{median / statistics.median(raw):.2f}x" if raw else "-"
        print(f"{backend:8}{peer:14}{median:10.2f}{ratio:>12}")


if __name__ == "__main__":
    main()
