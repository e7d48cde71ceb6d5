"""examples/big_dataframe.py three ways: plain pandas, raw dask.dataframe, the daskflow flow.

    python bench/dataframe_peers.py                        # 110M rows, 3 repetitions
    python bench/dataframe_peers.py --rows 2000000 --reps 1
    python bench/dataframe_peers.py --peers rawdask daskflow --json results.json
    python bench/dataframe_peers.py --from-json a.json b.json   # report saved runs

The same computation each time, with the example's own generator functions
(``make_events``, ``make_users``, imported from the example file by path) and
its partitioning (``--partition-rows`` rows per partition, 2M by default):

``pandas``
    One process builds the whole events table (``pd.concat`` of the
    partitions), joins it to the users table, and computes the three
    aggregations of the flow's ``aggregate`` step.  Its peak memory is set
    against ``--pandas-memory-budget`` (2 GiB, one worker's share of the Dask
    peers); once per invocation it also runs under ``RLIMIT_AS`` set to that
    budget, to show whether it fits (it reports ``MemoryError`` and where).
``rawdask``
    What a Dask user would write: ``LocalCluster(n_workers=2,
    threads_per_worker=1, memory_limit="2GiB")``, ``dd.from_map`` over the
    partitions, ``to_parquet`` into a temporary folder, ``read_parquet``,
    merge, the by-region and by-day aggregations in one ``compute``, then the
    per-user totals written with ``to_parquet`` (as the flow stores them).
``daskflow``
    ``python examples/big_dataframe.py run --rows N ...`` in a fresh temporary
    working directory (its ``.daskflow`` datastore goes there): a default
    cluster for ``start``/``end`` and one 2 x 2 GiB step cluster that
    ``generate`` and ``aggregate`` share.

How it measures:

- Every run is its own process, timed from ``Popen`` to exit (interpreter
  start, imports, cluster start and close all included).  Peers alternate,
  the first one rotating per repetition; medians of ``--reps``.
- Memory: this script polls the run's whole process tree (psutil, every
  ``--poll`` s) and keeps each process's ``VmHWM``, the kernel's peak RSS,
  so a peak between two polls is not missed (only a process that dies within
  one poll of its peak could be).  ``driver`` is the process started (for the
  Dask peers it also hosts the scheduler(s) and nannies); a ``worker`` is a
  descendant started by multiprocessing's spawn (a Dask worker).  daskflow's
  workers are told apart by cluster from their start times and the clusters'
  lifetimes in the run's record.
- Before each run it waits (at most ``--wait-load`` s) for the 1-minute load
  average to fall below ``--max-load``, and prints the load it started under.
- The results are checked: total spend (to the cent; sums in another order
  may differ in the last digits) and busiest day must agree across peers.
- For the daskflow flow, the run's record (``Flow(...).latest_run``: tasks'
  ``started_at``/``finished_at``, ``record["clusters"]``) gives a timeline of
  where the time went, printed next to the raw Dask phases.
- The machine may be shared: besides the medians of all runs it prints every
  run with the load it saw, and the medians of the runs during which the
  1-minute load stayed at or below ``--quiet-load``.  ``--json`` keeps the
  results; ``--from-json A.json B.json`` reports several invocations together.

Not a pytest test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
EXAMPLE = os.path.join(REPO_ROOT, "examples", "big_dataframe.py")
PEERS = ("pandas", "rawdask", "daskflow")
BASELINE = "rawdask"
MiB = 2**20


def load_module(name: str, path: str) -> Any:
    """Import a file by path (the example's generators, bench/dataframes.py's helpers)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def example() -> Any:
    """examples/big_dataframe.py, its generators to travel to the workers by value.

    Workers cannot import the file by name, and distributed tries plain pickle
    (by reference) before cloudpickle; out of ``sys.modules`` plain pickle
    fails and cloudpickle copies the functions, as daskflow's workers do.
    """
    module = load_module("big_dataframe_example", EXAMPLE)
    del sys.modules["big_dataframe_example"]
    return module


def measuring() -> Any:
    """bench/dataframes.py, for its peak-memory helpers."""
    return load_module("bench_dataframes", os.path.join(BENCH_DIR, "dataframes.py"))


def partition_sizes(rows: int, partition_rows: int) -> list[int]:
    """Rows per partition, as the flow's ``generate`` step splits them."""
    parts = -(-rows // partition_rows)
    return [min(partition_rows, rows - i * partition_rows) for i in range(parts)]


def parse_size(text: str) -> int:
    from dask.utils import parse_bytes
    return int(parse_bytes(text))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- the child processes -------------------------------------------------------------------

def child_pandas(opts: dict[str, Any]) -> dict[str, Any]:
    import numpy as np  # noqa: F401  (imported before any limit, as the example needs it)
    import pandas as pd

    ex = example()
    peaks = measuring()
    if opts.get("limit"):
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (opts["limit"], opts["limit"]))
    phases: dict[str, float] = {}
    phase = "build"
    mark = time.perf_counter()
    try:
        sizes = partition_sizes(opts["rows"], opts["partition_rows"])
        events = pd.concat([ex.make_events(i, n, opts["users"], opts["seed"])
                            for i, n in enumerate(sizes)])
        users = ex.make_users(opts["users"], opts["seed"])
        phases[phase], mark, phase = time.perf_counter() - mark, time.perf_counter(), "merge"
        joined = events.merge(users, on="user_id", how="left")
        phases[phase], mark, phase = time.perf_counter() - mark, time.perf_counter(), "groupby"
        by_region = (joined.groupby(["region", "kind"], observed=True)
                     .agg(events=("amount", "count"), spend=("amount", "sum"),
                          premium=("premium", "sum")))
        del joined
        days = events.groupby("day")["amount"].sum()
        purchases = events[events["kind"] == "purchase"]
        user_totals = purchases.groupby("user_id")["amount"].sum().to_frame("spend")
        phases[phase] = time.perf_counter() - mark
    except MemoryError:
        return {"error": "MemoryError", "phase": phase,
                "seconds": time.perf_counter() - mark + sum(phases.values()),
                "phases": phases, "self_peak": peaks.peak_bytes()}
    return {"phases": phases, "self_peak": peaks.peak_bytes(),
            "data_bytes": int(events.memory_usage(deep=True).sum()),
            "total_spend": round(float(by_region["spend"].sum()), 2),
            "busiest_day": int(days.idxmax()), "user_totals": len(user_totals)}


def child_rawdask(opts: dict[str, Any]) -> dict[str, Any]:
    import logging

    import dask.dataframe as dd
    import numpy as np
    from distributed import Client, LocalCluster

    ex = example()
    peaks = measuring()
    phases: dict[str, float] = {}
    mark = time.perf_counter()

    def done(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[name] = now - mark
        mark = now

    folder = tempfile.mkdtemp(prefix="rawdask-", dir=opts["tmp"])
    cluster = LocalCluster(n_workers=opts["workers"], threads_per_worker=1,
                           memory_limit=opts["worker_memory"], processes=True,
                           dashboard_address=":0", silence_logs=logging.CRITICAL)
    client = Client(cluster)
    done("cluster start")
    users = dd.from_map(ex.make_users, [opts["users"]], seed=opts["seed"],
                        meta=ex.make_users(0, 0), enforce_metadata=False)
    sizes = partition_sizes(opts["rows"], opts["partition_rows"])
    divisions = [0] + list(np.cumsum(sizes))
    divisions[-1] -= 1
    generated = dd.from_map(ex.make_events, range(len(sizes)), sizes, users=opts["users"],
                            seed=opts["seed"], meta=ex.make_events(0, 0, 1, 0),
                            divisions=divisions, enforce_metadata=False)
    generated.to_parquet(f"{folder}/events")
    done("generate + write Parquet")
    events = dd.read_parquet(f"{folder}/events")
    joined = events.merge(users, on="user_id", how="left")
    by_region = (joined.groupby(["region", "kind"], observed=True)
                 .agg(events=("amount", "count"), spend=("amount", "sum"),
                      premium=("premium", "sum")))
    purchases = events[events["kind"] == "purchase"]
    user_totals = (purchases.groupby("user_id")["amount"].sum(split_out=True)
                   .to_frame("spend"))
    summary, days = client.compute([by_region, events.groupby("day")["amount"].sum()],
                                   sync=True)
    done("read + merge + aggregate")
    user_totals.to_parquet(f"{folder}/user_totals")
    done("user totals to Parquet")
    client.close()
    cluster.close()
    done("cluster close")
    shutil.rmtree(folder, ignore_errors=True)
    return {"phases": phases, "self_peak": peaks.peak_bytes(),
            "total_spend": round(float(summary["spend"].sum()), 2),
            "busiest_day": int(days.idxmax())}


# -- watching a process tree ---------------------------------------------------------------

def _status_kib(pid: int, field: str) -> int | None:
    """A ``/proc/PID/status`` field in KiB (VmHWM: peak RSS, VmRSS: current)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class TreeWatcher:
    """Polls a process and its descendants; keeps each one's peak RSS (VmHWM)."""

    def __init__(self, pid: int, interval: float) -> None:
        import psutil
        self.root = psutil.Process(pid)
        self.interval = interval
        self.procs: dict[int, dict[str, Any]] = {}
        self.loads: list[float] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stopped.is_set():
            self.poll()
            self.loads.append(os.getloadavg()[0])
            self.stopped.wait(self.interval)

    def poll(self) -> None:
        import psutil
        try:
            found = [self.root] + self.root.children(recursive=True)
        except psutil.Error:
            return
        for proc in found:
            peak = _status_kib(proc.pid, "VmHWM")
            if peak is None:
                continue
            seen = self.procs.get(proc.pid)
            # Looked at again while "other": between fork and exec a new worker
            # still shows its parent's command line.
            if seen is None or seen["role"] == "other":
                try:
                    cmd = " ".join(proc.cmdline())
                    created = proc.create_time()
                except psutil.Error:
                    continue
                role = "driver" if proc.pid == self.root.pid else \
                    "worker" if "spawn_main" in cmd else "other"
                seen = self.procs.setdefault(proc.pid, {"pid": proc.pid, "peak": 0})
                seen.update(role=role, created=created)
            seen["peak"] = max(seen["peak"], peak * 1024)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()


# -- the driver ----------------------------------------------------------------------------

def wait_for_quiet(threshold: float, longest: float) -> float:
    """Wait (at most ``longest`` s) until the 1-minute load average is below ``threshold``."""
    deadline = time.time() + longest
    load = os.getloadavg()[0]
    while load >= threshold and time.time() < deadline:
        time.sleep(5)
        load = os.getloadavg()[0]
    return load


def run_process(cmd: list[str], cwd: str, timeout: float,
                interval: float) -> dict[str, Any]:
    """Run ``cmd`` as a whole process; wall time, exit status, output, peaks per process."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (REPO_ROOT, os.environ.get("PYTHONPATH", "")) if p))
    out_path = os.path.join(cwd, "output.txt")
    with open(out_path, "w") as out:
        started = time.time()
        begin = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        watcher = TreeWatcher(proc.pid, interval)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = None
        seconds = time.perf_counter() - begin
        ended = time.time()
        watcher.stop()
        try:  # nothing of this run may outlive it
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    with open(out_path) as f:
        output = f.read()
    return {"rc": rc, "seconds": seconds, "started": started, "ended": ended,
            "output": output, "procs": list(watcher.procs.values()),
            "load_during": max(watcher.loads, default=os.getloadavg()[0])}


def child_result(output: str) -> dict[str, Any]:
    for line in reversed(output.strip().splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise ValueError("no result line")


def run_child(peer: str, opts: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    folder = tempfile.mkdtemp(prefix=f"dfpeers-{peer}-")
    try:
        opts = dict(opts, tmp=folder)
        got = run_process([sys.executable, os.path.abspath(__file__), "--child", peer,
                           json.dumps(opts)], folder, args.timeout, args.poll)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    got["ok"] = got["rc"] == 0
    try:
        got["result"] = child_result(got["output"])
    except ValueError:
        got["ok"], got["result"] = False, {}
    if "error" in got["result"]:
        got["ok"] = False
    return got


def run_flow(args: argparse.Namespace) -> dict[str, Any]:
    import dask.config

    folder = tempfile.mkdtemp(prefix="dfpeers-daskflow-")
    try:
        cmd = [sys.executable, EXAMPLE, "run", "--rows", str(args.rows),
               "--partition_rows", str(args.partition_rows), "--users", str(args.users),
               "--seed", str(args.seed)]
        got = run_process(cmd, folder, args.timeout, args.poll)
        got["ok"] = got["rc"] == 0
        got["result"], got["timeline"] = {}, []
        try:
            with dask.config.set({"daskflow.datastore.root":
                                  os.path.join(folder, ".daskflow")}):
                read_flow_run(got)
        except Exception as exc:  # noqa: BLE001  (a failed run may have no record)
            got["ok"] = False
            got["output"] += f"\n(reading the run's record failed: {exc!r})"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return got


def read_flow_run(got: dict[str, Any]) -> None:
    """Results, cluster lifetimes and task times from the run's record; workers by cluster."""
    from daskflow import Flow

    run = Flow("BigDataFrameFlow").latest_run
    assert run is not None, "no run recorded"
    data = run.data
    if run.successful and data is not None:
        got["result"] = {"total_spend": data.total_spend, "busiest_day": data.busiest_day}
    else:
        got["ok"] = False
    t0 = got["started"]
    events: list[tuple[float, float | None, str]] = [
        (t0, run.record["started_at"], "process start -> run recorded (imports, flow file)")]
    clusters = run.record.get("clusters", [])
    for c in clusters:
        what = f"cluster {c['name']} ({c['workers']} workers"
        what += f", steps {c['step']})" if c.get("step") else ")"
        events.append((c["started_at"], c["ready_at"], f"{what}: start"))
        if c.get("stopped_at"):
            events.append((c["stopped_at"], None, f"{what}: closed"))
    for step in run.steps():
        for task in step.tasks():
            events.append((task.started_at or 0.0, task.finished_at, f"task {step.id}"))
    events.append((run.record["finished_at"], None, "run recorded finished"))
    events.append((got["ended"], None, "process exit"))
    got["timeline"] = [{"at": a - t0, "until": (b - t0) if b else None, "what": w}
                       for a, b, w in sorted(events, key=lambda e: e[0])]
    got["clusters"] = [{"name": c["name"], "started": c["started_at"] - t0,
                        "ready": c["ready_at"] - t0} for c in clusters]
    for proc in got["procs"]:
        if proc["role"] != "worker":
            continue
        for c in reversed(clusters):  # the latest cluster started before the process
            if c["started_at"] - 1.0 <= proc["created"] <= (c["ready_at"] or 0) + 1.0:
                proc["cluster"] = c["name"]
                break


def summarize_procs(got: dict[str, Any]) -> dict[str, Any]:
    """Driver peak and each cluster's worker peaks (largest first), in bytes."""
    driver = max((p["peak"] for p in got["procs"] if p["role"] == "driver"), default=0)
    driver = max(driver, got.get("result", {}).get("self_peak") or 0)
    clusters: dict[str, list[int]] = {}
    for p in got["procs"]:
        if p["role"] == "worker":
            clusters.setdefault(p.get("cluster", "cluster"), []).append(p["peak"])
    return {"driver": driver, "workers": {k: sorted(v, reverse=True)
                                          for k, v in sorted(clusters.items())}}


def median_workers(runs: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Per cluster, the median over runs of the largest, second largest... worker peak."""
    found: dict[str, list[list[int]]] = {}
    for r in runs:
        for name, peaks in r["memory"]["workers"].items():
            found.setdefault(name, []).append(peaks)
    out = {}
    for name, lists in found.items():
        width = max(len(x) for x in lists)
        out[name] = [statistics.median(x[i] for x in lists if len(x) > i) for i in range(width)]
    return out


def fmt_mib(value: float) -> str:
    return f"{value / MiB:,.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=110_000_000,
                        help="events (110M: 2.15 GiB as a pandas table, more than one "
                             "2 GiB worker)")
    parser.add_argument("--partition-rows", type=int, default=2_000_000,
                        help="rows per partition (the example's default)")
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--peers", nargs="+", choices=PEERS, default=list(PEERS))
    parser.add_argument("--workers", type=int, default=2, help="raw Dask's workers")
    parser.add_argument("--worker-memory", default="2GiB", help="raw Dask's memory_limit")
    parser.add_argument("--pandas-memory-budget", default="2GiB",
                        help="pandas' peak is set against this; one extra pandas run is "
                             "made under RLIMIT_AS of this size ('0': none)")
    parser.add_argument("--max-load", type=float, default=1.5,
                        help="wait for the 1-minute load average to fall below this")
    parser.add_argument("--wait-load", type=float, default=180,
                        help="... for at most this many seconds before each run")
    parser.add_argument("--poll", type=float, default=0.25, help="memory poll interval, s")
    parser.add_argument("--timeout", type=float, default=1800, help="per run, s")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--from-json", metavar="PATH", nargs="+",
                        help="print the report of results saved with --json (several: "
                             "their runs together); run nothing")
    parser.add_argument("--quiet-load", type=float, default=2.5,
                        help="also report medians over the runs during which the 1-minute "
                             "load stayed at or below this (2 busy workers make ~2)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        peer, opts = args.child[0], json.loads(args.child[1])
        result = child_pandas(opts) if peer == "pandas" else child_rawdask(opts)
        print(json.dumps(result), flush=True)
        return 0

    if args.from_json:
        saved = merge_saved(args.from_json)
        report(saved["args"], saved["runs"], saved["pandas_limited"], saved["loads"],
               saved["when"], args.quiet_load)
        return 0

    opts = {"rows": args.rows, "partition_rows": args.partition_rows, "users": args.users,
            "seed": args.seed, "workers": args.workers, "worker_memory": args.worker_memory}
    budget = parse_size(args.pandas_memory_budget)
    runs: dict[str, list[dict[str, Any]]] = {peer: [] for peer in args.peers}
    loads: list[float] = []
    failed = 0
    for rep in range(args.reps):
        order = args.peers[rep % len(args.peers):] + args.peers[:rep % len(args.peers)]
        for peer in order:
            load = wait_for_quiet(args.max_load, args.wait_load)
            loads.append(load)
            got = run_flow(args) if peer == "daskflow" else run_child(peer, opts, args)
            got["load"] = load
            got["memory"] = summarize_procs(got)
            log(f"rep {rep + 1}/{args.reps} {peer}: {got['seconds']:.1f} s "
                f"{'ok' if got['ok'] else 'FAILED'} (load {load:.2f} before, "
                f"{got['load_during']:.2f} at most during)")
            if not got["ok"]:
                failed += 1
                log(got["output"][-3000:])
            got.pop("output")
            runs[peer].append(got)
    limited = None
    if "pandas" in args.peers and budget:
        load = wait_for_quiet(args.max_load, args.wait_load)
        limited = run_child("pandas", dict(opts, limit=budget), args)
        limited.pop("output")
        limited["load"] = load
        log(f"pandas under RLIMIT_AS={args.pandas_memory_budget}: "
            f"{limited['result'].get('error', 'fits')} ({limited['seconds']:.1f} s, "
            f"load {load:.2f})")
    when = f"{datetime.datetime.now():%Y-%m-%d %H:%M}"
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "when": when, "loads": loads, "runs": runs,
                       "pandas_limited": limited}, f, indent=2)
    report(vars(args), runs, limited, loads, when, args.quiet_load)
    return 1 if failed else 0


def merge_saved(paths: list[str]) -> dict[str, Any]:
    """Results saved by several invocations (same sizes), their runs together."""
    merged: dict[str, Any] = {}
    for path in paths:
        with open(path) as f:
            saved = json.load(f)
        if not merged:
            merged = dict(saved, runs={}, loads=[], pandas_limited=None, when=[])
        keys = ("rows", "partition_rows", "users", "seed")
        if any(saved["args"][k] != merged["args"][k] for k in keys):
            raise SystemExit(f"{path} measured other sizes than {paths[0]}")
        for peer, runs in saved["runs"].items():
            merged["runs"].setdefault(peer, []).extend(runs)
        merged["loads"].extend(saved["loads"])
        merged["pandas_limited"] = merged["pandas_limited"] or saved.get("pandas_limited")
        merged["when"].append(saved.get("when", "?"))
    merged["when"] = ", ".join(merged["when"])
    return merged


def report(args: dict[str, Any], runs: dict[str, list[dict[str, Any]]],
           limited: dict[str, Any] | None, loads: list[float], when: str,
           quiet_load: float) -> None:
    """Print the table, the checks, and where the time goes."""
    budget = parse_size(args["pandas_memory_budget"])
    rows = args["rows"]
    good = {peer: [r for r in rs if r["ok"]] for peer, rs in runs.items()}
    medians = {peer: statistics.median(r["seconds"] for r in ok)
               for peer, ok in good.items() if ok}
    answers = {(r["result"].get("total_spend"), r["result"].get("busiest_day"))
               for ok in good.values() for r in ok}
    spends = [a[0] for a in answers]
    agree = len({a[1] for a in answers}) <= 1 and \
        (max(spends) - min(spends) <= 1e-9 * abs(max(spends)) + 0.02 if spends else True)
    sizes = partition_sizes(rows, args["partition_rows"])
    print(f"\n{rows:,} events in {len(sizes)} partitions of {args['partition_rows']:,}, "
          f"{args['users']:,} users; medians of runs per peer, whole "
          f"process; 1-minute load before runs {min(loads):.2f}..{max(loads):.2f}; "
          f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{when}")
    header = ("peer", "rows", "runs ok", "median s", "min..max s", "driver MiB",
              "worker MiB (largest first)", "vs rawdask")
    table = []
    for peer, rs in runs.items():
        ok = good[peer]
        if not ok:
            table.append((peer, f"{rows:,}", f"0/{len(rs)}", "failed", "", "", "", ""))
            continue
        secs = [r["seconds"] for r in ok]
        driver = statistics.median(r["memory"]["driver"] for r in ok)
        workers = median_workers(ok)
        shown = "; ".join(f"{name}: " + " / ".join(fmt_mib(p) for p in peaks)
                          for name, peaks in workers.items()) or "-"
        if peer == "pandas":
            shown = f"- (peak {driver / budget:.1f}x the {args['pandas_memory_budget']} budget)"
        ratio = f"{medians[peer] / medians[BASELINE]:.2f}x" if BASELINE in medians else "-"
        table.append((peer, f"{rows:,}", f"{len(ok)}/{len(rs)}", f"{medians[peer]:.1f}",
                      f"{min(secs):.1f}..{max(secs):.1f}", fmt_mib(driver), shown, ratio))
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table)]
    for line in (header, tuple("-" * w for w in widths), *table):
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip())
    if good.get("pandas"):
        data = good["pandas"][0]["result"].get("data_bytes", 0)
        print(f"\npandas: the events table is {fmt_mib(data)} MiB in memory (pandas deep)")
    if limited is not None:
        res = limited["result"]
        print(f"pandas under RLIMIT_AS={args['pandas_memory_budget']}: " +
              (f"{res['error']} while '{res['phase']}', after {res['seconds']:.1f} s "
               f"(peak RSS {fmt_mib(res['self_peak'])} MiB)" if "error" in res else
               f"fits ({limited['seconds']:.1f} s)" if limited["ok"] else
               f"failed (exit {limited['rc']})"))
    print(f"results agree across peers: {'yes' if agree else 'NO: ' + repr(answers)}")
    if "daskflow" in medians and BASELINE in medians:
        ratio = medians["daskflow"] / medians[BASELINE]
        print(f"daskflow / raw Dask: {ratio:.2f}x (target <= 1.2x: "
              f"{'met' if ratio <= 1.2 else 'missed'})")
    quiet = {peer: [r for r in ok if r["load_during"] <= quiet_load]
             for peer, ok in good.items()}
    if quiet.get("daskflow") and quiet.get(BASELINE):
        a, b = (statistics.median(r["seconds"] for r in quiet[p]) for p in (BASELINE, "daskflow"))
        print(f"runs with the 1-minute load at most {quiet_load:g} throughout: raw Dask "
              f"{a:.1f} s ({len(quiet[BASELINE])} runs), daskflow {b:.1f} s "
              f"({len(quiet['daskflow'])} runs): {b / a:.2f}x")
    print("\nevery run (s; 1-minute load before / at most during; for the Dask peers: "
          "generate | aggregate | the rest, as below)")
    for peer, ok in good.items():
        for r in ok:
            split = raw_split(r) if peer == BASELINE else \
                flow_split(r) if peer == "daskflow" else None
            parts = " | ".join(f"{x:.1f}" for x in split) if split else ""
            print(f"  {peer:9} {r['seconds']:6.1f}  {r['load']:.2f} / {r['load_during']:.2f}"
                  f"  {parts}".rstrip())
    if good.get(BASELINE):
        ok = good[BASELINE]
        print("\nraw Dask phases (median s, in the process):")
        for name in ok[0]["result"]["phases"]:
            print(f"  {statistics.median(r['result']['phases'][name] for r in ok):7.2f}  {name}")
        rest = statistics.median(r["seconds"] - sum(r["result"]["phases"].values()) for r in ok)
        print(f"  {rest:7.2f}  interpreter, imports, exit")
    if good.get("daskflow"):
        ok = good["daskflow"]
        middle = sorted(ok, key=lambda r: r["seconds"])[len(ok) // 2]
        print(f"\ndaskflow timeline of the median run ({middle['seconds']:.1f} s; "
              f"s from Popen):")
        for e in middle["timeline"]:
            span = f"-> {e['until']:7.2f}  ({e['until'] - e['at']:6.2f} s)" \
                if e["until"] is not None else ""
            print(f"  {e['at']:7.2f} {span:26} {e['what']}")
    if good.get("daskflow") and good.get(BASELINE):
        compare_phases(good[BASELINE], good["daskflow"])


def _span(run: dict[str, Any], what: str) -> tuple[float, float]:
    found = next(e for e in run["timeline"] if e["what"] == what)
    return found["at"], found["until"]


def raw_split(r: dict[str, Any]) -> tuple[float, float, float]:
    """Raw Dask: generate + write, read + aggregate + totals, everything else."""
    p = r["result"]["phases"]
    gen = p["generate + write Parquet"]
    agg = p["read + merge + aggregate"] + p["user totals to Parquet"]
    return gen, agg, r["seconds"] - gen - agg


def flow_split(r: dict[str, Any]) -> tuple[float, float, float]:
    """daskflow: task generate, task aggregate (with the gap before it), everything else."""
    g0, g1 = _span(r, "task generate")
    _, a1 = _span(r, "task aggregate")
    return g1 - g0, a1 - g1, r["seconds"] - (a1 - g0)


def compare_phases(raw: list[dict[str, Any]], flow: list[dict[str, Any]]) -> None:
    """The same three stretches of work in both, medians: data work and everything else."""
    names = ("generate, write events Parquet", "read, join, aggregate, totals",
             "everything else")
    print("\nwhere the time goes (median s)   raw Dask  daskflow  difference")
    for i, name in enumerate(names):
        a = statistics.median(raw_split(r)[i] for r in raw)
        b = statistics.median(flow_split(r)[i] for r in flow)
        print(f"  {name:30} {a:8.1f}  {b:8.1f}  {b - a:+10.1f}")
    print("  (everything else: interpreter, imports, cluster starts and closes, and for "
          "daskflow\n   the start and end steps, the run's records and report)")

if __name__ == "__main__":
    sys.exit(main())
