"""Foreach of N splits that each sleep 50 ms, on raw Dask (peer of sleepy_daskflow.py).

Run: python sleepy_rawdask.py --n 1000 --workers 2
Prints the LocalCluster's start time (cluster_start=S), which the benchmark adds to
N x 50 ms / workers for the ideal run.
"""
import argparse
import time

from distributed import Client, LocalCluster


def work(x, sleep):
    time.sleep(sleep)
    return x * 2


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sleep", type=float, default=0.05)
    args = parser.parse_args()

    t0 = time.perf_counter()
    cluster = LocalCluster(
        n_workers=args.workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
    )
    client = Client(cluster)
    print("cluster_start=%.3f" % (time.perf_counter() - t0))
    try:
        futures = client.map(work, range(args.n), sleep=args.sleep)
        total = sum(client.gather(futures))
    finally:
        client.close()
        cluster.close()
    print("total=%d" % total)


if __name__ == "__main__":
    main()
