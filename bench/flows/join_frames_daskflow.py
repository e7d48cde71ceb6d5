"""The flow of bench/join_frames.py: a foreach of N splits, each storing a DataFrame of R
rows, joined with ``inputs.frame`` and aggregated on the cluster; the join records its
own times and how much its process grew."""

import resource
import time

import numpy as np
import pandas as pd

from daskflow import FlowSpec, Parameter, step


class JoinFramesBench(FlowSpec):
    splits = Parameter("splits", default=1000, type=int)
    rows = Parameter("rows", default=1_000_000, type=int)

    @step
    def start(self):
        self.parts = list(range(self.splits))
        self.next(self.make, foreach="parts")

    @step
    def make(self):
        i = np.arange(self.rows)
        rng = np.random.default_rng(self.input)
        # x has 1,000 distinct values: Parquet's dictionary keeps the files small on
        # disk, while each frame takes its full 24 bytes a row in memory.
        self.result = pd.DataFrame({"k": i % 100, "x": rng.integers(0, 1000, self.rows) / 1000,
                                    "split": np.full(self.rows, self.input)})
        self.next(self.join)

    @step
    def join(self, inputs):
        import psutil

        from daskflow.collections import cluster_client

        before = psutil.Process().memory_info().rss
        t0 = time.perf_counter()
        frame = inputs.frame("result")
        t1 = time.perf_counter()
        with cluster_client() as client:
            self.rows_total, self.by_k = client.compute(
                [frame.shape[0], frame.groupby("k").x.mean()], sync=True)
        t2 = time.perf_counter()
        self.build_s, self.compute_s = t1 - t0, t2 - t1
        self.npartitions = frame.npartitions
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.join_growth_bytes = peak - before
        self.join_peak_bytes = peak
        self.next(self.end)

    @step
    def end(self):
        print(f"rows={self.rows_total} build={self.build_s:.2f}s compute={self.compute_s:.2f}s "
              f"join_peak={self.join_peak_bytes / 2**20:.0f}MiB")


if __name__ == "__main__":
    JoinFramesBench()
