"""A linear flow of 4 steps, daskflow version (peer of linear_{daskflow,metaflow}.py).

Run: python linear_daskflow.py run --n 10
Kept line-for-line identical between the peers except for the import.
"""
from daskflow import FlowSpec, step, Parameter


class LinearFlow(FlowSpec):
    n = Parameter("n", type=int, default=10, help="size of the list passed along")

    @step
    def start(self):
        self.items = list(range(self.n))
        self.next(self.double)

    @step
    def double(self):
        self.doubled = [x * 2 for x in self.items]
        self.next(self.add)

    @step
    def add(self):
        self.total = sum(self.doubled)
        self.next(self.end)

    @step
    def end(self):
        print("total=%d" % self.total)


if __name__ == "__main__":
    LinearFlow()
