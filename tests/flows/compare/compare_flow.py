"""Two runs of this to compare: --alpha changes one value and a frame; compare_helper.py's
note() is the file a test changes between them."""
import pandas as pd

from compare_helper import note
from daskflow import FlowSpec, Parameter, step


class CompareFlow(FlowSpec):
    alpha = Parameter("alpha", default=1.0)
    n = Parameter("n", default=3)

    @step
    def start(self):
        self.items = list(range(self.n))
        self.frame = pd.DataFrame({"x": self.items})
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.out = self.input * 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.out for i in inputs)
        self.scaled = self.total * self.alpha
        self.table = pd.DataFrame({"alpha": [self.alpha] * 2, "k": ["a", "b"]})
        self.next(self.end)

    @step
    def end(self):
        self.note = note()


if __name__ == "__main__":
    CompareFlow()
