#!/usr/bin/env python
"""What the flow page costs a scheduler: a foreach of N trivial splits (default 100,000),
run with --scheduler-address on a `dask scheduler` of its own, with the page off, on,
and on with a browser watching it.

For each run it prints, from the scheduler's process and counters:

  wall s        the run, whole process (python flow.py run ...)
  sched CPU s   user+system CPU of the scheduler process during the run (psutil)
  updates/s     summaries the driver sent the page (run_on_scheduler calls), per second
  requests/s    state requests the page's tab made (long-polled), per second
  page ms/s     milliseconds a second the scheduler's event loop spent in the page's own
                code (taking updates, counting the run's running tasks, answering the tab),
                as the page counts them; run_on_scheduler's own unpickling is not in it
  Dask msgs/s   the scheduler's own task transitions per second, for scale
  load          the machine's 1-minute load average when the run ended

  python bench/flow_page_cost.py --n 100000
  python bench/flow_page_cost.py --n 10000 --modes off on

The watching tab is Debian's Chromium through Playwright (skipped without them).
Not a pytest test.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).parent
FLOW = HERE / "flows" / "foreach_daskflow.py"
BOARD = "daskflow-flow-page"


def start_scheduler(folder: Path) -> tuple[list[subprocess.Popen], str]:
    sched_file = folder / "scheduler.json"
    procs = [subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", "0", "--dashboard-address", "127.0.0.1:0", "--scheduler-file",
         str(sched_file)], cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    while not sched_file.exists():
        time.sleep(0.1)
    procs.append(subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
         str(sched_file), "--nworkers", "2", "--nthreads", "1", "--no-dashboard"],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    address = json.loads(sched_file.read_text())["address"]
    from distributed import Client
    with Client(address, timeout=30) as client:
        client.wait_for_workers(2, timeout=60)
    return procs, address


def counters(address: str) -> dict[str, float]:
    from distributed import Client

    def read(dask_scheduler=None):
        board = dask_scheduler.plugins.get(BOARD)
        return {"published": getattr(board, "published", 0),
                "served": getattr(board, "served", 0), "busy": getattr(board, "busy", 0.0),
                "transitions": dask_scheduler.transition_counter,
                "dashboard": dask_scheduler.services["dashboard"].port}

    with Client(address, timeout=30) as client:
        return client.run_on_scheduler(read)


def watch(link: str, stop: threading.Event) -> None:
    """A Chromium tab on the flow page until ``stop``."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ.get(
            "DASKFLOW_CHROMIUM", "/usr/bin/chromium"), args=["--no-sandbox", "--headless"])
        page = browser.new_page()
        page.goto(link)
        while not stop.is_set():
            page.wait_for_timeout(200)
        browser.close()


def one_run(mode: str, n: int, address: str, scheduler_pid: int, workdir: Path) -> dict:
    import psutil
    env = dict(os.environ, DASK_DASKFLOW__DASHBOARD__FLOW_PAGE="false" if mode == "off"
               else "true")
    before = counters(address)
    sched = psutil.Process(scheduler_pid)
    cpu0 = sum(sched.cpu_times()[:2])
    stop = threading.Event()
    viewer = None
    if mode == "watched":
        link = f"http://127.0.0.1:{before['dashboard']}/daskflow"
        viewer = threading.Thread(target=watch, args=(link, stop), daemon=True)
        viewer.start()
    t0 = time.perf_counter()
    result = subprocess.run([sys.executable, str(FLOW), "--quiet", "run", "--n", str(n),
                             "--max-num-splits", str(n), "--scheduler-address", address],
                            cwd=workdir, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    cpu = sum(sched.cpu_times()[:2]) - cpu0
    stop.set()
    if viewer is not None:
        viewer.join(30)
    if result.returncode != 0:
        raise SystemExit(f"the {mode} run failed:\n{result.stdout}\n{result.stderr}")
    after = counters(address)
    return {"mode": mode, "wall": wall, "cpu": cpu,
            "updates": (after["published"] - before["published"]) / wall,
            "requests": (after["served"] - before["served"]) / wall,
            "busy": (after["busy"] - before["busy"]) / wall * 1000,
            "transitions": (after["transitions"] - before["transitions"]) / wall}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--modes", nargs="+", default=["off", "on", "watched"],
                    choices=["off", "on", "watched"])
    ap.add_argument("--warmup", type=int, default=1000,
                    help="splits of a first run that is not measured (0: none)")
    args = ap.parse_args(argv)
    print(f"flow_page_cost: foreach of {args.n} trivial splits, 2 workers x 1 thread, "
          f"Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="flow-page-cost-") as tmp:
        folder = Path(tmp)
        procs, address = start_scheduler(folder)
        try:
            print(f"{'mode':8} {'wall s':>8} {'sched CPU s':>12} {'CPU %':>6} "
                  f"{'updates/s':>10} {'requests/s':>11} {'page ms/s':>10} {'Dask msgs/s':>12} "
                  f"{'load':>5}")
            if args.warmup:
                (folder / "warmup").mkdir()
                one_run("on", args.warmup, address, procs[0].pid, folder / "warmup")
            for mode in args.modes:
                workdir = folder / mode
                workdir.mkdir()
                row = one_run(mode, args.n, address, procs[0].pid, workdir)
                print(f"{row['mode']:8} {row['wall']:8.1f} {row['cpu']:12.2f} "
                      f"{100 * row['cpu'] / row['wall']:6.1f} {row['updates']:10.2f} "
                      f"{row['requests']:11.2f} {row['busy']:10.3f} {row['transitions']:12.0f} "
                      f"{os.getloadavg()[0]:5.1f}", flush=True)
        finally:
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
