"""A foreach whose splits each store a DataFrame, joined as one lazy dask DataFrame.

``--kind`` picks what the splits store (pandas, dask, or both alternately); ``--bad``
makes split 1 store something ``inputs.frame`` must refuse; ``--measure`` makes the
join record how much its process grew while aggregating lazily, then while loading
every input whole (the control that shows the probe sees loading).
"""

import resource

import numpy as np
import pandas as pd

from daskflow import FlowSpec, Parameter, step


def grown_mib(before: float) -> float:
    """How far this process's peak memory rose above ``before`` (MiB of RSS)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before


def rss_mib() -> float:
    import psutil
    return psutil.Process().memory_info().rss / 2**20


class JoinFramesFlow(FlowSpec):
    splits = Parameter("splits", default=4, type=int)
    rows = Parameter("rows", default=1000, type=int)
    kind = Parameter("kind", default="pandas", help="pandas, dask or mixed")
    bad = Parameter("bad", default="", help="'', 'type' or 'schema'")
    measure = Parameter("measure", default=False, type=bool)

    @step
    def start(self):
        self.parts = list(range(self.splits))
        self.next(self.make, foreach="parts")

    @step
    def make(self):
        i = np.arange(self.rows)
        # Few distinct values: Parquet's dictionaries keep the files small on disk,
        # while each frame takes its full 24 bytes a row in memory.
        frame = pd.DataFrame({"k": i % 10, "x": (i % 100) * 0.5,
                              "split": np.full(self.rows, float(self.input))})
        if self.bad == "schema" and self.input == 1:
            frame["x"] = frame["x"].astype(str)
        if self.kind == "dask" or (self.kind == "mixed" and self.input % 2):
            import dask.dataframe as dd
            frame = dd.from_pandas(frame, npartitions=2)
        self.result = [1, 2] if self.bad == "type" and self.input == 1 else frame
        self.next(self.join)

    @step
    def join(self, inputs):
        from daskflow.collections import cluster_client

        before = rss_mib()
        frame = inputs.frame("result")
        self.frame_type = type(frame).__name__
        self.npartitions = frame.npartitions
        with cluster_client() as client:
            self.rows_total, self.x_total, self.by_k = client.compute(
                [frame.shape[0], frame.x.sum(), frame.groupby("k").x.sum()], sync=True)
        self.lazy_growth = grown_mib(before)
        if self.measure:
            before = rss_mib()
            whole = pd.concat([i.result for i in inputs])
            self.whole_x_total = float(whole.x.sum())
            self.eager_growth = grown_mib(before)
            del whole
        self.next(self.end)

    @step
    def end(self):
        print(f"rows={self.rows_total} partitions={self.npartitions}")


if __name__ == "__main__":
    JoinFramesFlow()
