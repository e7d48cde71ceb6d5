#!/usr/bin/env python
"""What shipping a run's code costs: the code package's size, build time and install time.

For two projects -- ``examples/`` (its flows) and a generated one of 200 modules in
10 packages (about 2 KiB each) -- it measures, in this one process:

  build     ``build_code_package(flow)``: walk, read, tar, gzip, sha256 (daskflow
            itself included)
  install   ``install_code(client, archive)`` on a 2-worker cluster: scheduler and
            every worker extract it and put it first on sys.path (a new sha each
            repetition, so every one extracts)
  peer      distributed's own ``UploadDirectory(folder, update_path=True)`` of the
            same folder (without daskflow): a zip sent through the scheduler to
            every nanny

The cluster is a ``LocalCluster(n_workers=2, threads_per_worker=1)`` unless
``--scheduler-address`` names one (e.g. the stock workers of tests/remote).
Medians of ``--reps`` runs. Not a pytest test.

Usage:
  python bench/code_package.py
  python bench/code_package.py --reps 9 --scheduler-address tcp://127.0.0.1:8786
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def make_project(root: Path, modules: int = 200, packages: int = 10) -> Path:
    """``modules`` modules of ~2 KiB in ``packages`` packages, and a flow file."""
    for p in range(packages):
        (root / f"pkg{p}").mkdir(parents=True)
        (root / f"pkg{p}" / "__init__.py").write_text("")
    for m in range(modules):
        body = "".join(f"def f{i}(x):\n    return x * {i} + {m}\n\n\n" for i in range(40))
        (root / f"pkg{m % packages}" / f"mod{m}.py").write_text(body)
    (root / "flow.py").write_text("from pkg0.mod0 import f1\n")
    return root / "flow.py"


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:8.1f}"


def bench(name: str, flow: Path, client, reps: int) -> None:
    from distributed.diagnostics.plugin import UploadDirectory

    from daskflow.remote import build_code_package, install_code

    builds, installs, peers = [], [], []
    extra = flow.parent / "_bench_rep.py"
    try:
        for rep in range(reps):
            extra.write_text(f"REP = {rep}\n")  # a new sha: every install extracts
            t0 = time.perf_counter()
            archive = build_code_package(flow)
            builds.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            install_code(client, archive)
            installs.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with warnings.catch_warnings():  # "already contains a plugin ...; overwriting"
                warnings.simplefilter("ignore", UserWarning)
                client.register_plugin(UploadDirectory(str(flow.parent), update_path=True))
            peers.append(time.perf_counter() - t0)
    finally:
        extra.unlink(missing_ok=True)
    user = sum(1 for f in archive.files if not f.startswith("daskflow/") and f != "INFO")
    print(f"{name:<14} {archive.size / 1024:8.1f} {len(archive.files):6d} {user:6d} "
          f"{median_ms(builds)} {median_ms(installs)} {median_ms(peers)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--scheduler-address", default=None)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    cluster = None
    if args.scheduler_address:
        client = Client(args.scheduler_address)
    else:
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0")
        client = Client(cluster)
    print(f"load average (1 min): {os.getloadavg()[0]:.2f}; workers: "
          f"{len(client.scheduler_info()['workers'])}; reps: {args.reps}")
    print(f"{'project':<14} {'KiB':>8} {'files':>6} {'users':>6} {'build ms':>8} "
          f"{'install':>8} {'peer ms':>8}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bench("examples/", EXAMPLES / "hello.py", client, args.reps)
            bench("200 modules", make_project(Path(tmp) / "project"), client, args.reps)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    main()
