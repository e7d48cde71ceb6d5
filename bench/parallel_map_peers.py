#!/usr/bin/env python
"""Sum of squares of 10 million ints in 10 batches: daskflow parallel_map vs its peers.

Every run is a whole process (flows/batch_sum.py --peer PEER, or for
daskflow-step the flow flows/batch_sum_flow.py) in a fresh temporary working
directory.  The process builds the data untimed, then times the pool/cluster
setup, the first call, a second call and the close, and prints one
`RESULT {json}` line; the bench also times the whole process.  Peers are
interleaved: each repetition runs every peer once, the first peer rotating.

Peers (see flows/batch_sum.py for exactly what each runs):
  loop            plain Python loop in one process
  pool            multiprocessing.Pool(W).map(sum_sq, batches)
  pool-items      Pool(W).map(square, items, chunksize=N/B)
  metaflow        metaflow.parallel_map(sum_sq, batches), in bench/.venv-metaflow
  daskbag         dask.bag.from_sequence(batches, npartitions=B).map(sum_sq).sum()
  daskbag-items   dask.bag.from_sequence(items, npartitions=B).map(square).sum()
  daskflow        parallel_map(sum_sq, batches) on an existing LocalCluster(W) client
  daskflow-items  parallel_map(square, items, batch_size=N/B), N results back
  daskflow-own    parallel_map(sum_sq, batches) starting and closing its own cluster
  daskflow-step   parallel_map(sum_sq, batches) inside a step of a daskflow run
                  (`run --max-workers W`), on the run's cluster

Examples:
  python bench/parallel_map_peers.py --reps 5
  python bench/parallel_map_peers.py --peers daskflow pool metaflow loop --reps 7
  python bench/parallel_map_peers.py --peer-reps daskbag=2 daskbag-items=2 --json out.json
  python bench/parallel_map_peers.py --wait-load 1.5      # wait for a quiet machine

Reuses foreach_peers.py (same folder) for the Metaflow venv and the daskflow
environment.  Not a pytest test.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import foreach_peers as fp

ALL_PEERS = ("loop", "pool", "pool-items", "metaflow", "daskbag", "daskbag-items", "daskflow",
             "daskflow-items", "daskflow-own", "daskflow-step")
BASELINE = "daskflow"
POOL = "pool"


class Runner:
    """Knows how to start each peer; prepares the interpreters once."""

    def __init__(self, args):
        self.args = args
        self.daskflow = fp.DaskflowPeer(args)
        self.metaflow = fp.MetaflowPeer(args)
        self.versions: dict[str, str] = {}

    def prepare(self, peers: list[str]) -> dict[str, str]:
        skipped = {}
        if any(p.startswith("daskflow") for p in peers):
            reason = self.daskflow.prepare()
            if reason:
                skipped.update({p: reason for p in peers if p.startswith("daskflow")})
            else:
                self.versions["daskflow"] = self.daskflow.version
        if "metaflow" in peers:
            reason = self.metaflow.prepare()
            if reason:
                skipped["metaflow"] = reason
            else:
                self.versions["metaflow"] = self.metaflow.version
        ok, out = self.daskflow.probe("import dask, distributed; print(distributed.__version__)")
        if ok:
            self.versions["dask"] = out.splitlines()[-1]
        else:
            skipped.update({p: "dask not importable" for p in peers if "dask" in p})
        return skipped

    def command(self, peer: str) -> tuple[list[str], dict, str]:
        a = self.args
        size = ["--n", str(a.n), "--batches", str(a.batches)]
        if peer == "daskflow-step":
            return ([sys.executable, "batch_sum_flow.py", "run", *size,
                     "--max-workers", str(a.workers)], self.daskflow.env(), "batch_sum_flow.py")
        if peer == "metaflow":
            python, env = self.metaflow.python, self.metaflow.env()
        else:
            python, env = sys.executable, self.daskflow.env()
        return ([python, "batch_sum.py", "--peer", peer, *size, "--workers", str(a.workers)],
                env, "batch_sum.py")


def run_once(runner: Runner, peer: str) -> dict:
    args = runner.args
    cmd, env, flow_file = runner.command(peer)
    tmp = Path(tempfile.mkdtemp(prefix="bench-pmap-%s-" % peer))
    shutil.copy2(fp.FLOWS_DIR / flow_file, tmp / flow_file)
    load = fp.wait_for_quiet(args.wait_load, args.wait_max)
    log_path = tmp / "output.log"
    with open(log_path, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        timed_out = False
        try:
            rc = proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            rc = proc.wait()
        elapsed = time.perf_counter() - t0
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # no worker survives into the next run
    text = log_path.read_text(errors="replace")
    shutil.rmtree(tmp, ignore_errors=True)
    result = {"peer": peer, "process_s": elapsed, "rc": rc, "timed_out": timed_out,
              "loadavg_1m_before": load}
    for line in text.splitlines():
        if "RESULT {" in line:
            result.update(json.loads(line[line.index("RESULT ") + 7:]))
            result["peer"] = peer
    result["ok"] = rc == 0 and not timed_out and bool(result.get("ok"))
    if not result["ok"]:
        result["output_tail"] = text[-2000:]
    return result


def median(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def summarize(results: list[dict], peers: list[str]) -> list[dict]:
    rows = []
    for peer in peers:
        good = [r for r in results if r["peer"] == peer and r["ok"]]
        for r in good:
            r["setup_call_s"] = r["setup_s"] + r["call_s"]
        rows.append({
            "peer": peer, "runs": len(good),
            "failed": sum(1 for r in results if r["peer"] == peer and not r["ok"]),
            **{k: median(good, k) for k in ("setup_s", "call_s", "call2_s", "setup_call_s",
                                             "process_s")},
            "call_min_s": min((r["call_s"] for r in good), default=None),
            "call_max_s": max((r["call_s"] for r in good), default=None),
        })
    by_peer = {r["peer"]: r for r in rows}
    for row in rows:
        for other, label in ((BASELINE, "daskflow"), (POOL, "pool")):
            for key in ("call_s", "setup_call_s"):
                base = by_peer.get(other, {}).get(key)
                value = row[key]
                row["%s_vs_%s" % (key[:-2], label)] = (value / base) if value and base else None
    return rows


def print_table(rows: list[dict], skipped: dict[str, str]) -> None:
    def f(v, spec=".2f"):
        return "-" if v is None else format(v, spec)

    def x(v):
        return "-" if v is None else "%.2fx" % v

    header = ("peer", "runs", "setup s", "call s", "2nd call s", "setup+call s", "process s",
              "call vs daskflow", "call vs pool", "setup+call vs pool", "call min..max s")
    lines = [header]
    for r in rows:
        if r["runs"] == 0 and r["failed"] == 0:
            continue
        runs = str(r["runs"]) + (" (+%d failed)" % r["failed"] if r["failed"] else "")
        span = "-" if r["call_min_s"] is None else "%.2f..%.2f" % (r["call_min_s"],
                                                                  r["call_max_s"])
        lines.append((r["peer"], runs, f(r["setup_s"]), f(r["call_s"]), f(r["call2_s"]),
                      f(r["setup_call_s"]), f(r["process_s"]), x(r["call_vs_daskflow"]),
                      x(r["call_vs_pool"]), x(r["setup_call_vs_pool"]), span))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    print()
    for i, line in enumerate(lines):
        print("  ".join(c.ljust(w) if j == 0 else c.rjust(w)
                        for j, (c, w) in enumerate(zip(line, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    for peer, reason in skipped.items():
        print("skipped %s: %s" % (peer, reason))
    print("medians; call = first map call + sum in a fresh process (data built untimed); "
          "setup = pool/cluster start; X vs Y = X's median / Y's median")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--n", type=int, default=10_000_000, help="items (default 10M)")
    ap.add_argument("--batches", type=int, default=10, help="batches (default 10)")
    ap.add_argument("--peers", nargs="+", choices=ALL_PEERS, default=list(ALL_PEERS))
    ap.add_argument("--reps", type=int, default=5, help="runs per peer (default 5)")
    ap.add_argument("--peer-reps", nargs="+", action="extend", metavar="PEER=K", default=[],
                    help="runs for one peer, e.g. daskbag-items=2")
    ap.add_argument("--workers", type=int, default=fp.default_workers(),
                    help="W: pool size / cluster workers / --max-workers (default: cores)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    ap.add_argument("--wait-load", type=float, default=None, metavar="LOAD",
                    help="before each run, wait until the 1-min load average is below LOAD")
    ap.add_argument("--wait-max", type=float, default=300.0,
                    help="longest wait for --wait-load, seconds (default 300)")
    ap.add_argument("--daskflow-src", default=str(fp.REPO_ROOT), metavar="DIR",
                    help="daskflow package to measure, first on PYTHONPATH")
    ap.add_argument("--no-install", action="store_true",
                    help="do not create bench/.venv-metaflow; skip Metaflow if missing")
    ap.add_argument("--json", metavar="PATH", help="write every run and the summary as JSON")
    args = ap.parse_args(argv)

    reps = {p: args.reps for p in ALL_PEERS}
    for item in args.peer_reps:
        name, _, k = item.partition("=")
        if name not in reps or not k.isdigit():
            raise SystemExit("--peer-reps wants PEER=K, got %r" % item)
        reps[name] = int(k)
    peers = [p for p in ALL_PEERS if p in args.peers]
    runner = Runner(args)
    skipped = runner.prepare(peers)
    for peer, reason in skipped.items():
        fp.log("[skip] %s: %s" % (peer, reason))
    active = [p for p in peers if p not in skipped and reps[p] > 0]

    results = []
    started = time.time()
    for rep in range(max([reps[p] for p in active] or [0])):
        this_rep = [p for p in active if rep < reps[p]]
        k = rep % len(this_rep) if this_rep else 0
        for peer in this_rep[k:] + this_rep[:k]:
            r = run_once(runner, peer)
            r["rep"] = rep
            results.append(r)
            status = "ok" if r["ok"] else ("TIMEOUT" if r["timed_out"] else "FAILED rc=%s" % r["rc"])
            fp.log("[run] rep %d/%d %-14s call %6s s  process %6.2f s  load %.2f  %s"
                   % (rep + 1, reps[peer], peer,
                      "-" if r.get("call_s") is None else "%.2f" % r["call_s"],
                      r["process_s"], r["loadavg_1m_before"], status))
            if not r["ok"]:
                fp.log("\n".join("      | " + line
                                 for line in r["output_tail"].splitlines()[-15:]))

    rows = summarize(results, active)
    print("parallel_map_peers: %s, %s, %d cores, Python %s, N=%d in %d batches, W=%d, %s"
          % (datetime.date.today().isoformat(), socket.gethostname(), os.cpu_count() or 0,
             platform.python_version(), args.n, args.batches, args.workers,
             ", ".join("%s %s" % kv for kv in runner.versions.items())))
    print_table(rows, skipped)
    loads = [r["loadavg_1m_before"] for r in results]
    if loads:
        print("1-min load average before runs: %.2f..%.2f (median %.2f) on %d cores"
              % (min(loads), max(loads), statistics.median(loads), os.cpu_count() or 1))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "benchmark": "parallel_map_peers",
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": {"hostname": socket.gethostname(), "platform": platform.platform(),
                        "cpu_count": os.cpu_count(), "python": platform.python_version()},
            "n": args.n, "batches": args.batches, "workers": args.workers,
            "versions": runner.versions, "skipped": skipped, "wall_s": time.time() - started,
            "summary": rows, "runs": results}, indent=2) + "\n")
        fp.log("[json] wrote %s" % args.json)
    return 1 if any(not r["ok"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
