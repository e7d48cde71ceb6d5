"""A small flow to compute as a Dask object (``DelayedFlow.delayed(alpha=...)``)."""

from daskflow import FlowSpec, Parameter, step


class DelayedFlow(FlowSpec):
    alpha = Parameter("alpha", default=0.5, type=float)

    @step
    def start(self):
        if self.alpha < 0:
            raise ValueError(f"alpha must be at least 0, got {self.alpha}")
        self.items = [1, 2, 3]
        self.next(self.scale, foreach="items")

    @step
    def scale(self):
        import time

        from distributed import get_worker

        time.sleep(0.3)  # long enough for two runs computed together to overlap
        self.out = self.input * self.alpha
        self.worker = get_worker().address
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.out for i in inputs)
        self.workers = sorted({i.worker for i in inputs})
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DelayedFlow()
