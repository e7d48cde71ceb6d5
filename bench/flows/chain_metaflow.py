"""Foreach of N splits that each go on to a second step before the join, Metaflow version
(issue 31: the chain of one split runs in one batch).

Run: python chain_metaflow.py run --n 1000 --max-num-splits 1000 --max-workers 2
Kept line-for-line identical to chain_daskflow.py except for the import.
"""
from metaflow import FlowSpec, step, Parameter


class ChainFlow(FlowSpec):
    n = Parameter("n", type=int, default=1000, help="number of foreach items")

    @step
    def start(self):
        self.items = list(range(self.n))
        self.next(self.double, foreach="items")

    @step
    def double(self):
        self.doubled = self.input * 2
        self.next(self.work)

    @step
    def work(self):
        self.out = self.doubled + 1
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(inp.out for inp in inputs)
        self.next(self.end)

    @step
    def end(self):
        print("total=%d" % self.total)


if __name__ == "__main__":
    ChainFlow()
