"""The flow page's flow: start, a foreach of --width splits of --nap seconds, a join, end;
--fail N makes split N raise."""
import time

from daskflow import FlowSpec, Parameter, step


class PageFlow(FlowSpec):
    width = Parameter("width", default=40)
    nap = Parameter("nap", default=0.5)
    fail = Parameter("fail", default=-1)

    @step
    def start(self):
        self.items = list(range(self.width))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        time.sleep(self.nap)
        if self.input == self.fail:
            raise ValueError(f"split {self.input} <refuses> & stops")
        self.out = self.input * 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.out for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    PageFlow()
