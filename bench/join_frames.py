"""A join over many DataFrame artifacts: ``inputs.frame`` / ``run[step].frame`` vs raw Dask.

    python bench/join_frames.py                        # the issue's size: 1,000 x 1M rows
    python bench/join_frames.py --splits 200 --rows 200000 --reps 3

1. Runs ``flows/join_frames_daskflow.py`` as a user does (a whole process, in a
   fresh temporary folder): a foreach of ``--splits`` tasks, each storing a pandas
   DataFrame of ``--rows`` rows (24 bytes a row), then a join that aggregates all of
   them through ``inputs.frame("result")`` on the run's local cluster, whose workers
   have ``--memory-limit`` each (default 1GiB, the issue's bound for the join task:
   the nanny kills a worker that goes above it).  Prints the join's own times and its
   process's peak memory.
2. On one LocalCluster (``--workers`` single-threaded workers, the same memory limit),
   the same aggregation (row count, ``groupby("k").x.mean()``) over the same Parquet
   files, three peers interleaved ``--reps`` times, the one going first rotating:

   - ``daskflow``: ``Flow(...).latest_run["make"].frame("result")`` (reads each task's
     record and each file's footer, no rows);
   - ``dd.concat``: ``dd.concat([dd.read_parquet(f) for f in files])``, the raw Dask
     way of putting many stored frames together;
   - ``read_parquet``: ``dd.read_parquet(files)``, one call over the file list.

   Prints the median time to build the collection and to compute it, and the ratio
   of each to ``dd.concat``'s (to ``dd.read_parquet``'s where ``dd.concat`` fails: at
   1,000 frames dask's optimizer raises RecursionError on it).  Results are checked
   equal across the peers that succeed.

Not a test: nothing here asserts a time.  The machine is shared: the 1-minute load
average is printed.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).parent
FLOW = HERE / "flows" / "join_frames_daskflow.py"


def run_flow(folder: str, args: argparse.Namespace) -> tuple[float, str]:
    env = {**os.environ, "DASK_DASKFLOW__LOCAL__MEMORY_LIMIT": args.memory_limit,
           "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, str(FLOW), "run", "--splits", str(args.splits), "--rows",
               str(args.rows), "--max-num-splits", str(args.splits), "--max-workers",
               str(args.workers)]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"the flow failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def peers(run: object, files: list[str]) -> dict[str, object]:
    import dask.dataframe as dd

    return {
        "daskflow": lambda: run["make"].frame("result"),  # type: ignore[index]
        "dd.concat": lambda: dd.concat([dd.read_parquet(f) for f in files]),
        "read_parquet": lambda: dd.read_parquet(files),
    }


def measure(build: object, client: object) -> tuple[float, float, object]:
    """Build time, compute time and the result; a peer that fails gives its error."""
    t0 = time.perf_counter()
    try:
        frame = build()  # type: ignore[operator]
        t1 = time.perf_counter()
        rows, means = client.compute(  # type: ignore[attr-defined]
            [frame.shape[0], frame.groupby("k").x.mean()], sync=True)
    except Exception as exc:  # noqa: BLE001  (dd.concat of 1,000 frames: RecursionError)
        return time.perf_counter() - t0, float("nan"), f"{type(exc).__name__}: {exc}"[:120]
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, (int(rows), means.sort_index().round(9).tolist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--memory-limit", default="1GiB")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="daskflow-join-frames-")
    try:
        print(f"load average (1 min): {os.getloadavg()[0]:.2f}")
        print(f"{args.splits} splits x {args.rows:,} rows = "
              f"{args.splits * args.rows * 24 / 2**30:.2f} GiB in memory; "
              f"{args.workers} workers of {args.memory_limit}")
        seconds, out = run_flow(folder, args)
        print(f"flow (whole process, foreach + join): {seconds:.1f}s")
        said = [line for line in out.splitlines() if "rows=" in line and "build=" in line]
        print("  join: " + (said[-1].split("] ")[-1] if said else "(no line)"))

        from distributed import Client, LocalCluster

        from daskflow import Flow, namespace

        namespace(None)
        run = Flow("JoinFramesBench", _root=os.path.join(folder, ".daskflow")).latest_run
        files = [task["result"].path for task in run["make"]]
        size = sum(os.path.getsize(f) for f in files)
        print(f"  {len(files)} Parquet files, {size / 2**20:.0f} MiB on disk; join data: "
              f"{run['join'].task.data.join_growth_bytes / 2**20:.0f} MiB of growth, "
              f"build {run['join'].task.data.build_s:.2f}s")

        times: dict[str, list[tuple[float, float]]] = {}
        results = {}
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                          memory_limit=args.memory_limit, dashboard_address="127.0.0.1:0",
                          silence_logs=logging.ERROR) as cluster, Client(cluster) as client, \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")  # dd.concat's note on unknown divisions
            client.wait_for_workers(args.workers)
            import dask.dataframe as dd
            client.compute(dd.read_parquet(files[:2]).x.sum(), sync=True)  # workers' imports
            cases = peers(run, files)
            names = list(cases)
            for rep in range(args.reps):
                order = names[rep % len(names):] + names[:rep % len(names)]
                for name in order:
                    build_s, compute_s, result = measure(cases[name], client)
                    times.setdefault(name, []).append((build_s, compute_s))
                    results[name] = result
        failed = {k: r for k, r in results.items() if isinstance(r, str)}
        worked = {k: r for k, r in results.items() if k not in failed}
        if len({repr(r) for r in worked.values()}) > 1:
            sys.exit(f"peers disagree: { {k: v[0] for k, v in worked.items()} }")
        # the ratio is to raw dd.concat's time; where it failed, to dd.read_parquet's
        peer = next((p for p in ("dd.concat", "read_parquet") if p in worked), None)
        base = sum(statistics.median(t[i] for t in times[peer]) for i in (0, 1)) \
            if peer else float("nan")
        print(f"\n{'peer':<14}{'build s':>10}{'compute s':>11}{'total s':>10}"
              f"{'vs ' + str(peer):>17}")
        for name, rows in times.items():
            build = statistics.median(t[0] for t in rows)
            if name in failed:
                print(f"{name:<14}{build:>10.2f}  failed: {failed[name]}")
                continue
            compute = statistics.median(t[1] for t in rows)
            print(f"{name:<14}{build:>10.2f}{compute:>11.2f}{build + compute:>10.2f}"
                  f"{(build + compute) / base:>16.2f}x")
        print(f"\nmedians of {args.reps}; load average (1 min) now: {os.getloadavg()[0]:.2f}")
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
