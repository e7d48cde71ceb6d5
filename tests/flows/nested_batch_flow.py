"""A foreach within a foreach whose inner splits are short: each outer split's inner
splits run in batches.  ``NESTED_FAIL_OUTER_JOIN=1`` makes the outer join fail (for
``resume``)."""

import os

from daskflow import FlowSpec, Parameter, step


class NestedBatchFlow(FlowSpec):
    outer_n = Parameter("outer_n", default=3)
    inner_n = Parameter("inner_n", default=200)

    @step
    def start(self):
        self.outers = list(range(self.outer_n))
        self.next(self.outer, foreach="outers")

    @step
    def outer(self):
        self.o = self.input
        self.inners = list(range(self.inner_n))
        self.next(self.inner, foreach="inners")

    @step
    def inner(self):
        self.v = self.o * 1000 + self.input
        print(f"inner {self.o}/{self.input}")
        self.next(self.inner_join)

    @step
    def inner_join(self, inputs):
        self.total = sum(i.v for i in inputs)
        self.next(self.outer_join)

    @step
    def outer_join(self, inputs):
        if os.environ.get("NESTED_FAIL_OUTER_JOIN"):
            raise RuntimeError("the outer join fails")
        self.totals = [i.total for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        print("totals", self.totals)


if __name__ == "__main__":
    NestedBatchFlow()
