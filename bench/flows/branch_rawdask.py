"""The 3-way branch's shape on raw Dask: the floor for what daskflow adds.

Run: python branch_rawdask.py --n 10 --workers 2
start, three tasks that depend on it, a join of the three and end, on a
process-based LocalCluster, gathered, then closed.
"""
import argparse

from distributed import Client, LocalCluster


def start(n):
    return list(range(n))


def a(items):
    return sum(items)


def b(items):
    return sum(items)


def c(items):
    return 0


def join(*parts):
    return sum(parts)


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
        items = client.submit(start, args.n)
        parts = [client.submit(f, items) for f in (a, b, c)]
        total = client.submit(end, client.submit(join, *parts)).result()
    finally:
        client.close()
        cluster.close()
    print("total=%d" % total)


if __name__ == "__main__":
    main()
