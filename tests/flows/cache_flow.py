"""@cache: start -> foreach over 20 items -> work -> join -> end.

Each step body appends its name (and a split its item) to the file named by
CACHE_COUNT_FILE, so a test counts which bodies ran. ``items`` feeds start, ``factor``
only end.
"""
import os

from daskflow import FlowSpec, JSONType, Parameter, step


def ran(what):
    with open(os.environ["CACHE_COUNT_FILE"], "a") as f:
        f.write(f"{what}\n")


class CacheFlow(FlowSpec):
    items = Parameter("items", type=JSONType, default=list(range(20)))
    factor = Parameter("factor", default=1)

    @step
    def start(self):
        ran("start")
        self.values = tuple(self.items)  # its blob is start's alone (items is a list)
        self.next(self.work, foreach="values")

    @step
    def work(self):
        ran(f"work {self.input}")
        self.square = self.input * self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        ran("join")
        self.total = sum(i.square for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        ran("end")
        self.result = self.total * self.factor
        print(f"result {self.result}")


if __name__ == "__main__":
    CacheFlow()
