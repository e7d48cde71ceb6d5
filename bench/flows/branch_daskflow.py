"""A 3-way branch and its join, daskflow version (peer of branch_{daskflow,metaflow}.py).

Run: python branch_daskflow.py run --n 10
Kept line-for-line identical between the peers except for the import.
"""
from daskflow import FlowSpec, step, Parameter


class BranchFlow(FlowSpec):
    n = Parameter("n", type=int, default=10, help="size of the list each branch reads")

    @step
    def start(self):
        self.items = list(range(self.n))
        self.next(self.a, self.b, self.c)

    @step
    def a(self):
        self.part = sum(self.items)
        self.next(self.join)

    @step
    def b(self):
        self.part = sum(self.items)
        self.next(self.join)

    @step
    def c(self):
        self.part = 0
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(inp.part for inp in inputs)
        self.next(self.end)

    @step
    def end(self):
        print("total=%d" % self.total)


if __name__ == "__main__":
    BranchFlow()
