"""Foreach of N splits that each sleep 50 ms, daskflow version (issue 18's "sleepy" shape).

Run: python sleepy_daskflow.py run --n 1000 --max-num-splits 1000 --max-workers 2
The ideal whole run is N x 50 ms / workers plus the cluster's start; bench/foreach_peers.py
--shape sleepy prints how far from it daskflow and raw Dask land.
"""
import time

from daskflow import FlowSpec, step, Parameter


class SleepyFlow(FlowSpec):
    n = Parameter("n", type=int, default=1000, help="number of foreach items")
    sleep = Parameter("sleep", type=float, default=0.05, help="seconds each split sleeps")

    @step
    def start(self):
        self.items = list(range(self.n))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        time.sleep(self.sleep)
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
    SleepyFlow()
