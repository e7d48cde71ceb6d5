"""The linear 4-step flow's shape on raw Dask: the floor for what daskflow adds.

Run: python linear_rawdask.py --n 10 --workers 2
Four dependent tasks on a process-based LocalCluster, gathered, then closed.
"""
import argparse

from distributed import Client, LocalCluster


def start(n):
    return list(range(n))


def double(items):
    return [x * 2 for x in items]


def add(doubled):
    return sum(doubled)


def end(total):
    return total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                           dashboard_address=":0")
    client = Client(cluster)
    try:
        future = client.submit(end, client.submit(add, client.submit(
            double, client.submit(start, args.n))))
        total = future.result()
    finally:
        client.close()
        cluster.close()
    print("total=%d" % total)


if __name__ == "__main__":
    main()
