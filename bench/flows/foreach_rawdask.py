"""Foreach of N trivial tasks on raw Dask: the floor for what daskflow adds.

Run: python foreach_rawdask.py --n 1000 --workers 2
Starts a process-based LocalCluster, maps x*2 over range(N), gathers, sums,
closes. The benchmark times this whole process from launch to exit.
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
        futures = client.map(lambda x: x * 2, range(args.n))
        total = sum(client.gather(futures))
    finally:
        client.close()
        cluster.close()
    print("total=%d" % total)


if __name__ == "__main__":
    main()
