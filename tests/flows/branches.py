"""Three branches that each sleep, record when they ran, and are merged."""
import time

from daskflow import FlowSpec, Parameter, step


class BranchFlow(FlowSpec):
    nap = Parameter("nap", default=1.0)

    @step
    def start(self):
        self.shared = "same everywhere"
        self.next(self.a, self.b, self.c)

    @step
    def a(self):
        self.began = time.time()
        time.sleep(self.nap)
        self.ended = time.time()
        self.who = "a"
        self.next(self.join)

    @step
    def b(self):
        self.began = time.time()
        time.sleep(self.nap)
        self.ended = time.time()
        self.who = "b"
        self.next(self.join)

    @step
    def c(self):
        self.who = "c"
        self.next(self.join)

    @step
    def join(self, inputs):
        self.spans = [(i.began, i.ended) for i in (inputs.a, inputs.b)]
        self.order = [i.who for i in inputs]
        self.from_b = inputs.b.who
        self.who = "join"
        self.merge_artifacts(inputs, exclude=["began", "ended"])
        self.next(self.end)

    @step
    def end(self):
        self.result = (self.shared, self.who)


if __name__ == "__main__":
    BranchFlow()
