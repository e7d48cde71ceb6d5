"""Foreach of N trivial splits whose join fails while BENCH_FAIL_JOIN is set: the first
run fails in the join, ``resume`` (without it) clones the foreach and runs the join.

Run: BENCH_FAIL_JOIN=1 python resume_join_flow.py run --n 100000 --max-num-splits 100000
     python resume_join_flow.py resume
"""
import os

from daskflow import FlowSpec, Parameter, step


class ResumeJoinFlow(FlowSpec):
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
        if os.environ.get("BENCH_FAIL_JOIN"):
            raise RuntimeError("the join fails (BENCH_FAIL_JOIN is set)")
        self.total = sum(inp.out for inp in inputs)
        self.next(self.end)

    @step
    def end(self):
        print("total=%d" % self.total)


if __name__ == "__main__":
    ResumeJoinFlow()
