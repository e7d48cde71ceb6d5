"""Foreach of N trivial tasks, Metaflow version (peer of foreach_daskflow.py).

Run: python foreach_metaflow.py run --n 1000 --max-num-splits 1000 --max-workers 2
Kept line-for-line identical to foreach_daskflow.py except for the import.
"""
from metaflow import FlowSpec, step, Parameter


class ForeachFlow(FlowSpec):
    n = Parameter("n", type=int, default=1000, help="number of foreach items")

    @step
    def start(self):
        self.items = list(range(self.n))
        self.next(self.work, foreach="items")

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
    ForeachFlow()
