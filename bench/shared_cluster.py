#!/usr/bin/env python
"""Two runs on one shared scheduler: how long a short run takes next to a long one.

On a stock ``dask scheduler`` with stock workers (the venv ``.ci/setup-stock-worker.sh``
makes; no daskflow there, an empty working folder), it times, as a user sees them
(``python flow.py run --scheduler-address ...`` in a subprocess, start to exit):

  B alone    a short run: ``--b-splits`` foreach splits of ``--split-seconds`` each
  A alone    a long run: ``--a-splits`` splits of the same length
  A with B   A started, and B started ``--delay`` seconds later, at once on the cluster

and prints B with A / B alone (the issue asks for at most 3x) and A with B - A alone
against B's work (splits x seconds: what A may lose at most). A and B are one flow file
with other parameters (one code package), or with ``--different-code`` two folders
(two packages, as two users' runs). The datastore is a
folder the workers see (they run on this machine). Run it from any checkout:
``PYTHONPATH=<checkout>`` decides whose daskflow the driver runs and ships.

Usage:
  python bench/shared_cluster.py
  python bench/shared_cluster.py --a-splits 400 --workers 2 --skip-a-alone
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

FLOW = '''
import time

from daskflow import FlowSpec, Parameter, step


class {name}(FlowSpec):
    splits = Parameter("splits", default=1)
    seconds = Parameter("seconds", default=0.05)

    @step
    def start(self):
        self.items = list(range(self.splits))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        time.sleep(self.seconds)
        self.value = self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.value for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    {name}()
'''


def stock_python() -> Path:
    default = Path.home() / ".cache" / "daskflow" / "stock-worker" / "bin" / "python"
    return Path(os.environ.get("DASKFLOW_STOCK_PYTHON") or default)


def start_cluster(python: Path, workdir: Path, workers: int) -> tuple[str, list]:
    bare = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    dask = str(python.parent / "dask")
    scheduler_file = workdir.parent / "scheduler.json"
    processes = [subprocess.Popen(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address",
         "127.0.0.1:0", "--scheduler-file", str(scheduler_file)],
        cwd=workdir, env=bare, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    while not scheduler_file.exists():
        time.sleep(0.1)
    address = json.loads(scheduler_file.read_text())["address"]
    processes.append(subprocess.Popen(
        [dask, "worker", address, "--nworkers", str(workers), "--nthreads", "1",
         "--no-dashboard"], cwd=workdir, env=bare, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL))
    from distributed import Client
    with Client(address, timeout=30) as client:
        client.wait_for_workers(workers, timeout=60)
    return address, processes


def write_flow(folder: Path, name: str) -> Path:
    folder.mkdir()
    flow = folder / "flow.py"
    flow.write_text(FLOW.format(name=name))
    return flow


def start_run(flow: Path, root: Path, address: str, splits: int,
              seconds: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(flow), "--quiet", "--datastore-root", str(root), "run",
         "--scheduler-address", address, "--max-num-splits", "100000", "--splits",
         str(splits), "--seconds", str(seconds)], cwd=flow.parent, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen, began: float) -> float:
    out, _ = process.communicate(timeout=3600)
    if process.returncode != 0:
        raise SystemExit(f"a run failed:\n{out}")
    return time.perf_counter() - began


def timed(flow: Path, *args: object) -> float:
    began = time.perf_counter()
    return finish(start_run(flow, *args), began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--a-splits", type=int, default=2000)
    parser.add_argument("--b-splits", type=int, default=20)
    parser.add_argument("--split-seconds", type=float, default=0.05)
    parser.add_argument("--delay", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-a-alone", action="store_true")
    parser.add_argument("--different-code", action="store_true",
                        help="B from another folder (another code package) than A")
    args = parser.parse_args()

    import daskflow
    print(f"daskflow from {Path(daskflow.__file__).parent}")
    with tempfile.TemporaryDirectory(prefix="daskflow-bench-shared-") as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "work").mkdir()
        root = tmp_path / "store"
        a = b = write_flow(tmp_path / "project", "SharedFlow")
        if args.different_code:  # another folder: another code package
            b = write_flow(tmp_path / "other", "OtherFlow")
        address, processes = start_cluster(stock_python(), tmp_path / "work", args.workers)
        try:
            short = (root, address, args.b_splits, args.split_seconds)
            long = (root, address, args.a_splits, args.split_seconds)
            timed(b, *short)  # warm: packages unpacked, imports cached
            b_alone = min(timed(b, *short) for _ in range(3))
            a_alone = None if args.skip_a_alone else timed(a, *long)
            began = time.perf_counter()
            long_run = start_run(a, *long)
            time.sleep(args.delay)
            b_with_a = timed(b, *short)
            a_with_b = finish(long_run, began)
        finally:
            for process in reversed(processes):
                process.terminate()
                process.wait(30)
    work = args.b_splits * args.split_seconds
    print(f"B alone   {b_alone:7.2f} s   ({args.b_splits} splits of {args.split_seconds} s, "
          f"{args.workers} workers)")
    print(f"B with A  {b_with_a:7.2f} s   = {b_with_a / b_alone:.2f} x B alone")
    if a_alone is not None:
        print(f"A alone   {a_alone:7.2f} s   ({args.a_splits} splits)")
        print(f"A with B  {a_with_b:7.2f} s   grew {a_with_b - a_alone:+.2f} s; "
              f"B's work is {work:.2f} s")
    else:
        print(f"A with B  {a_with_b:7.2f} s")


if __name__ == "__main__":
    main()
