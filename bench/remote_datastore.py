#!/usr/bin/env python
"""Where the artifacts go: a foreach of N trivial splits, datastore on a local folder vs on S3.

The flow is ``flows/foreach_daskflow.py`` (start -> N splits of ``out = input * 2``
-> join -> end), run whole-process as a user runs it, in a fresh temporary folder:

  local  ``foreach_daskflow.py run --n N --max-num-splits N --max-workers W``
         (the default datastore, ``.daskflow`` in that folder)
  s3     the same with ``--datastore-root s3://daskflow-bench/<new prefix>``, on
         moto's S3 server (``python -m moto.server -H 127.0.0.1 -p <free port>``,
         started here; dummy AWS keys and ``AWS_ENDPOINT_URL`` in the run's env)

Both runs use the local backend, so no code package is built: the difference is
the datastore alone. Runs alternate (the first store rotates per repetition);
medians of ``--reps``.

S3 requests are counted from moto's access log (one line per HTTP request, from
the driver and the worker processes alike): the lines the log gained between a
run's start and its end, by operation (HEAD = exists/info, GET ?list = listing,
GET = object read, PUT = write or copy, DELETE, POST = batch delete). Per split
is that total / N; "marginal" (with two or more N) is the slope between the
smallest and largest N, the cost of one more split without the run's fixed part.

Usage:
  python bench/remote_datastore.py                     # N=1000, 3 reps
  python bench/remote_datastore.py --n 200 --reps 1     # a quick look
  python bench/remote_datastore.py --n 200 1000 --reps 3 --json out.json

Needs moto[server] and s3fs (``pip install -e '.[test]'``). Not a pytest test.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

from foreach_peers import FLOWS_DIR, REPO_ROOT, default_workers, log, wait_for_quiet

BUCKET = "daskflow-bench"
FLOW = "foreach_daskflow.py"
STORES = ("local", "s3")
OPERATIONS = ("HEAD", "LIST", "GET", "PUT", "DELETE", "POST")
# werkzeug colours the line of an answer that is not 200 (a HEAD's 404, a refused create's
# 412) with ANSI escapes, which a fresh virtual environment's moto wrote into its log file
COLOUR = r"(?:\x1b\[[0-9;]*m)*"
REQUEST = re.compile(rf'"{COLOUR}([A-Z]+) (\S+) HTTP/[\d.]+{COLOUR}" (\d{{3}})')
ID = re.compile(r"[0-9a-f]{8,}|\d+")


def aws_env(endpoint: str) -> dict[str, str]:
    """Dummy credentials and moto's address: nothing here may reach real AWS."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true"}


class MotoServer:
    """moto's S3 server on 127.0.0.1, its access log in a file, the bucket made."""

    def __init__(self, folder: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = folder / "moto_server.log"
        self._log = open(self.log_path, "wb")
        # a log on a pipe nobody reads would fill up and block the server
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise SystemExit("moto_server did not start: "
                                     + self.log_path.read_text()[-2000:])
                time.sleep(0.05)
        import s3fs

        os.environ.update(aws_env(self.url))  # this process reads the bucket too
        self.fs = s3fs.S3FileSystem(skip_instance_cache=True)
        self.fs.mkdir(BUCKET)

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def _since(self, offset: int) -> str:
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def requests_since(self, offset: int) -> Counter:
        """The S3 requests logged after byte ``offset``, by operation."""
        counts: Counter = Counter()
        for match in REQUEST.finditer(self._since(offset)):
            counts[operation(match.group(1), match.group(2))] += 1
        return counts

    def paths_since(self, offset: int) -> Counter:
        """The same requests by operation and path shape (ids and numbers as ``*``)."""
        counts: Counter = Counter()
        for match in REQUEST.finditer(self._since(offset)):
            method, path = match.group(1), match.group(2)
            shape = ID.sub("*", path.split("?")[0])
            if operation(method, path) == "LIST":
                prefix = re.search(r"prefix=([^&]*)", path)
                shape += "?list " + ID.sub("*", unquote(prefix.group(1)) if prefix else "")
            counts[f"{operation(method, path)} {shape}"] += 1
        return counts

    def objects(self, prefix: str) -> int:
        return len(self.fs.find(f"{BUCKET}/{prefix}"))

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def operation(method: str, path: str) -> str:
    """An S3 request's kind, from its method and path (a listing is a GET of the bucket)."""
    if method == "GET" and any(q in path for q in ("list-type=", "prefix=", "delimiter=")):
        return "LIST"
    return method


def run_once(store: str, n: int, workers: int, moto: MotoServer, timeout: float,
             wait_load: float | None, wait_max: float) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-datastore-{store}-n{n}-"))
    shutil.copy2(FLOWS_DIR / FLOW, tmp / FLOW)
    env = dict(os.environ, PYTHONUNBUFFERED="1")  # with aws_env(moto.url)
    env.setdefault("USERNAME", env.get("USER") or "bench")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    prefix = uuid.uuid4().hex[:12]
    where = ["--datastore-root", f"s3://{BUCKET}/{prefix}"] if store == "s3" else []
    cmd = [sys.executable, FLOW, *where, "run", "--n", str(n), "--max-num-splits", str(n),
           "--max-workers", str(workers)]
    load = wait_for_quiet(wait_load, wait_max)
    offset = moto.log_size()
    with open(tmp / "output.log", "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = None
        seconds = time.perf_counter() - t0
    try:  # no worker may outlive its run into the next one
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    time.sleep(0.2)  # the server's last log lines
    requests = moto.requests_since(offset)
    text = (tmp / "output.log").read_text(errors="replace")
    result = {"store": store, "n": n, "seconds": seconds, "rc": rc, "ok": rc == 0,
              "verified": f"total={n * (n - 1)}" in text, "load_before": load,
              "requests": dict(requests), "requests_total": sum(requests.values()),
              "by_path": dict(moto.paths_since(offset).most_common(25)),
              "objects": moto.objects(prefix) if store == "s3" else None}
    if not result["ok"]:
        result["output_tail"] = text[-2000:]
    shutil.rmtree(tmp, ignore_errors=True)
    return result


def summarize(results: list[dict], ns: list[int], stores: list[str]) -> list[dict]:
    rows = []
    for n in ns:
        group = {}
        for store in stores:
            good = [r for r in results if r["store"] == store and r["n"] == n and r["ok"]]
            failed = sum(1 for r in results if r["store"] == store and r["n"] == n
                         and not r["ok"])
            seconds = [r["seconds"] for r in good]
            requests = statistics.median([r["requests_total"] for r in good]) if good else None
            row = {"store": store, "n": n, "runs": len(good), "failed": failed,
                   "median_s": statistics.median(seconds) if seconds else None,
                   "min_s": min(seconds, default=None), "max_s": max(seconds, default=None),
                   "requests": requests,
                   "by_operation": {op: statistics.median(r["requests"].get(op, 0)
                                                          for r in good)
                                    for op in OPERATIONS} if good else {},
                   "objects": statistics.median(r["objects"] for r in good)
                   if good and store == "s3" else None}
            group[store] = row
            rows.append(row)
        base = group["local"]["median_s"] if "local" in group else None
        for row in group.values():
            m = row["median_s"]
            row["vs_local"] = m / base if m is not None and base else None
            row["per_split_ms"] = m / n * 1000 if m is not None else None
    return rows


def print_table(rows: list[dict]) -> None:
    def fmt(value, spec):
        return "-" if value is None else format(value, spec)

    header = ("store", "N", "median s", "runs", "vs local", "per-split ms", "min..max s",
              "S3 requests", "per split", "PUT per split", *OPERATIONS, "objects")
    lines = [header]
    for r in rows:
        runs = str(r["runs"]) + (f" (+{r['failed']} failed)" if r["failed"] else "")
        span = "-" if r["min_s"] is None else f"{r['min_s']:.2f}..{r['max_s']:.2f}"
        per_split = None if r["requests"] is None else r["requests"] / r["n"]
        puts = r["by_operation"].get("PUT")
        put_per_split = None if puts is None or r["store"] != "s3" else puts / r["n"]
        ops = [fmt(r["by_operation"].get(op), ".0f") for op in OPERATIONS]
        lines.append((r["store"], str(r["n"]), fmt(r["median_s"], ".2f"), runs,
                      fmt(r["vs_local"], ".2f") + ("x" if r["vs_local"] else ""),
                      fmt(r["per_split_ms"], ".1f"), span, fmt(r["requests"], ".0f"),
                      fmt(per_split, ".2f"), fmt(put_per_split, ".3f"), *ops,
                      fmt(r["objects"], ".0f")))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    print()
    for i, line in enumerate(lines):
        print("  ".join(c.ljust(w) if j == 0 else c.rjust(w)
                        for j, (c, w) in enumerate(zip(line, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    s3 = sorted((r for r in rows if r["store"] == "s3" and r["requests"] is not None),
                key=lambda r: r["n"])
    if len(s3) >= 2 and s3[-1]["n"] > s3[0]["n"]:
        slope = (s3[-1]["requests"] - s3[0]["requests"]) / (s3[-1]["n"] - s3[0]["n"])
        print(f"\nmarginal S3 requests per split (N={s3[0]['n']} -> N={s3[-1]['n']}): "
              f"{slope:.2f}")
    for r in s3:
        puts = r["by_operation"].get("PUT", 0) / r["n"]
        print(f"target (issue 18): at most 1 PUT per 10 trivial splits; N={r['n']}: "
              f"{puts:.3f} PUT per split, {'met' if puts <= 0.1 else 'NOT met'}")
    print("vs local = median / the local folder's median at the same N; requests, by "
          "operation and objects are medians over runs; requests come from moto's access "
          "log (driver and workers together); the local runs make none, a check that "
          "each count is its own run's")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--n", type=int, nargs="+", default=[1000],
                    help="foreach sizes (default: 1000)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions per store (default 3)")
    ap.add_argument("--workers", type=int, default=default_workers(),
                    help="W: --max-workers (default: cores, %(default)s)")
    ap.add_argument("--stores", nargs="+", choices=STORES, default=list(STORES),
                    help="which datastores to run (default: both)")
    ap.add_argument("--timeout", type=float, default=1800,
                    help="per run, seconds (default 1800; a timed-out run counts as failed)")
    ap.add_argument("--wait-load", type=float, default=None,
                    help="before each run, wait for the 1-minute load to drop below this")
    ap.add_argument("--wait-max", type=float, default=300.0,
                    help="longest wait for --wait-load, seconds")
    ap.add_argument("--json", default=None, help="write every run's result to this file")
    ap.add_argument("--by-path", action="store_true",
                    help="print each S3 run's requests by operation and path shape")
    args = ap.parse_args(argv)

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-moto-") as folder:
        moto = MotoServer(Path(folder))
        try:
            for n in args.n:
                for rep in range(args.reps):
                    order = args.stores if rep % 2 == 0 else args.stores[::-1]
                    for store in order:
                        r = run_once(store, n, args.workers, moto, args.timeout,
                                     args.wait_load, args.wait_max)
                        log(f"{store:<5} N={n:<6} rep {rep + 1}: {r['seconds']:.2f} s, "
                            f"rc={r['rc']}, {r['requests_total']} S3 requests, "
                            f"load {r['load_before']:.2f}")
                        results.append(r)
        finally:
            moto.close()

    import dask
    print(f"remote_datastore: {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}, dask {dask.__version__}, W={args.workers}, "
          f"reps {args.reps}")
    print_table(summarize(results, args.n, args.stores))
    if args.by_path:
        for r in results:
            if r["store"] == "s3":
                print(f"\nS3 requests by path shape, N={r['n']} (top 25):")
                for shape, count in r["by_path"].items():
                    print(f"  {count:>8}  {count / r['n']:8.4f}/split  {shape}")
    loads = [r["load_before"] for r in results]
    print(f"1-min load average before runs: {min(loads):.2f}..{max(loads):.2f} on "
          f"{os.cpu_count()} cores (a shared machine: noisy)")
    unverified = [r for r in results if r["ok"] and not r["verified"]]
    if unverified:
        print(f"{len(unverified)} run(s) exited 0 without printing total=N*(N-1)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    failed = [r for r in results if not r["ok"]]
    for r in failed[:3]:
        print(f"FAILED {r['store']} N={r['n']}:\n{r.get('output_tail', '')}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
