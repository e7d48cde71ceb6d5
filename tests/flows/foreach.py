"""A foreach of n trivial tasks; n and the list come from parameters."""
from daskflow import FlowSpec, Parameter, step


class ForeachFlow(FlowSpec):
    n = Parameter("n", default=10)
    mode = Parameter("mode", default="list", help="list | empty | missing | scalar")

    @step
    def start(self):
        if self.mode == "list":
            self.items = list(range(self.n))
        elif self.mode == "empty":
            self.items = []
        elif self.mode == "scalar":
            self.items = 42
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.out = self.input * 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.out for i in inputs)
        self.count = len(inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ForeachFlow()
