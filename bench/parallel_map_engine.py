#!/usr/bin/env python
"""Why parallel_map runs its partitions as futures and not as a dask.bag: measured.

Both engines get the same lazily built partitions (daskflow's own partitioning:
`range` slices, or pickled slices of a list, scattered when big), on the same
warm LocalCluster(W) in this process; only what runs them differs:

  futures   daskflow.collections.parallel_map as shipped: the partitions go out
            with client.map in a few growing groups (the first ones start while
            the rest are pickled), errors are watched with as_completed, and the
            results (pickled bytes) come back in one gather
  bag       dask.bag.from_delayed(one delayed per partition).map(func), then
            bag.compute() on the same client (what "a Dask bag over the
            step's workers" would be)
  bag-bytes as bag, but each partition's results pickled to bytes on the
            worker and unpickled here (the bag returns lists of bytes)

Cases: 10M ints as 10 batches of 1M (func = sum of squares of a batch), 10M
ints one by one in batches of 1M (func = square, 10M results back), and 1000
trivial items.  Each case runs --reps times per engine, engines alternating;
medians are printed with ratios against `futures`.

  python bench/parallel_map_engine.py --reps 5
"""
from __future__ import annotations

import argparse
import logging
import os
import pickle
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from distributed import Client, LocalCluster  # noqa: E402

from dask.utils import parse_bytes  # noqa: E402

from daskflow import config  # noqa: E402
from daskflow.collections import parallel_map  # noqa: E402
from daskflow.collections.parallel.partitions import Input  # noqa: E402


def sum_sq(batch):
    return sum(x * x for x in batch)


def square(x):
    return x * x


def _load(payload):
    return pickle.loads(payload) if isinstance(payload, bytes) else list(payload)


def _apply_pickled(func, payload):
    return pickle.dumps([func(x) for x in _load(payload)], protocol=5)


def bag_map(client, func, items, batch_size, as_bytes):
    import dask.bag as db
    from dask import delayed

    threads = sum(client.nthreads().values())
    data = Input.of(items)
    limit = parse_bytes(config.get("parallel-map.payload-limit"))
    payloads = []
    for part in data.partitions(batch_size, threads):
        payload = part.payload
        if isinstance(payload, bytes) and len(payload) > limit:
            payload = client.scatter(payload, hash=False)
        payloads.append(payload)
    if as_bytes:
        parts = [delayed(_apply_pickled, pure=False)(func, p) for p in payloads]
        return [r for blob in client.compute(parts, sync=True) for r in pickle.loads(blob)]
    bag = db.from_delayed([delayed(_load, pure=False)(p) for p in payloads])
    return bag.map(func).compute()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    n = args.n
    size = n // 10
    items = list(range(n))
    batches = [items[i:i + size] for i in range(0, n, size)]
    cases = {
        "10 batches, sum_sq": (sum_sq, batches, None, sum(sum_sq(b) for b in batches)),
        "10M items, batch 1M": (square, items, size, None),
        "1000 trivial items": (square, list(range(1000)), None, None),
    }
    engines = {
        "futures": lambda c, f, it, bs: parallel_map(f, it, batch_size=bs),
        "bag": lambda c, f, it, bs: bag_map(c, f, it, bs, False),
        "bag-bytes": lambda c, f, it, bs: bag_map(c, f, it, bs, True),
    }
    times = {(case, e): [] for case in cases for e in engines}
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None,
                      silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
        parallel_map(square, range(10))  # workers import daskflow once
        for case, (func, data, bs, _) in cases.items():
            expected = None
            for rep in range(args.reps):
                order = list(engines)
                order = order[rep % len(order):] + order[:rep % len(order)]
                for engine in order:
                    t0 = time.perf_counter()
                    out = engines[engine](client, func, data, bs)
                    times[(case, engine)].append(time.perf_counter() - t0)
                    if expected is None:
                        expected = out
                    assert out == expected, (case, engine)
                    print("[run] %-22s %-9s %.3f s  load %.2f" % (
                        case, engine, times[(case, engine)][-1], os.getloadavg()[0]),
                        file=sys.stderr, flush=True)
    print("\nparallel_map_engine: N=%d, W=%d, %d reps, medians" % (n, args.workers, args.reps))
    print("%-22s  %-9s  %8s  %10s" % ("case", "engine", "median s", "vs futures"))
    for case in cases:
        base = statistics.median(times[(case, "futures")])
        for engine in engines:
            m = statistics.median(times[(case, engine)])
            print("%-22s  %-9s  %8.3f  %9.2fx" % (case, engine, m, m / base))


if __name__ == "__main__":
    main()
