"""Foreach of N trivial splits that go on to a second step before a join that fails while
BENCH_FAIL_JOIN is set (issue 31): the first run fails in the join; ``resume`` (without
it) clones both steps of each split's chain and runs the join; ``resume work`` clones
``double`` and runs ``work`` again.

Run: BENCH_FAIL_JOIN=1 python resume_chain_flow.py run --n 10000 --max-num-splits 10000
     python resume_chain_flow.py resume --origin-run-id RUN
     python resume_chain_flow.py resume work --origin-run-id RUN
"""
import os

from daskflow import FlowSpec, Parameter, step


class ResumeChainFlow(FlowSpec):
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
        if os.environ.get("BENCH_FAIL_JOIN"):
            raise RuntimeError("the join fails (BENCH_FAIL_JOIN is set)")
        self.total = sum(inp.out for inp in inputs)
        self.next(self.end)

    @step
    def end(self):
        print("total=%d" % self.total)


if __name__ == "__main__":
    ResumeChainFlow()
