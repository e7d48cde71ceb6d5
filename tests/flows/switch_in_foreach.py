"""A switch inside a foreach: each split picks its own path, twice, before the join."""
from daskflow import FlowSpec, step


class SwitchForeachFlow(FlowSpec):

    @step
    def start(self):
        self.numbers = [1, 2, 3, 4]
        self.next(self.classify, foreach="numbers")

    @step
    def classify(self):
        self.n = self.input
        self.kind = "even" if self.n % 2 == 0 else "odd"
        self.next({"even": self.halve, "odd": self.grow}, condition="kind")

    @step
    def halve(self):
        self.value = self.n // 2
        self.next(self.measure)

    @step
    def grow(self):
        self.value = self.n * 3 + 1
        self.next(self.measure)

    @step
    def measure(self):
        self.size = "big" if self.value > 5 else "small"
        self.next({"big": self.big, "small": self.small}, condition="size")

    @step
    def big(self):
        self.label = f"{self.n}->{self.value} big"
        self.next(self.join)

    @step
    def small(self):
        self.label = f"{self.n}->{self.value} small"
        self.next(self.join)

    @step
    def join(self, inputs):
        self.labels = [i.label for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SwitchForeachFlow()
