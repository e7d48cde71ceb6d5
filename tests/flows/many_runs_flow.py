"""A tiny foreach whose every artifact carries the run's own ``mark``: a run that read
another's artifacts would show the other's mark."""
from daskflow import FlowSpec, Parameter, current, step


class ManyRunsFlow(FlowSpec):
    mark = Parameter("mark", default="none")

    @step
    def start(self):
        self.items = [f"{self.mark}-{i}" for i in range(3)]
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.seen = (self.mark, self.input, current.run_id)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.seen = sorted(i.seen for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ManyRunsFlow()
