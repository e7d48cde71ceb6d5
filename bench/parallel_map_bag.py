#!/usr/bin/env python
"""parallel_map over a 10-million-item dask.bag vs the bag's own map, side by side.

One process starts one LocalCluster (W process workers, one thread each) and a client,
builds ``bag = dask.bag.range(N, npartitions=P)`` (lazy: a range per partition, no
item in the graph), and times, interleaved (the first peer rotating each repetition):

  bag-map           bag.map(square).compute()                      10M results back
  parallel_map      parallel_map(square, bag)                      10M results back
  bag-map-sum       bag.map(square).sum().compute()                one number back
  lazy-sum          parallel_map(square, bag, lazy=True).sum().compute()

Each checks its result.  Prints the median seconds per peer and the ratio to its pair
(parallel_map / bag-map, lazy-sum / bag-map-sum), and the 1-minute load average.

bag-map is skipped above ``--bag-map-max-n`` (default 1M), and says so: distributed
serializes a list result element by element, and here 1M ints took minutes (10M would
take most of an hour); parallel_map sends each partition's results as one pickle.

Measured on the 2-core dev machine, shared (load 13-15 throughout, so +-50%):
N=10M, 3 reps: parallel_map 10.3 s (10M results back); bag-map-sum 11.5 s;
lazy-sum 4.6 s (0.40x).  bag-map at N=1M: 220 s vs parallel_map 2.5 s; at N=200k:
28.1 s vs 1.5 s (0.05x): about 140 us per item of list result.

  python bench/parallel_map_bag.py                  # N=10M, P=20, W=2, 3 repetitions
  python bench/parallel_map_bag.py --n 1000000 --reps 1 --peers bag-map parallel_map
"""
from __future__ import annotations

import argparse
import logging
import os
import statistics
import time


def square(x: int) -> int:
    return x * x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--partitions", type=int, default=20)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--peers", nargs="+", default=None, help="a subset of the peers")
    parser.add_argument("--bag-map-max-n", type=int, default=1_000_000)
    args = parser.parse_args()

    import dask.bag as db
    from distributed import Client, LocalCluster

    from daskflow.collections import parallel_map

    n, expected_sum = args.n, sum(x * x for x in range(args.n))
    peers = {
        "bag-map": lambda bag: bag.map(square).compute(),
        "parallel_map": lambda bag: parallel_map(square, bag),
        "bag-map-sum": lambda bag: bag.map(square).sum().compute(),
        "lazy-sum": lambda bag: parallel_map(square, bag, lazy=True).sum().compute(),
    }
    chosen = args.peers or list(peers)
    if "bag-map" in chosen and n > args.bag_map_max_n:
        chosen.remove("bag-map")
        print(f"bag-map skipped: N={n:,} > --bag-map-max-n {args.bag_map_max_n:,} (its list "
              f"results are serialized item by item; run it with --n 1000000)")
    times: dict[str, list[float]] = {name: [] for name in chosen}
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(args.workers)
        names = list(chosen)
        for rep in range(args.reps):
            order = names[rep % len(names):] + names[:rep % len(names)]
            for name in order:
                bag = db.range(n, npartitions=args.partitions)
                start = time.perf_counter()
                result = peers[name](bag)
                times[name].append(time.perf_counter() - start)
                if isinstance(result, list):
                    assert len(result) == n and result[-1] == (n - 1) ** 2, name
                    del result
                else:
                    assert result == expected_sum, (name, result)
    print(f"N={n:,} items, {args.partitions} partitions, {args.workers} workers x 1 thread, "
          f"{args.reps} repetitions, load {os.getloadavg()[0]:.2f}")
    median = {name: statistics.median(ts) for name, ts in times.items()}
    pairs = {"parallel_map": "bag-map", "lazy-sum": "bag-map-sum"}
    for name, ts in times.items():
        ratio = f"  {median[name] / median[pairs[name]]:.2f}x of {pairs[name]}" \
            if pairs.get(name) in median else ""
        print(f"{name:14s} median {median[name]:7.2f} s  (runs: "
              f"{', '.join(f'{t:.2f}' for t in ts)}){ratio}")


if __name__ == "__main__":
    main()
