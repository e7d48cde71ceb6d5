"""Sum of squares of N ints in B batches, by one peer; prints one `RESULT {json}` line.

Run: python batch_sum.py --peer PEER --n 10000000 --batches 10 --workers 2

The data (a list of N ints and its B batches, lists of N/B ints) is built
before any clock starts.  Then, timed:
  setup_s   make the pool / cluster the peer needs (0 when it needs none)
  call_s    the first map call and the final sum
  call2_s   the same call again in the same process (a warm second call)
  close_s   close the pool / cluster
Peers (each needs only its own imports; `metaflow` runs in Metaflow's venv):
  loop            sum(sum_sq(b) for b in batches)
  pool            multiprocessing.Pool(W).map(sum_sq, batches)      (fork)
  pool-items      Pool(W).map(square, items, chunksize=N/B), summed here
  metaflow        metaflow.parallel_map(sum_sq, batches, max_parallel=W)
  daskbag         dask.bag.from_sequence(batches, npartitions=B).map(sum_sq).sum()
                  on a LocalCluster(W) client
  daskbag-items   dask.bag.from_sequence(items, npartitions=B).map(square).sum()
  daskflow        daskflow parallel_map(sum_sq, batches) on a LocalCluster(W) client
                  (the step's cluster exists already inside a flow)
  daskflow-items  parallel_map(square, items, batch_size=N/B): N results come back
  daskflow-own    parallel_map(sum_sq, batches) with no client: it starts and
                  closes its own LocalCluster inside the call
Stdlib only at import time.
"""
import argparse
import json
import os
import sys
import time


def sum_sq(batch):
    return sum(x * x for x in batch)


def square(x):
    return x * x


def local_cluster(workers):
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=":0")
    return cluster, Client(cluster)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer", required=True)
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    n, b, w = args.n, args.batches, args.workers
    size = -(-n // b)
    items = list(range(n))
    batches = [items[i:i + size] for i in range(0, n, size)]
    close = None
    t0 = time.perf_counter()

    if args.peer == "loop":
        def call():
            return sum(sum_sq(batch) for batch in batches)
    elif args.peer in ("pool", "pool-items"):
        import multiprocessing

        pool = multiprocessing.get_context("fork").Pool(w)
        close = pool.close
        if args.peer == "pool":
            def call():
                return sum(pool.map(sum_sq, batches))
        else:
            def call():
                return sum(pool.map(square, items, chunksize=size))
    elif args.peer == "metaflow":
        from metaflow import parallel_map

        def call():
            return sum(parallel_map(sum_sq, batches, max_parallel=w))
    elif args.peer in ("daskbag", "daskbag-items"):
        import dask.bag as db

        cluster, client = local_cluster(w)

        def close():
            client.close()
            cluster.close()
        if args.peer == "daskbag":
            def call():
                return db.from_sequence(batches, npartitions=b).map(sum_sq).sum().compute()
        else:
            def call():
                return db.from_sequence(items, npartitions=b).map(square).sum().compute()
    elif args.peer in ("daskflow", "daskflow-items"):
        from daskflow.collections import parallel_map

        cluster, client = local_cluster(w)

        def close():
            client.close()
            cluster.close()
        if args.peer == "daskflow":
            def call():
                return sum(parallel_map(sum_sq, batches))
        else:
            def call():
                return sum(parallel_map(square, items, batch_size=size))
    elif args.peer == "daskflow-own":
        from daskflow.collections import parallel_map

        def call():
            return sum(parallel_map(sum_sq, batches))
    else:
        raise SystemExit("unknown peer %r" % args.peer)

    t1 = time.perf_counter()
    total = call()
    t2 = time.perf_counter()
    total2 = call()
    t3 = time.perf_counter()
    if close is not None:
        close()
    t4 = time.perf_counter()
    expected = (n - 1) * n * (2 * n - 1) // 6
    print("RESULT " + json.dumps({
        "peer": args.peer, "n": n, "batches": b, "workers": w,
        "setup_s": t1 - t0, "call_s": t2 - t1, "call2_s": t3 - t2, "close_s": t4 - t3,
        "ok": total == expected and total2 == expected, "pid": os.getpid(),
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
