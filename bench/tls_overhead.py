#!/usr/bin/env python
"""What TLS costs a run: a 4-step flow's whole process with ``cluster.tls`` on vs off.

Each repetition runs ``python bench/flows/linear_daskflow.py run`` as a user does, once
with ``DASK_DASKFLOW__CLUSTER__TLS=true`` (the default) and once with ``false``, in a
fresh working directory, interleaved with the first peer rotating, and times the whole
process. It also times, in this process, making the credentials both ways: daskflow's
EC P-256 key and Dask's ``Security.temporary()`` (RSA-2048). Medians are printed.

Usage:
  python bench/tls_overhead.py            # 5 repetitions
  python bench/tls_overhead.py --reps 9

Not a pytest test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

FLOW = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flows", "linear_daskflow.py")


def run_once(tls: bool) -> float:
    env = {**os.environ, "DASK_DASKFLOW__CLUSTER__TLS": "true" if tls else "false"}
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, FLOW, "run"], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=300)
        took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the flow failed with tls={tls}: {done.stderr[-2000:]}")
    return took


def credentials_times(reps: int) -> tuple[float, float]:
    from distributed.security import Security

    from daskflow.clusters.security import make_credentials
    make_credentials()  # imports
    ec, rsa = [], []
    for _ in range(reps):
        started = time.perf_counter()
        make_credentials()
        ec.append(time.perf_counter() - started)
        started = time.perf_counter()
        Security.temporary()
        rsa.append(time.perf_counter() - started)
    return statistics.median(ec), statistics.median(rsa)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    times: dict[bool, list[float]] = {True: [], False: []}
    for rep in range(args.reps):
        for tls in ((True, False) if rep % 2 == 0 else (False, True)):
            times[tls].append(run_once(tls))
    on, off = statistics.median(times[True]), statistics.median(times[False])
    print(f"4-step flow, whole process, median of {args.reps}:")
    print(f"  tls on   {on:6.2f} s   (all: {', '.join(f'{t:.2f}' for t in times[True])})")
    print(f"  tls off  {off:6.2f} s   (all: {', '.join(f'{t:.2f}' for t in times[False])})")
    print(f"  on/off   {on / off:6.2f}x")
    ec, rsa = credentials_times(args.reps)
    print(f"credentials: EC P-256 {ec * 1000:.1f} ms, Security.temporary() (RSA-2048) "
          f"{rsa * 1000:.1f} ms, median of {args.reps}")


if __name__ == "__main__":
    main()
