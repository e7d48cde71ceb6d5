#!/usr/bin/env python
"""How long a step's cluster costs: open -> first task result, and exit -> cluster gone.

For each backend (local, slurm) it times, in this one process, side by side:

  daskflow  ``with get_backend(name).open(request) as cluster: Client(cluster)``:
            check (SLURM: sinfo + sbatch --test-only), start, wait for every
            worker, first task; then leaving the block: close, and verify that
            nothing is left (local: worker pids; SLURM: squeue), which is part of
            what is timed.
  raw       the wrapped class used directly, as a user of Dask would:
            ``LocalCluster(...)`` / ``SLURMCluster(...).scale(n)`` +
            ``client.wait_for_workers(n)``, first task; then ``close()`` and
            polling (pids / squeue) until everything is gone, polled the same way.

"gone" is checked independently after each run, for both peers, with the same
poll (psutil for worker pids; squeue for the job name). Repetitions are
interleaved (daskflow, raw, daskflow, raw, ...) with the first peer rotating.
Medians are printed as a table; the saving from reusing one cluster for two
adjacent steps of the same size is one open + one exit.

Usage:
  python bench/cluster_lifecycle.py                   # local and slurm, 5 reps, 2 workers
  python bench/cluster_lifecycle.py --backends local --reps 10 --workers 1

SLURM is skipped, saying why, when ``sinfo`` does not answer (.ci/setup-slurm.sh).
Not a pytest test.
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
import uuid
from collections.abc import Callable

MiB = 2**20


def inc(x: int) -> int:
    return x + 1


def alive(pids: list[int]) -> list[int]:
    import psutil
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.Error:
            pass
    return out


def squeue(job_name: str) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-n", job_name, "-o", "%i"], capture_output=True,
                         text=True, timeout=30).stdout
    return out.split()


def wait_gone(pids: list[int], job_name: str | None, timeout: float = 120) -> float:
    """Poll until the workers' pids (and the SLURM jobs) are gone; seconds waited."""
    start = time.perf_counter()
    while alive(pids) or (job_name and squeue(job_name)):
        if time.perf_counter() - start > timeout:
            raise RuntimeError(f"still running after {timeout}s: {alive(pids)} "
                               f"{squeue(job_name) if job_name else ''}")
        time.sleep(0.01)
    return time.perf_counter() - start


def run_daskflow(backend_name: str, workers: int) -> tuple[float, float, float]:
    from distributed import Client

    from daskflow.clusters import ResourceRequest, get_backend
    request = ResourceRequest(cpu=1, memory=512 * MiB, workers=workers)
    backend = get_backend(backend_name)
    t0 = time.perf_counter()
    opened = backend.open(request)
    cluster = opened.__enter__()
    try:
        with Client(cluster) as client:
            assert client.submit(inc, 1).result() == 2
            t1 = time.perf_counter()
            pids = list(client.run(os.getpid).values())
        job_name = getattr(cluster, "job_name", None)
    except BaseException:
        opened.__exit__(*sys.exc_info())
        raise
    t2 = time.perf_counter()
    opened.__exit__(None, None, None)
    t3 = time.perf_counter()
    extra = wait_gone(pids, job_name)  # should be 0: teardown already verified
    return t1 - t0, t3 - t2, extra


def run_raw(backend_name: str, workers: int, log_directory: str) -> tuple[float, float, float]:
    from distributed import Client
    t0 = time.perf_counter()
    job_name = None
    if backend_name == "local":
        from distributed import LocalCluster
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               memory_limit=512 * MiB, dashboard_address="127.0.0.1:0",
                               silence_logs=logging.CRITICAL)
    else:
        from dask_jobqueue import SLURMCluster
        job_name = f"rawbench-{uuid.uuid4().hex[:8]}"
        cluster = SLURMCluster(cores=1, memory=512 * MiB, processes=1, job_name=job_name,
                               log_directory=log_directory,
                               scheduler_options={"dashboard_address": "127.0.0.1:0"})
        cluster.scale(jobs=workers)
    client = Client(cluster)
    client.wait_for_workers(workers, timeout=120)
    assert client.submit(inc, 1).result() == 2
    t1 = time.perf_counter()
    pids = list(client.run(os.getpid).values())
    client.close()
    t2 = time.perf_counter()
    cluster.close()
    gone = wait_gone(pids, job_name)
    t3 = time.perf_counter()
    return t1 - t0, t3 - t2, gone


def slurm_problem() -> str | None:
    if shutil.which("sinfo") is None:
        return "sinfo not on PATH"
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True,
                              timeout=10)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer"
    return None if done.returncode == 0 and done.stdout.strip() else "no SLURM node"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", nargs="+", default=["local", "slurm"])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    import dask.config
    logs = tempfile.mkdtemp(prefix="bench-slurm-logs-")
    dask.config.set({"daskflow.cluster.slurm.log-directory": logs})
    logging.getLogger("distributed").setLevel(logging.ERROR)

    rows = []
    for backend in args.backends:
        if backend == "slurm" and (problem := slurm_problem()):
            print(f"skipping slurm: {problem}", file=sys.stderr)
            continue
        peers: dict[str, Callable[[], tuple[float, float, float]]] = {
            "daskflow": lambda b=backend: run_daskflow(b, args.workers),
            "raw": lambda b=backend: run_raw(b, args.workers, logs),
        }
        results: dict[str, list[tuple[float, float, float]]] = {p: [] for p in peers}
        names = list(peers)
        for rep in range(args.reps):
            order = names[rep % 2:] + names[:rep % 2]
            for peer in order:
                results[peer].append(peers[peer]())
        for peer in names:
            opens, exits, extra = zip(*results[peer])
            rows.append((backend, peer, statistics.median(opens), statistics.median(exits),
                         min(opens), max(opens), max(extra)))
    shutil.rmtree(logs, ignore_errors=True)

    print(f"\n{args.workers} worker(s) of 1 core, 512 MiB; {args.reps} repetitions; medians "
          f"(min-max); python {sys.version.split()[0]}, {os.cpu_count()} cores\n")
    header = (f"{'backend':8} {'peer':9} {'open->first result':>22} {'exit->gone':>11} "
              f"{'left after exit':>16}")
    print(header)
    print("-" * len(header))
    for backend, peer, open_s, exit_s, lo, hi, extra in rows:
        print(f"{backend:8} {peer:9} {open_s:8.2f}s ({lo:.2f}-{hi:.2f}) {exit_s:10.2f}s "
              f"{('none' if peer == 'daskflow' and extra < 0.05 else f'{extra:.2f}s'):>16}")
    print()
    by = {(b, p): (o, e) for b, p, o, e, *_ in rows}
    for backend in dict.fromkeys(b for b, *_ in rows):
        if (backend, "raw") in by and (backend, "daskflow") in by:
            (do, de), (ro, re_) = by[(backend, "daskflow")], by[(backend, "raw")]
            print(f"{backend}: daskflow/raw open {do / ro:.2f}x, exit {de / re_:.2f}x; "
                  f"reusing one cluster for two adjacent steps saves ~{do + de:.2f}s")
    print("\n'exit->gone' for raw = close() plus polling until workers/jobs are gone; for "
          "daskflow the\nverification is inside the exit ('left after exit' re-checks it).")


if __name__ == "__main__":
    main()
