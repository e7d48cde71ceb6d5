"""Memory that grows on retry for one split only, and off the run's default cluster
(tests/runtime/test_failure_causes.py runs it with the default cluster's workers at
600 MiB): split 1 of ``work`` and the step ``alone`` fill more than 600 MiB."""
import time

from daskflow import FlowSpec, current, resources, retry, step


def fill(mb):
    block = bytearray(mb * 10**6)
    block[::4096] = b"x" * len(block[::4096])  # every page touched: resident
    time.sleep(1)  # the nanny's memory monitor looks every 100 ms
    return len(block)


class GrowSplitFlow(FlowSpec):
    @step
    def start(self):
        self.items = [0, 1, 2]
        self.next(self.work, foreach="items")

    @retry(times=2, minutes_between_retries=0)
    @resources(memory=lambda item: "600MiB", max_memory="2GiB")
    @step
    def work(self):
        self.ran_with = tuple(current.resources)
        if self.input == 1:
            fill(900)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.alone)

    @retry(times=1, minutes_between_retries=0)
    @resources(max_memory="2GiB")
    @step
    def alone(self):
        self.ran_with = tuple(current.resources)
        fill(900)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    GrowSplitFlow()
