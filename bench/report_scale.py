#!/usr/bin/env python
"""The run report of a 100,000-split foreach: time to read and draw it, and its size.

Writes a synthetic run into a temporary datastore through the real store API
(``ArtifactStore.new_run_id``, ``write_run``, ``claim_attempt``, ``write_done``):
``start`` -> ``fan`` (N foreach splits, durations spread like real short tasks run
on --workers lanes, a few retried, optionally a few failed for good) -> ``join`` ->
``end``; then times ``collect_run`` (reads every task through the client API) and
``report_html`` (draws the page), and prints the page's size.

  python bench/report_scale.py --n 100000
  python bench/report_scale.py --n 10000 --failed 30 --keep

Not a pytest test (tests/report/test_report_scale.py uses its writer at 2,500 splits).
"""
from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

FLOW = "WideFlow"


def write_synthetic_run(root: str, n: int, *, workers: int = 8, retried: int = 10,
                        failed: int = 0, seed: int = 0, threads: int = 8) -> str:
    """Store a finished run of ``start`` -> ``fan`` x ``n`` -> ``join`` -> ``end``
    under ``root``; return its run id.  Split ``i`` of ``fan`` is task ``i + 2``;
    the first ``retried`` splits fail once and succeed on attempt 1, the next
    ``failed`` fail for good (the run is then recorded as failed)."""
    from daskflow.datastore.store import ArtifactStore

    rng = random.Random(seed)
    store = ArtifactStore(root, FLOW)
    run_id = store.new_run_id()
    t0 = time.time() - 3600
    lanes = [t0 + 1.0] * workers
    plans = []  # (task_id, [(started, finished, status)], index)
    for i in range(n):
        lane = min(range(workers), key=lanes.__getitem__)
        attempts = []
        tries = 2 if i < retried else 1
        for k in range(tries):
            start = lanes[lane]
            lanes[lane] = start + rng.lognormvariate(-4.5, 0.6)  # ~11 ms median
            bad = k < tries - 1 or retried <= i < retried + failed
            attempts.append((start, lanes[lane], "failed" if bad else "ok"))
        plans.append((str(i + 2), attempts, i))
    end = max(lanes)

    def write(task_id: str, step: str, attempts, index: int | None, parents, extra=None):
        for started, finished, status in attempts:
            frames = [["start", "items", n, index]] if index is not None else []
            number = store.claim_attempt(run_id, step, task_id, {"started_at": started})
            record = {"attempt": number, "started_at": started, "finished_at": finished,
                      "status": status, "frames": frames, "parents": parents,
                      "worker": f"tcp://127.0.0.1:{40000 + (index or 0) % workers}",
                      **(extra or {})}
            if status != "ok":
                record["error"] = {"type": "ValueError", "message": f"bad item {index}",
                                   "traceback": "Traceback (most recent call last):\n  ..."}
            store.write_done(run_id, step, task_id, number, record)

    write("1", "start", [(t0, t0 + 0.5, "ok")], None, [], {"num_splits": n})
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda p: write(p[0], "fan", p[1], p[2], ["start/1"]), plans))
    ok = failed == 0
    if ok:
        write(str(n + 2), "join", [(end, end + 0.4, "ok")], None, ["fan/2"])
        write(str(n + 3), "end", [(end + 0.5, end + 0.6, "ok")], None, [f"join/{n + 2}"])
    failure = None if ok else {"pathspec": f"{FLOW}/{run_id}/fan/{retried + 2}",
                               "type": "ValueError", "message": f"bad item {retried}"}
    store.write_run(run_id, {"flow_name": FLOW, "run_id": run_id, "user": "bench",
                             "failure": failure,
                             "status": "success" if ok else "failed", "started_at": t0,
                             "finished_at": end + 1.0, "parameters": {"n": str(n)},
                             "tags": [], "system_tags": ["user:bench"]})
    return run_id


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--failed", type=int, default=0, help="splits that fail for good")
    ap.add_argument("--retried", type=int, default=10, help="splits that fail once")
    ap.add_argument("--keep", action="store_true", help="keep the temporary datastore")
    args = ap.parse_args(argv)
    from daskflow.client import Run
    from daskflow.report import collect_run
    from daskflow.report.page import report_html

    root = tempfile.mkdtemp(prefix="report-scale-")
    try:
        t = time.perf_counter()
        run_id = write_synthetic_run(root, args.n, retried=args.retried, failed=args.failed)
        wrote = time.perf_counter() - t
        run = Run(f"{FLOW}/{run_id}", _namespace_check=False, _root=root)
        t = time.perf_counter()
        data = collect_run(run)
        read = time.perf_counter() - t
        t = time.perf_counter()
        html = report_html(data, report_dir=root)
        drawn = time.perf_counter() - t
        work = data.steps["fan"]
        bars = html.count('class="tl-bar')
        print(f"report_scale: N={args.n} splits ({len(work.attempts)} attempts of work), "
              f"{args.retried} retried, {args.failed} failed")
        print(f"  write the run (store API, 8 threads)  {wrote:8.2f} s")
        print(f"  collect_run (client API, 16 threads)  {read:8.2f} s")
        print(f"  report_html                           {drawn:8.2f} s")
        print(f"  page size                             {len(html.encode()) / 1024:8.1f} kB")
        print(f"  bars on the page                      {bars:8d}")
        if args.keep:
            print(f"  kept: {root}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
