#!/usr/bin/env python
"""Two runs on one shared scheduler: how long a short run takes next to a long one.

On a stock ``dask scheduler`` with stock workers (the venv ``.ci/setup-stock-worker.sh``
makes; no daskflow there, an empty working folder), it times, as a user sees them
(``python flow.py run --scheduler-address ...`` in a subprocess, start to exit):

  B alone    a short run: ``--b-splits`` foreach splits of ``--split-seconds`` each
  A alone    a long run: ``--a-splits`` splits of the same length
  A with B   A started, and B started ``--delay`` seconds later, at once on the cluster

each as its wall time and as its record's (the run's own start to end, without the
interpreter's start-up, which a loaded machine stretches most). It prints B with A /
B alone (the issue asks for at most 3x), and A with B - A alone against B's work
(splits x seconds: what A may lose at most). A and B are one flow file with other
parameters (one code package), or with ``--different-code`` two folders (two
packages, as two users' runs). The datastore is a folder the workers see (they run on
this machine). Run it from any checkout: ``PYTHONPATH=<checkout>`` decides whose
daskflow the driver runs and ships.

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


class Started:
    """A run started as a user starts it; ``done()`` gives its wall time (start to exit)
    and its record's (start to end, without the interpreter's start-up)."""

    def __init__(self, flow: Path, root: Path, address: str, splits: int,
                 seconds: float) -> None:
        self.root = root
        self.name = flow.read_text().split("class ")[1].split("(")[0]
        self.id_file = flow.parent / f"run-id-{time.time_ns()}"
        self.began = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, str(flow), "--quiet", "--datastore-root", str(root), "run",
             "--scheduler-address", address, "--max-num-splits", "100000", "--splits",
             str(splits), "--seconds", str(seconds), "--run-id-file", str(self.id_file)],
            cwd=flow.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def done(self) -> tuple[float, float]:
        out, _ = self.process.communicate(timeout=3600)
        wall = time.perf_counter() - self.began
        if self.process.returncode != 0:
            raise SystemExit(f"a run failed:\n{out}")
        import dask.config

        from daskflow import Run, namespace
        namespace(None)
        with dask.config.set({"daskflow.datastore.root": str(self.root)}):
            run = Run(f"{self.name}/{self.id_file.read_text()}")
            record = run.finished_at.timestamp() - run.created_at.timestamp()
        return wall, record


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
            Started(b, *short).done()  # warm: packages unpacked, imports cached
            b_alone = sorted(Started(b, *short).done() for _ in range(3))[1]  # the median
            a_alone = None if args.skip_a_alone else Started(a, *long).done()
            long_run = Started(a, *long)
            time.sleep(args.delay)
            b_with_a = Started(b, *short).done()
            a_with_b = long_run.done()
        finally:
            for process in reversed(processes):
                process.terminate()
                process.wait(30)
    report(args, b_alone, b_with_a, a_alone, a_with_b)


def report(args: argparse.Namespace, b_alone: tuple, b_with_a: tuple,
           a_alone: tuple | None, a_with_b: tuple) -> None:
    work = args.b_splits * args.split_seconds
    print("          wall (s)  record (s)   wall: start to exit; record: the run's own "
          "start to end")
    print(f"B alone   {b_alone[0]:8.2f}  {b_alone[1]:9.2f}    ({args.b_splits} splits of "
          f"{args.split_seconds} s, {args.workers} workers; median of 3)")
    print(f"B with A  {b_with_a[0]:8.2f}  {b_with_a[1]:9.2f}    = "
          f"{b_with_a[0] / b_alone[0]:.2f} x / {b_with_a[1] / b_alone[1]:.2f} x B alone")
    if a_alone is None:
        print(f"A with B  {a_with_b[0]:8.2f}  {a_with_b[1]:9.2f}")
        return
    print(f"A alone   {a_alone[0]:8.2f}  {a_alone[1]:9.2f}    ({args.a_splits} splits)")
    print(f"A with B  {a_with_b[0]:8.2f}  {a_with_b[1]:9.2f}    grew "
          f"{a_with_b[0] - a_alone[0]:+.2f} / {a_with_b[1] - a_alone[1]:+.2f} s; "
          f"B's work is {work:.2f} s")


if __name__ == "__main__":
    main()
