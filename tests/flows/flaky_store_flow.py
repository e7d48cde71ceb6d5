"""A foreach whose splits store a DataFrame and a pickled value each, joined; every value is
a pure function of the split's index, so a test can say what each artifact must be.

Run on a datastore behind the fault proxy (tests/faults/): ``--splits`` wide, each split
printing a line (for ``logs``) and optionally sleeping ``--pause`` seconds (so a test can
act while the foreach runs).
"""

import time

from daskflow import FlowSpec, Parameter, step


def frame_of(i: int):
    """Split ``i``'s DataFrame: a few columns of several types, 40 rows."""
    import numpy as np
    import pandas as pd
    rows = np.arange(40)
    return pd.DataFrame({"split": np.full(40, i), "x": rows * (i + 0.5),
                         "label": [f"s{i}-r{r}" for r in rows]})


def value_of(i: int) -> dict:
    """Split ``i``'s pickled artifact: a dict that cloudpickle stores, not Parquet."""
    return {"i": i, "square": i * i, "tag": f"split-{i}", "bytes": bytes([i % 256]) * 3000}


class FlakyStoreFlow(FlowSpec):
    splits = Parameter("splits", default=20, type=int)
    pause = Parameter("pause", default=0.0, type=float)

    @step
    def start(self):
        self.items = list(range(self.splits))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        time.sleep(self.pause)
        self.frame = frame_of(self.input)
        self.value = value_of(self.input)
        print(f"split {self.input} stored")
        self.next(self.join)

    @step
    def join(self, inputs):
        self.count = len(inputs)
        self.x_total = float(sum(i.frame["x"].sum() for i in inputs))
        self.squares = sum(i.value["square"] for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        print(f"joined {self.count} splits")


if __name__ == "__main__":
    FlakyStoreFlow()
