"""A foreach of N trivial splits on a step cluster of 1 GiB workers: with the size
fixed in the decorator, or (BENCH_PER_SPLIT=1) computed per split by a function that
gives every split the same size, so both runs start the same clusters and differ only
by the per-split sizing. BENCH_PER_SPLIT=2: two sizes, split by parity (two clusters)."""
import os

from daskflow import FlowSpec, Parameter, resources, step

MODE = os.environ.get("BENCH_PER_SPLIT", "0")
MEMORY = {"0": "1GiB",
          "1": lambda item: "1GiB",
          "2": lambda item: "1GiB" if item % 2 else "768MiB"}[MODE]


class SplitResourcesBench(FlowSpec):
    n = Parameter("n", type=int, default=100, help="number of foreach items")

    @step
    def start(self):
        self.items = list(range(self.n))
        self.next(self.work, foreach="items")

    @resources(memory=MEMORY)
    @step
    def work(self):
        self.out = self.input * 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(inp.out for inp in inputs)
        self.next(self.end)

    @step
    def end(self):
        print("total=%d" % self.total)


if __name__ == "__main__":
    SplitResourcesBench()
