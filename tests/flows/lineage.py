"""Branches, a foreach and printed lines, to read a run's lineage and logs back."""
import os
import sys

from daskflow import FlowSpec, step


class LineageFlow(FlowSpec):

    @step
    def start(self):
        print("one")
        print("")
        print("two")
        print("careful", file=sys.stderr)
        self.next(self.fan, self.other)

    @step
    def fan(self):
        self.items = [1, 2]
        self.next(self.work, foreach="items")

    @step
    def work(self):
        if os.environ.get("LINEAGE_FAIL") and self.input == 2:
            raise RuntimeError("asked to fail")
        self.value = self.input * 10
        self.next(self.gather)

    @step
    def gather(self, inputs):
        self.values = [i.value for i in inputs]
        self.next(self.join)

    @step
    def other(self):
        self.next(self.other_more)

    @step
    def other_more(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.values = inputs.gather.values
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    LineageFlow()
