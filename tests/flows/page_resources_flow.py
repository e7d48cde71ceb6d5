"""A step on a cluster of its own that runs a few seconds, for its flow page."""
import time

from daskflow import FlowSpec, Parameter, resources, step


class PageResourcesFlow(FlowSpec):
    nap = Parameter("nap", default=6.0)

    @step
    def start(self):
        self.next(self.big)

    @resources(cpu=1, memory="600MB")
    @step
    def big(self):
        time.sleep(self.nap)
        self.done = True
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    PageResourcesFlow()
