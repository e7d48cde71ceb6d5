"""@cache with a big DataFrame artifact: start makes ``rows`` rows, ``total`` reads them.

``total`` appends to the file CACHE_COUNT_FILE names when its body runs.
"""
import os

from daskflow import FlowSpec, Parameter, step


class CacheFrameFlow(FlowSpec):
    rows = Parameter("rows", default=10_000_000)

    @step
    def start(self):
        import numpy as np
        import pandas as pd
        self.frame = pd.DataFrame({"x": np.arange(self.rows, dtype="int64"),
                                   "y": np.random.default_rng(0).random(self.rows)})
        self.next(self.total)

    @step
    def total(self):
        with open(os.environ["CACHE_COUNT_FILE"], "a") as f:
            f.write("total\n")
        self.sum = int(self.frame["x"].sum())
        self.next(self.end)

    @step
    def end(self):
        print(f"sum {self.sum}")


if __name__ == "__main__":
    CacheFrameFlow()
