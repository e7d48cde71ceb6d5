"""@timeout on a foreach step: its splits never share a Dask task (stopping one kills its
worker process), so only the slow split is stopped; @catch lets the run go on."""
import time

from daskflow import FlowSpec, Parameter, catch, step, timeout


class BatchTimeoutFlow(FlowSpec):
    n = Parameter("n", default=6)

    @step
    def start(self):
        self.items = list(range(self.n))
        self.next(self.work, foreach="items")

    @catch(var="problem")
    @timeout(seconds=3)
    @step
    def work(self):
        if self.index == 2:
            time.sleep(60)
        self.out = self.input * 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.outs = [getattr(i, "out", None) for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BatchTimeoutFlow()
