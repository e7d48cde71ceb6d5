#!/usr/bin/env python
"""A foreach on a flaky object store at full size: 2,000 splits through the fault proxy.

``tests/flows/flaky_store_flow.py`` (each split stores a DataFrame and a pickled dict,
then a join) runs whole-process with its datastore on moto's S3 server, reached through
``tests/faults/proxy.py`` with issue 32's fault mix: 20% of requests answered ``503
SlowDown``, 5% reset (half of them after the server did the request), 2% of answers cut
in the middle of their body, 5% up to 2 s late. Then, through the proxy too: the client
reads every split's artifacts back and compares them with what the flow wrote, ``logs`` of
one split, ``report``, and ``resume join`` (the foreach cloned). Then, straight on moto:
every blob hashes to its name, every finished task's blobs are there whole.

The retry policy is the default one (``daskflow.datastore.retry``, ``.s3``) unless
``--quick`` gives the tests' (daskflow's own layer retrying with short waits). Each phase
prints its seconds, the requests the proxy saw and the faults it made.

Usage:
  python bench/flaky_store.py                         # 2,000 splits, seed 32
  python bench/flaky_store.py --splits 200 --workers 8 --seed 7
  python bench/flaky_store.py --splits 200 --no-faults   # the same through a clean proxy

Needs moto[server] and s3fs (``pip install -e '.[test]'``). Not a pytest test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

from remote_datastore import MotoServer, aws_env

TREE = Path(__file__).resolve().parents[1]
FLOW = TREE / "tests" / "flows" / "flaky_store_flow.py"
PROXY = TREE / "tests" / "faults" / "proxy.py"
BUCKET = "daskflow-bench"
MIX = ["--slowdown", "0.2", "--reset", "0.05", "--cut", "0.02", "--delay", "0.05",
       "--max-delay", "2"]
CLEAN = ["--slowdown", "0", "--reset", "0", "--cut", "0", "--delay", "0"]
QUICK = {"DASK_DASKFLOW__DATASTORE__S3__MAX_ATTEMPTS": "1",
         "DASK_DASKFLOW__DATASTORE__S3__RETRIES": "5",
         "DASK_DASKFLOW__DATASTORE__RETRY__ATTEMPTS": "6",
         "DASK_DASKFLOW__DATASTORE__RETRY__BACKOFF": "50ms",
         "DASK_DASKFLOW__DATASTORE__RETRY__MAX_BACKOFF": "2s"}

READ_BACK = textwrap.dedent("""
    import importlib.util, sys
    import dask.config, pandas as pd
    spec = importlib.util.spec_from_file_location("flow", sys.argv[2])
    flow = importlib.util.module_from_spec(spec); spec.loader.exec_module(flow)
    with dask.config.set({"daskflow.datastore.root": sys.argv[1]}):
        from daskflow import Flow
        run = Flow("FlakyStoreFlow").latest_run
        tasks = sorted(run["work"], key=lambda t: t.index)
        for task in tasks:
            pd.testing.assert_frame_equal(task.data.frame, flow.frame_of(task.index))
            assert task.data.value == flow.value_of(task.index), task.index
        n = len(tasks)
        assert run["join"].task.data.squares == sum(i * i for i in range(n))
        print(run.id, n, tasks[n // 2].id)
""")

CHECK = textwrap.dedent("""
    import hashlib, json, sys
    import s3fs
    fs = s3fs.S3FileSystem(skip_instance_cache=True, endpoint_url=sys.argv[1],
                           key="bench", secret="bench", client_kwargs={"region_name": "us-east-1"})
    flow = sys.argv[2] + "/FlakyStoreFlow"
    sizes = {}
    for path in fs.find(flow + "/_data"):
        data = fs.cat_file(path)
        assert hashlib.sha1(data).hexdigest() == path.rsplit("/", 1)[-1], path
        sizes[path.rsplit("/", 1)[-1]] = len(data)
    checked = 0
    for path in fs.find(flow):
        if path.endswith(".done.json") or "/_batches/" in path:
            record = json.loads(fs.cat_file(path))
            dones = [record] if path.endswith(".done.json") else [
                {**record["common"]["done"], **(e.get("done") or {})} for e in record["entries"]]
            for done in dones:
                for sha, _f, _t, size, *inline in done.get("artifacts", {}).values():
                    if not inline:
                        assert sizes.get(sha) == size, (path, sha)
                        checked += 1
    print(len(sizes), checked)
""")


class Proxy:
    def __init__(self, upstream: str, folder: Path, seed: int, mix: list[str]) -> None:
        self.stats_path = folder / "proxy-stats.json"
        self.process = subprocess.Popen(
            [sys.executable, str(PROXY), "--upstream", upstream, "--seed", str(seed),
             "--max-seconds", str(6 * 3600), "--stats", str(self.stats_path), *mix],
            stdout=subprocess.PIPE, text=True)
        self.url = f"http://127.0.0.1:{self.process.stdout.readline().strip()}"

    def stats(self) -> dict[str, int]:
        time.sleep(1.2)  # rewritten each second
        return json.loads(self.stats_path.read_text())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--splits", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per local worker (daskflow.local.threads-per-worker; at "
                             "most the machine's cores)")
    parser.add_argument("--workers", type=int, default=None,
                        help="local worker processes (daskflow.local.n-workers; default one a "
                             "core): the splits wait on the store, so more than the cores help")
    parser.add_argument("--quick", action="store_true", help="the tests' retry policy")
    parser.add_argument("--no-faults", action="store_true", help="a clean proxy instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flaky-store-") as tmp:
        folder = Path(tmp)
        moto = MotoServer(folder)
        proxy = None
        try:
            import boto3
            boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1",
                         aws_access_key_id="bench", aws_secret_access_key="bench"
                         ).create_bucket(Bucket=BUCKET)
            proxy = Proxy(moto.url, folder, args.seed, CLEAN if args.no_faults else MIX)
            bench(args, folder, moto.url, proxy)
        finally:
            if proxy is not None:
                proxy.stop()
            moto.close()


def bench(args: argparse.Namespace, folder: Path, moto: str, proxy: Proxy) -> None:
    root = f"s3://{BUCKET}/{uuid.uuid4().hex[:8]}"
    env = {**os.environ, **aws_env(proxy.url), "PYTHONPATH": str(TREE),
           "PYTHONUNBUFFERED": "1", "DASK_DASKFLOW__LOCAL__THREADS_PER_WORKER":
           str(args.threads), **(QUICK if args.quick else {})}
    workers = args.workers or os.cpu_count() or 1
    if args.workers:
        env["DASK_DASKFLOW__LOCAL__N_WORKERS"] = str(args.workers)
    flow = [sys.executable, str(FLOW), "--datastore-root", root]
    print(f"{args.splits} splits, seed {args.seed}, {'no faults' if args.no_faults else 'fault mix'}"
          f", {'quick' if args.quick else 'default'} retry policy, {workers} worker(s) x "
          f"{args.threads} thread(s); load average {os.getloadavg()[0]:.1f}")
    print(f"{'phase':<10} {'seconds':>8} {'requests':>9}  faults")
    before = proxy.stats()
    run_id = split = ""

    def phase(name: str, command: list[str]) -> str:
        nonlocal before
        started = time.monotonic()
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
        seconds = time.monotonic() - started
        now = proxy.stats()
        faults = {k: now.get(k, 0) - before.get(k, 0) for k in
                  ("slowdown", "reset-before", "reset-after", "cut", "delayed")}
        print(f"{name:<10} {seconds:>8.1f} {now.get('requests', 0) - before.get('requests', 0):>9}  "
              + " ".join(f"{k}={v}" for k, v in faults.items()), flush=True)
        before = now
        if done.returncode != 0:
            sys.exit(f"{name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        return done.stdout

    phase("run", flow + ["run", "--splits", str(args.splits), "--max-num-splits",
                         str(args.splits), "--max-workers", str(workers * args.threads)])
    run_id, count, split = phase("read back", [sys.executable, "-c", READ_BACK, root,
                                               str(FLOW)]).split()
    assert int(count) == args.splits
    phase("logs", flow + ["logs", "/".join([run_id, "work", split])])
    phase("report", flow + ["report", run_id, "-o", str(folder / "report.html")])
    phase("resume", flow + ["resume", "join", "--origin-run-id", run_id, "--max-num-splits",
                            str(args.splits)])
    blobs, checked = subprocess.run(
        [sys.executable, "-c", CHECK, moto, root[len("s3://"):]], env=env, check=True,
        capture_output=True, text=True).stdout.split()
    print(f"store: {blobs} blobs, each hashing to its name; {checked} artifact references "
          f"of finished tasks, each blob there whole")
    print("proxy: " + json.dumps(proxy.stats()))


if __name__ == "__main__":
    main()
