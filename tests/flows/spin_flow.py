"""One step of a past run again: spin (Metaflow 2.19), as tests/runtime/test_spin.py runs it."""

from daskflow import FlowSpec, Parameter, current, step


class SpinFlow(FlowSpec):
    alpha = Parameter("alpha", default=2)

    @step
    def start(self):
        self.items = [1, 2, 3]
        self.base = 10
        self.next(self.process, foreach="items")

    @step
    def process(self):
        self.value = self.base + self.input * self.alpha
        print("processing", self.input, "->", self.value, "run", current.run_id, "task", current.task_id)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.values = sorted(i.value for i in inputs)
        print("joined", self.values)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SpinFlow()
