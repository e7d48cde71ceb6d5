"""A branch on a cluster of its own, joined on a cluster of its own, the other branch
on the default cluster and long done when the join is placed."""
import time

from daskflow import FlowSpec, resources, step


class BranchClusterFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.slow, self.quick)

    @resources(cpu=1)
    @step
    def slow(self):
        time.sleep(3)
        self.value = 1
        self.next(self.join)

    @step
    def quick(self):
        self.value = 2
        self.next(self.join)

    @resources(cpu=1)
    @step
    def join(self, inputs):
        self.total = sum(i.value for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        print("total", self.total)


if __name__ == "__main__":
    BranchClusterFlow()
