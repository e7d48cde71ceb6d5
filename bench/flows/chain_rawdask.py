"""Foreach of N splits, each going on to a second step, on raw Dask: the floor for
what daskflow adds to a chained foreach (peer of chain_daskflow.py).

Run: python chain_rawdask.py --n 1000 --workers 2
Starts a process-based LocalCluster, maps x*2 over range(N), maps +1 over those
futures, gathers, sums, closes. The benchmark times this whole process.
"""
import argparse

from distributed import Client, LocalCluster


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    cluster = LocalCluster(
        n_workers=args.workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
    )
    client = Client(cluster)
    try:
        doubled = client.map(lambda x: x * 2, range(args.n))
        futures = client.map(lambda x: x + 1, doubled)
        total = sum(client.gather(futures))
    finally:
        client.close()
        cluster.close()
    print("total=%d" % total)


if __name__ == "__main__":
    main()
