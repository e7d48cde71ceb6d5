#!/usr/bin/env python
"""Flow shapes, whole process: daskflow vs Metaflow's local runtime vs raw Dask.

Shapes (--shape, default foreach; several may be given):
  foreach  start -> foreach of N trivial tasks -> join -> end   (benchmark 1)
  sleepy   the same, each split sleeping 50 ms; compared with the ideal
           N x 50 ms / W + cluster start (raw Dask's LocalCluster start, measured)
  linear   start -> double -> add -> end, a list of N ints passed along   (benchmark 3)
  chain    start -> foreach of N splits -> double -> work -> join -> end: each
           split goes on to a second trivial step before the join (issue 31)
  branch   start -> three branches a, b, c -> join -> end   (benchmark 3)

For every run it also records the driver's peak RSS (the kernel's VmHWM of the
process started, polled every 0.2 s) and the peak of its whole process tree
(wait4's ru_maxrss); for daskflow's foreach and sleepy runs, the time the client
takes to read every split's artifact back (`Flow(name).latest_run["work"]`, each
task's `.data.out`, in a fresh process; --no-read-back skips it). Issue 18's
targets are checked at the end for the shapes and N that ran.

Every run is a whole process (subprocess.Popen), timed from launch to exit,
in its own fresh temporary working directory holding a copy of the flow file.
Peers are interleaved: each repetition runs every peer once (starting peer
rotates per repetition), so drift on the machine hits all peers alike.

Peers (SHAPE is the shape's name; --max-num-splits only for foreach):
  daskflow  flows/SHAPE_daskflow.py run --n N --max-num-splits N --max-workers W
            (interpreter running this script, in-tree daskflow (or --daskflow-src)
            put first on PYTHONPATH;
            skipped, with the reason, if `from daskflow import FlowSpec, step,
            Parameter` fails)
  metaflow  flows/SHAPE_metaflow.py, same CLI, in bench/.venv-metaflow
            (created with `python -m venv` + `pip install metaflow` if missing;
            a foreach is skipped for N > --metaflow-max-n unless --force-metaflow)
  rawdask   flows/SHAPE_rawdask.py --n N --workers W (LocalCluster, processes)

Examples:
  python bench/foreach_peers.py --n 100 --reps 3
  python bench/foreach_peers.py --n 100 1000 --peer-reps metaflow=1 --json out.json
  python bench/foreach_peers.py --peers daskflow rawdask --n 1000 10000
  python bench/foreach_peers.py --shape linear branch --n 10 --reps 7
  python bench/foreach_peers.py --peers daskflow rawdask --n 10000 100000 --reps 1
  python bench/foreach_peers.py --shape sleepy --peers daskflow rawdask --n 1000
  python bench/foreach_peers.py --shape chain --peers daskflow rawdask --n 10000 --reps 1

Stdlib only (the rawdask peer needs dask/distributed in this interpreter).
Not a pytest test: nothing here is collected (no test_* names).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
FLOWS_DIR = BENCH_DIR / "flows"
METAFLOW_VENV = BENCH_DIR / ".venv-metaflow"

ALL_PEERS = ("daskflow", "metaflow", "rawdask")
ALL_SHAPES = ("foreach", "sleepy", "linear", "branch", "chain")
FOREACH_SHAPES = ("foreach", "sleepy", "chain")  # take --max-num-splits; read back per split
SLEEP_S = 0.05                           # a sleepy split's sleep (the flows' default)
BASELINE = "daskflow"
READ_BACK = """
import sys, time
from daskflow import Flow, namespace
namespace(None)
t = time.perf_counter()
run = Flow(sys.argv[1]).latest_run
values = [task.data.out for task in run["work"]]
print("read_back_s=%.3f count=%d" % (time.perf_counter() - t, len(values)))
"""
FLOW_CLASSES = {"foreach": "ForeachFlow", "sleepy": "SleepyFlow", "chain": "ChainFlow"}


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 2


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def wait_for_quiet(threshold: float | None, longest: float) -> float:
    """Wait (at most `longest` s) until the 1-minute load average is below `threshold`."""
    load = os.getloadavg()[0]
    if threshold is None:
        return load
    deadline = time.time() + longest
    while load >= threshold and time.time() < deadline:
        time.sleep(5)
        load = os.getloadavg()[0]
    return load


# --------------------------------------------------------------------------
# Peers
# --------------------------------------------------------------------------


class Peer:
    name = ""

    def __init__(self, args):
        self.args = args
        self.python = sys.executable
        self.version = None

    def prepare(self) -> str | None:
        """Return None if runnable, else a reason to skip."""
        raise NotImplementedError

    def flow_file(self, shape: str) -> str:
        return "%s_%s.py" % (shape, self.name)

    def skip_for_n(self, n: int, shape: str = "foreach") -> str | None:
        return None

    def command(self, n: int, workers: int, shape: str = "foreach") -> list[str]:
        raise NotImplementedError

    def flow_command(self, n: int, workers: int, shape: str) -> list[str]:
        """`run` of a flow file, as daskflow and Metaflow both take it."""
        cmd = [self.python, self.flow_file(shape), "run", "--n", str(n)]
        if shape in FOREACH_SHAPES:
            cmd += ["--max-num-splits", str(n)]
        return cmd + ["--max-workers", str(workers)]

    def env(self) -> dict:
        env = dict(os.environ)
        env.setdefault("USERNAME", env.get("USER") or "bench")
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def probe(self, code: str) -> tuple[bool, str]:
        """Run `code` with this peer's interpreter and environment, in a temp dir."""
        with tempfile.TemporaryDirectory(prefix="bench-probe-") as tmp:
            proc = subprocess.run(
                [self.python, "-c", code],
                cwd=tmp,
                env=self.env(),
                capture_output=True,
                text=True,
                timeout=300,
            )
        out = (proc.stdout + proc.stderr).strip()
        return proc.returncode == 0, out


class DaskflowPeer(Peer):
    name = "daskflow"

    def env(self):
        env = super().env()
        # The flow runs in a temp dir: make the in-tree package importable.
        src = str(Path(self.args.daskflow_src).resolve())
        parts = [src] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join(parts)
        return env

    def prepare(self):
        ok, out = self.probe(
            "import daskflow\n"
            "from daskflow import FlowSpec, step, Parameter\n"
            "print(getattr(daskflow, '__version__', 'unknown'))"
        )
        if not ok:
            last = out.splitlines()[-1] if out else "no output"
            return "daskflow not importable yet (%s)" % last
        self.version = out.splitlines()[-1] if out else "unknown"
        if Path(self.args.daskflow_src).resolve() != REPO_ROOT:
            self.version += " from %s" % self.args.daskflow_src
        return None

    def command(self, n, workers, shape="foreach"):
        return self.flow_command(n, workers, shape)


class MetaflowPeer(Peer):
    name = "metaflow"

    def __init__(self, args):
        super().__init__(args)
        self.python = str(METAFLOW_VENV / "bin" / "python")

    def env(self):
        env = super().env()
        env.pop("PYTHONPATH", None)  # keep the venv's Metaflow, nothing else
        env.pop("VIRTUAL_ENV", None)
        return env

    def install(self) -> str | None:
        if self.args.no_install:
            return "%s missing and --no-install given" % METAFLOW_VENV
        log("[setup] creating %s and installing metaflow ..." % METAFLOW_VENV)
        t0 = time.perf_counter()
        try:
            if not Path(self.python).exists():
                subprocess.run([sys.executable, "-m", "venv", str(METAFLOW_VENV)], check=True)
            subprocess.run([self.python, "-m", "pip", "install", "-q",
                            "--disable-pip-version-check", "metaflow"], check=True)
        except (subprocess.CalledProcessError, OSError) as exc:
            return "could not install metaflow into %s: %s" % (METAFLOW_VENV, exc)
        log("[setup] metaflow installed in %.1f s" % (time.perf_counter() - t0))
        return None

    def prepare(self):
        code = "import metaflow; print(metaflow.__version__)"
        ok, out = (False, "") if not Path(self.python).exists() else self.probe(code)
        if not ok:
            reason = self.install()
            if reason:
                return reason
            ok, out = self.probe(code)
            if not ok:
                return "metaflow still not importable after install: %s" % out[-300:]
        self.version = out.splitlines()[-1]
        return None

    def skip_for_n(self, n, shape="foreach"):
        if (shape in FOREACH_SHAPES and n > self.args.metaflow_max_n
                and not self.args.force_metaflow):
            return ("N=%d > --metaflow-max-n %d (about 0.13 s per task; "
                    "--force-metaflow to run it)" % (n, self.args.metaflow_max_n))
        return None

    def command(self, n, workers, shape="foreach"):
        return self.flow_command(n, workers, shape)


class RawDaskPeer(Peer):
    name = "rawdask"

    def prepare(self):
        ok, out = self.probe("import dask, distributed; print(distributed.__version__)")
        if not ok:
            last = out.splitlines()[-1] if out else "no output"
            return "dask/distributed not importable in %s (%s)" % (self.python, last)
        self.version = out.splitlines()[-1]
        return None

    def command(self, n, workers, shape="foreach"):
        return [self.python, self.flow_file(shape), "--n", str(n), "--workers", str(workers)]


PEER_CLASSES = {p.name: p for p in (DaskflowPeer, MetaflowPeer, RawDaskPeer)}


# --------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------


def run_once(peer: Peer, n: int, workers: int, timeout: float, keep: bool,
             shape: str = "foreach") -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-%s-%s-n%d-" % (peer.name, shape, n)))
    shutil.copy2(FLOWS_DIR / peer.flow_file(shape), tmp / peer.flow_file(shape))
    cmd = peer.command(n, workers, shape)
    env = peer.env()
    log_path = tmp / "output.log"
    load_before = wait_for_quiet(getattr(peer.args, "wait_load", None),
                                 getattr(peer.args, "wait_max", 300.0))
    with open(log_path, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        rc, timed_out, driver_kib, tree_kib = watch(proc, timeout)
        elapsed = time.perf_counter() - t0
    # Leftover children (dask workers, Metaflow tasks) must not bleed into the next run.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    text = log_path.read_text(errors="replace")
    # sum(2i) over range(N); a chain's splits add one each: sum(2i + 1) = N*N
    expected = "total=%d" % (n * n if shape == "chain" else n * (n - 1))
    read_back = None
    if (peer.name == "daskflow" and shape in FOREACH_SHAPES and rc == 0
            and not peer.args.no_read_back):
        read_back = read_back_seconds(peer, tmp, FLOW_CLASSES[shape], n, timeout)
    started = re.search(r"cluster_start=([\d.]+)", text)
    result = {
        "peer": peer.name,
        "shape": shape,
        "n": n,
        "workers": workers,
        "seconds": elapsed,
        "rc": rc,
        "timed_out": timed_out,
        "ok": rc == 0 and not timed_out,
        "verified": expected in text,
        "loadavg_1m_before": load_before,
        "driver_peak_mib": driver_kib / 1024 if driver_kib else None,
        "tree_peak_mib": tree_kib / 1024 if tree_kib else None,
        "read_back_s": read_back,
        "cluster_start_s": float(started.group(1)) if started else None,
        "cmd": cmd,
    }
    if not result["ok"]:
        result["output_tail"] = text[-2000:]
    if keep:
        result["workdir"] = str(tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def vm_hwm_kib(pid: int) -> int | None:
    """The kernel's peak RSS of ``pid`` so far (VmHWM), in KiB; None once it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def watch(proc: subprocess.Popen, timeout: float) -> tuple[int, bool, int, int]:
    """Wait for ``proc`` (killing its group after ``timeout`` s), polling its peak RSS.

    Returns (exit code, timed out, the process's own peak RSS in KiB as last polled,
    the peak RSS of it and its reaped descendants from wait4, in KiB)."""
    deadline = time.perf_counter() + timeout
    driver = 0
    timed_out = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, timed_out, driver, usage.ru_maxrss
        driver = max(driver, vm_hwm_kib(proc.pid) or 0)
        if not timed_out and time.perf_counter() > deadline:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(0.2)


def read_back_seconds(peer: Peer, workdir: Path, flow: str, n: int,
                      timeout: float) -> float | None:
    """Seconds a fresh process takes to read every split's ``out`` back with the client
    (interpreter start and imports not counted); None if it failed."""
    proc = subprocess.run([peer.python, "-c", READ_BACK, flow], cwd=workdir, env=peer.env(),
                          capture_output=True, text=True, timeout=timeout)
    found = re.search(r"read_back_s=([\d.]+) count=(\d+)", proc.stdout)
    if proc.returncode != 0 or not found or int(found.group(2)) != n:
        log("      read-back failed: %s" % (proc.stdout + proc.stderr)[-500:])
        return None
    return float(found.group(1))


def parse_peer_reps(items, default):
    reps = {p: default for p in ALL_PEERS}
    for item in items or []:
        for part in item.split(","):
            name, sep, k = part.partition("=")
            if not sep or name not in reps:
                raise SystemExit("--peer-reps wants PEER=K with PEER in %s, got %r"
                                 % (", ".join(ALL_PEERS), part))
            reps[name] = int(k)
    return reps


def summarize(results, peers, ns, shapes=("foreach",)):
    rows = []
    for shape, n in [(shape, n) for shape in shapes for n in ns]:
        medians = {}
        group = []
        for name in peers:
            runs = [r for r in results if r["peer"] == name and r["n"] == n
                    and r.get("shape", "foreach") == shape]
            good = [r["seconds"] for r in runs if r["ok"]]
            row = {
                "peer": name, "shape": shape, "n": n, "runs": len(good),
                "failed": len(runs) - len(good),
                "median_s": statistics.median(good) if good else None,
                "min_s": min(good) if good else None,
                "max_s": max(good) if good else None,
                "unverified": sum(1 for r in runs if r["ok"] and not r["verified"]),
            }
            for key in ("driver_peak_mib", "tree_peak_mib", "read_back_s", "cluster_start_s"):
                values = [r[key] for r in runs if r["ok"] and r.get(key) is not None]
                row[key] = statistics.median(values) if values else None
            medians[name] = row["median_s"]
            group.append(row)
        rows.extend(group)
        base = medians.get(BASELINE)
        floor = medians.get("rawdask")
        for row in group:
            m = row["median_s"]
            row["ratio_vs_daskflow"] = (m / base) if (m is not None and base) else None
            row["ratio_vs_rawdask"] = (m / floor) if (m is not None and floor) else None
            row["per_task_ms"] = (m / n * 1000.0) if (m is not None and n) else None
            row["ideal_s"] = row["ratio_vs_ideal"] = None
            if shape == "sleepy" and group:
                start = next((r["cluster_start_s"] for r in group
                              if r["peer"] == "rawdask" and r["cluster_start_s"]), None)
                workers = results[0]["workers"] if results else 1
                if start is not None:
                    row["ideal_s"] = n * SLEEP_S / workers + start
                    row["ratio_vs_ideal"] = m / row["ideal_s"] if m is not None else None
    return rows


def print_table(rows, skipped):
    def fmt(v, spec):
        return "-" if v is None else format(v, spec)

    header = ("shape", "peer", "N", "median s", "runs", "vs daskflow", "per-task ms",
              "min..max s", "vs rawdask", "driver MiB", "tree MiB", "read-back s",
              "vs ideal")
    lines = [header]
    for r in rows:
        if r["runs"] == 0 and r["failed"] == 0:
            continue
        runs = str(r["runs"]) + (" (+%d failed)" % r["failed"] if r["failed"] else "")
        if r["unverified"]:
            runs += " *"
        ratio = "-" if r["ratio_vs_daskflow"] is None else "%.2fx" % r["ratio_vs_daskflow"]
        floor = "-" if r["ratio_vs_rawdask"] is None else "%.2fx" % r["ratio_vs_rawdask"]
        span = ("-" if r["min_s"] is None
                else "%.2f..%.2f" % (r["min_s"], r["max_s"]))
        ideal = "-" if r.get("ratio_vs_ideal") is None else "%.2fx" % r["ratio_vs_ideal"]
        lines.append((r.get("shape", "foreach"), r["peer"], str(r["n"]),
                      fmt(r["median_s"], ".2f"), runs, ratio,
                      fmt(r["per_task_ms"], ".2f"), span, floor,
                      fmt(r.get("driver_peak_mib"), ".0f"), fmt(r.get("tree_peak_mib"), ".0f"),
                      fmt(r.get("read_back_s"), ".2f"), ideal))
    widths = [max(len(l[i]) for l in lines) for i in range(len(header))]
    print()
    for i, l in enumerate(lines):
        print("  ".join(c.ljust(w) if j < 2 else c.rjust(w)
                        for j, (c, w) in enumerate(zip(l, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    if any(r["unverified"] for r in rows):
        print("* some runs exited 0 but printed no matching 'total=N*(N-1)' line "
              "(chain: N*N)")
    for (peer, where), reason in skipped.items():
        print("skipped %s%s: %s" % (peer, "" if where is None else " " + where, reason))
    print("vs X = peer median / X's median at the same shape and N; per-task ms = median / N "
          "(whole process, startup included; for linear/branch N is only the list size)")
    print("driver MiB = peak RSS of the process started (VmHWM, polled every 0.2 s; for "
          "daskflow and raw Dask it holds the scheduler too); tree MiB = the largest peak of "
          "it and its reaped descendants (wait4); read-back s = the client reading every "
          "split's artifact in a fresh process; vs ideal (sleepy) = median / "
          "(N x %g s / W + raw Dask's cluster start)" % SLEEP_S)
    print_targets(rows)


def print_targets(rows):
    """Issue 18's targets, for the shapes and N that ran."""
    def verdict(ok):
        return "met" if ok else "NOT met"

    lines = []
    for r in rows:
        if r["peer"] != "daskflow" or r["median_s"] is None:
            continue
        shape, n = r.get("shape", "foreach"), r["n"]
        if shape == "foreach" and r["ratio_vs_rawdask"] is not None and n >= 10000:
            lines.append("foreach N=%d: daskflow / raw Dask %.2fx (target <= 0.5x): %s"
                         % (n, r["ratio_vs_rawdask"], verdict(r["ratio_vs_rawdask"] <= 0.5)))
        if shape == "foreach" and n >= 100000:
            lines.append("foreach N=%d: %.1f s (target < 60 s): %s"
                         % (n, r["median_s"], verdict(r["median_s"] < 60)))
            if r["driver_peak_mib"] is not None:
                lines.append("foreach N=%d: driver peak RSS %.0f MiB (target < 600): %s"
                             % (n, r["driver_peak_mib"], verdict(r["driver_peak_mib"] < 600)))
            if r["read_back_s"] is not None:
                lines.append("foreach N=%d: client reads every split back in %.1f s "
                             "(target < 15 s): %s"
                             % (n, r["read_back_s"], verdict(r["read_back_s"] < 15)))
        if shape == "sleepy" and r["ratio_vs_ideal"] is not None:
            lines.append("sleepy N=%d: %.2f s vs ideal %.2f s = %.2fx (target <= 1.1x): %s"
                         % (n, r["median_s"], r["ideal_s"], r["ratio_vs_ideal"],
                            verdict(r["ratio_vs_ideal"] <= 1.1)))
    if lines:
        print("issue 18 targets:")
        for line in lines:
            print("  " + line)


def print_header_and_table(args, ready, rows, skipped, results):
    print("foreach_peers (%s): %s, %s, %d cores, Python %s, W=%d, %s"
          % (", ".join(args.shape), datetime.date.today().isoformat(), socket.gethostname(), os.cpu_count() or 0,
             platform.python_version(), args.workers,
             ", ".join("%s %s" % (n, p.version) for n, p in ready.items()) or "no peer ready"))
    print_table(rows, skipped)
    loads = [r["loadavg_1m_before"] for r in results]
    if loads:
        cores = os.cpu_count() or 1
        print("1-min load average before runs: %.2f..%.2f on %d cores%s"
              % (min(loads), max(loads), cores,
                 "  (WARNING: machine busy, numbers inflated)" if max(loads) > cores else ""))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--shape", nargs="+", choices=ALL_SHAPES, default=["foreach"],
                    help="flow shapes to run (default: foreach)")
    ap.add_argument("--n", type=int, nargs="+", default=[100, 1000],
                    help="foreach sizes; list size for linear/branch (default: 100 1000)")
    ap.add_argument("--peers", nargs="+", choices=ALL_PEERS, default=list(ALL_PEERS),
                    help="peers to run (default: all)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions per peer (default 3)")
    ap.add_argument("--peer-reps", action="append", metavar="PEER=K",
                    help="override repetitions for one peer, e.g. metaflow=1 (repeatable)")
    ap.add_argument("--workers", type=int, default=default_workers(),
                    help="W: --max-workers / LocalCluster n_workers (default: cores, %(default)s)")
    ap.add_argument("--metaflow-max-n", type=int, default=1000,
                    help="skip Metaflow above this N (default 1000)")
    ap.add_argument("--force-metaflow", action="store_true",
                    help="run Metaflow at every N regardless of --metaflow-max-n")
    ap.add_argument("--timeout", type=float, default=1800.0,
                    help="seconds before one run is killed and counted as failed")
    ap.add_argument("--wait-load", type=float, default=None, metavar="LOAD",
                    help="before each run, wait until the 1-min load average is below LOAD "
                         "(the machine is shared)")
    ap.add_argument("--wait-max", type=float, default=300.0,
                    help="longest wait for --wait-load, seconds (default 300)")
    ap.add_argument("--daskflow-src", default=str(REPO_ROOT), metavar="DIR",
                    help="directory holding the daskflow package to measure, put first on "
                         "PYTHONPATH (default: this checkout, %(default)s)")
    ap.add_argument("--no-install", action="store_true",
                    help="do not create bench/.venv-metaflow; skip Metaflow if it is missing")
    ap.add_argument("--keep", action="store_true", help="keep each run's temp working dir")
    ap.add_argument("--no-read-back", action="store_true",
                    help="skip timing the client's read of every split after daskflow's "
                         "foreach and sleepy runs")
    ap.add_argument("--json", metavar="PATH",
                    help="also write every run and the summary as JSON ('-' for stdout)")
    args = ap.parse_args(argv)

    reps = parse_peer_reps(args.peer_reps, args.reps)
    peers = [p for p in ALL_PEERS if p in args.peers]  # canonical order
    skipped: dict = {}
    ready = {}
    for name in peers:
        peer = PEER_CLASSES[name](args)
        reason = peer.prepare()
        if reason:
            skipped[(name, None)] = reason
            log("[skip] %s: %s" % (name, reason))
        else:
            ready[name] = peer
            log("[peer] %s %s (%s)" % (name, peer.version, peer.python))

    results = []
    started = time.time()
    for shape, n in [(shape, n) for shape in args.shape for n in args.n]:
        active = []
        for name, peer in ready.items():
            reason = peer.skip_for_n(n, shape)
            if not (FLOWS_DIR / peer.flow_file(shape)).exists():
                reason = "no %s flow for this peer" % peer.flow_file(shape)
            if reason:
                skipped[(name, "%s N=%d" % (shape, n))] = reason
                log("[skip] %s %s N=%d: %s" % (name, shape, n, reason))
            elif reps[name] > 0:
                active.append(name)
        for rep in range(max([reps[p] for p in active] or [0])):
            this_rep = [p for p in active if rep < reps[p]]
            k = rep % len(this_rep) if this_rep else 0
            for name in this_rep[k:] + this_rep[:k]:  # rotate who goes first
                r = run_once(ready[name], n, args.workers, args.timeout, args.keep, shape)
                r["rep"] = rep
                results.append(r)
                status = "ok" if r["ok"] else ("TIMEOUT" if r["timed_out"] else "rc=%d" % r["rc"])
                if r["ok"] and not r["verified"]:
                    status += " (total not found in output)"
                log("[run] %-7s N=%-6d rep %d/%d %-8s %8.2f s  load %.2f  %s"
                    % (shape, n, rep + 1, reps[name], name, r["seconds"],
                       r["loadavg_1m_before"], status))
                if not r["ok"]:
                    log("      output tail:\n" + "\n".join(
                        "      | " + l for l in r["output_tail"].splitlines()[-15:]))

    rows = summarize(results, list(ready), args.n, args.shape)
    # With --json -, stdout carries only the JSON document; the table goes to stderr.
    with contextlib.redirect_stdout(sys.stderr if args.json == "-" else sys.stdout):
        print_header_and_table(args, ready, rows, skipped, results)

    if args.json:
        doc = {
            "benchmark": "foreach_peers",
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": {
                "hostname": socket.gethostname(),
                "platform": platform.platform(),
                "cpu_count": os.cpu_count(),
                "python": platform.python_version(),
            },
            "workers": args.workers,
            "shapes": args.shape,
            "ns": args.n,
            "reps": {p: reps[p] for p in peers},
            "versions": {n: p.version for n, p in ready.items()},
            "skipped": [{"peer": p, "where": w, "reason": r} for (p, w), r in skipped.items()],
            "wall_s": time.time() - started,
            "summary": rows,
            "runs": results,
        }
        text = json.dumps(doc, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
            log("[json] wrote %s" % args.json)

    failed = any(not r["ok"] for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
