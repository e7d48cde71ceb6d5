"""`resume` of a wide foreach whose join failed, by phase (issue 31).

The first run of ``flows/resume_join_flow.py`` fails in its join (``BENCH_FAIL_JOIN``);
each rep resumes that same run (``--origin-run-id``), so every rep clones the same
origin.  Printed per rep, whole process, from the command's start:

- to the resumed run's start (the origin indexed: its batch objects read),
- to the join's start (every split cloned, the join sent): issue 31's "clones the
  foreach in under 30 s",
- the join itself (it reads every input's record from the clones' objects),
- to the command's end (the run report written after the run),

with the driver's peak RSS.  Run it in an empty folder (the datastore goes there):

    mkdir /tmp/resume-wide && cd /tmp/resume-wide
    python <repo>/bench/resume_wide.py --n 1000000 --reps 1
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

FLOW = Path(__file__).parent / "flows" / "resume_join_flow.py"


def _command(*args: str) -> list[str]:
    return [sys.executable, str(FLOW), "--quiet", *args, "--max-workers", "2"]


def _run_id(folder: Path) -> str:
    return (folder / "run-id").read_text().strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="foreach splits")
    parser.add_argument("--reps", type=int, default=1, help="resumes of the same run")
    args = parser.parse_args()
    here = Path.cwd()

    began = time.time()
    failed = subprocess.run(
        _command("run", "--n", str(args.n), "--max-num-splits", str(args.n),
                 "--run-id-file", str(here / "run-id")),
        env={**os.environ, "BENCH_FAIL_JOIN": "1"}, capture_output=True, text=True)
    if failed.returncode == 0:
        sys.exit("the first run did not fail in its join")
    origin = _run_id(here)
    print(f"first run (fails in its join): {time.time() - began:.1f} s, "
          f"ResumeJoinFlow/{origin}")

    from daskflow import Run
    for rep in range(args.reps):
        began = time.time()
        with open(here / "resume.log", "w") as log:
            resumed = subprocess.Popen(_command("resume", "--origin-run-id", origin,
                                                "--run-id-file", str(here / "run-id")),
                                       stdout=log, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(resumed.pid, 0)   # the driver's own peak RSS
        ended = time.time()
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit((here / "resume.log").read_text()[-2000:])
        run = Run(f"ResumeJoinFlow/{_run_id(here)}", _namespace_check=False)
        join = run["join"].task
        rss = usage.ru_maxrss / 1024
        print(f"resume {rep + 1}: to the run's start {run.created_at.timestamp() - began:.1f} s"
              f", to the join's start {join.started_at - began:.1f} s, the join "
              f"{join.finished_at - join.started_at:.1f} s, whole {ended - began:.1f} s; "
              f"driver peak RSS {rss:,.0f} MB; load "
              f"{os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
