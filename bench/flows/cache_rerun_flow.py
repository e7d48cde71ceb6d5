"""A foreach of N splits for bench/cache_rerun.py: ``bump`` changes one item, ``sleep`` is
what each split costs (seconds).

Run: python cache_rerun_flow.py run --with cache --n 1000 --max-num-splits 1000
"""
import time

from daskflow import FlowSpec, Parameter, step


class CacheRerunFlow(FlowSpec):
    n = Parameter("n", type=int, default=1000, help="number of foreach items")
    bump = Parameter("bump", type=int, default=-1, help="the item to change (-1: none)")
    sleep = Parameter("sleep", type=float, default=0.0, help="seconds each split sleeps")

    @step
    def start(self):
        self.items = [i + (self.n if i == self.bump else 0) for i in range(self.n)]
        self.pause = self.sleep
        self.next(self.work, foreach="items")

    @step
    def work(self):
        time.sleep(self.pause)
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
    CacheRerunFlow()
