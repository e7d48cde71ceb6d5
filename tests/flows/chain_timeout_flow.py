"""A chain of two steps after a foreach whose second step has @timeout: stopping one
kills its process, so the chain is not batched at all (each task a Dask task)."""
from daskflow import FlowSpec, step, timeout


class ChainTimeoutFlow(FlowSpec):

    @step
    def start(self):
        self.items = list(range(8))
        self.next(self.double, foreach="items")

    @step
    def double(self):
        self.doubled = self.input * 2
        self.next(self.plus_one)

    @timeout(seconds=60)
    @step
    def plus_one(self):
        self.out = self.doubled + 1
        self.next(self.join)

    @step
    def join(self, inputs):
        self.outs = [i.out for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ChainTimeoutFlow()
