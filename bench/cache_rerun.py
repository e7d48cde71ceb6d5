#!/usr/bin/env python
"""@cache: rerun a foreach of N splits with one item changed, against the first run and
against resume (issue 28's bench).

Each repetition works in a fresh temporary folder holding a copy of
flows/cache_rerun_flow.py and runs, each as a whole process timed from launch to exit:

  plain     run --n N                        (no cache: what a run costs today)
  first     run --with cache --n N           (the first run with the cache on: it runs
                                              every split and records its keys)
  changed   run --with cache --n N --bump 7  (one item changed: start, that split, the
                                              join and end run; N - 1 splits reused)
  same      run --with cache --n N --bump 7  (nothing changed: every task reused, no
                                              cluster started)
  resume    resume join --origin-run-id FIRST  (today's cheapest way to keep the splits:
                                              clone start and every split, rerun join
                                              and end; a resume cannot change an item)

and prints the median of each, and the ratios of `changed` to `first` (the issue's goal:
under 10%) and to `resume`. --sleep gives each split that many seconds of work (the
first run's cost grows with it, a rerun's does not).

Examples:
  python bench/cache_rerun.py --n 1000 --reps 3
  python bench/cache_rerun.py --n 1000 --sleep 0.05 --reps 3 --json out.json

Stdlib only; daskflow from this checkout (put first on PYTHONPATH). Not a pytest test.
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
FLOW = HERE / "flows" / "cache_rerun_flow.py"
SOURCE = HERE.parent
KINDS = ("plain", "first", "changed", "same", "resume")
CPU: list[float] = []   # the CPU seconds of each run's process tree


def tree_cpu(session: int, seen: dict[int, float]) -> None:
    """Note the CPU seconds so far of every process of ``session`` (the driver, its fork
    server, its workers), from /proc/<pid>/stat: each one's latest count is kept."""
    tick = os.sysconf("SC_CLK_TCK")
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session:  # field 6, the session id, after the name
            seen[int(name)] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime


def timed(args: list[str], folder: Path) -> tuple[float, str]:
    """Run ``python cache_rerun_flow.py ARGS`` in ``folder``: seconds until the driver's
    process exits (as a shell prompt comes back: the local fork server it started may
    still be finishing its imports, holding no one up), and its stdout.  The CPU seconds
    of its whole process tree (polled every 0.1 s) go to ``CPU``: on a shared machine
    they are the measure that load does not inflate."""
    env = {**os.environ, "PYTHONPATH": f"{SOURCE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        began = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "cache_rerun_flow.py", *args], cwd=folder,
                                env=env, stdout=out, stderr=err, text=True,
                                start_new_session=True)
        seen: dict[int, float] = {}
        while proc.poll() is None:
            tree_cpu(proc.pid, seen)
            time.sleep(0.1)
        seconds = time.perf_counter() - began
        CPU.append(sum(seen.values()))
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # nothing of it lives on into the next run
        except ProcessLookupError:
            pass
        out.seek(0)
        err.seek(0)
        text = out.read()
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed:\n{text}\n{err.read()}")
    return seconds, text


def run_id(out: str) -> str:
    return out.split("(run-id ", 1)[1].split(")", 1)[0]


def repetition(n: int, sleep: float) -> tuple[dict[str, float], dict[str, float]]:
    """Wall seconds of each kind, and its process tree's CPU seconds."""
    common = ["--n", str(n), "--max-num-splits", str(n), "--sleep", str(sleep)]
    found: dict[str, float] = {}
    CPU.clear()
    with tempfile.TemporaryDirectory(prefix="cache-rerun-") as tmp:
        folder = Path(tmp)
        shutil.copy(FLOW, folder / FLOW.name)
        found["plain"], _ = timed(["run", *common], folder)
        shutil.rmtree(folder / ".daskflow")
        found["first"], out = timed(["run", "--with", "cache", *common], folder)
        first = run_id(out)
        found["changed"], out = timed(["run", "--with", "cache", *common, "--bump", "7"],
                                      folder)
        assert "finished 4 tasks" in out, out   # start, the changed split, join, end
        found["same"], out = timed(["run", "--with", "cache", *common, "--bump", "7"],
                                   folder)
        assert "finished 0 tasks" in out and "Cluster" not in out, out
        found["resume"], _ = timed(["resume", "join", "--origin-run-id", first,
                                    "--max-num-splits", str(n)], folder)
    return found, dict(zip(KINDS, CPU))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds of work per split")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", help="write the measurements here")
    args = parser.parse_args()
    print(f"load average (1 min) {os.getloadavg()[0]:.2f}; n={args.n} sleep={args.sleep}s; "
          f"{os.cpu_count()} cores")
    reps, cpus = [], []
    for number in range(args.reps):
        wall, cpu = repetition(args.n, args.sleep)
        reps.append(wall)
        cpus.append(cpu)
        print(f"rep {number + 1} (load {os.getloadavg()[0]:.1f}): " + ", ".join(
            f"{k} {v:.2f}s ({cpu[k]:.2f} CPU s)" for k, v in wall.items()), flush=True)
    median = {kind: statistics.median(r[kind] for r in reps) for kind in KINDS}
    cpu = {kind: statistics.median(r[kind] for r in cpus) for kind in KINDS}
    print("median (whole process, s): " + ", ".join(f"{k} {v:.2f}" for k, v in median.items()))
    print("median CPU of the process tree (s): "
          + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()))
    print(f"changed / first  = {median['changed'] / median['first']:.1%}  (goal: under 10%)")
    print(f"changed / plain  = {median['changed'] / median['plain']:.1%}")
    print(f"changed / resume = {median['changed'] / median['resume']:.1%}")
    print(f"same / first     = {median['same'] / median['first']:.1%}")
    print(f"CPU: changed / first = {cpu['changed'] / cpu['first']:.1%}, changed / resume = "
          f"{cpu['changed'] / cpu['resume']:.1%}, same / first = {cpu['same'] / cpu['first']:.1%}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "reps": reps,
                                               "cpu": cpus, "median": median}, indent=2))


if __name__ == "__main__":
    main()
