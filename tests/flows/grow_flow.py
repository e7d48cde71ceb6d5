"""A step that fills more memory than its first worker has: with @retry and max_memory,
its retry gets a worker with twice the memory (tests/runtime/test_failure_causes.py).
Its cluster is on the backend $GROW_BACKEND (local by default; test_resources_slurm.py
runs it on SLURM)."""
import os
import time

from daskflow import FlowSpec, Parameter, current, resources, retry, step


class GrowFlow(FlowSpec):
    fill = Parameter("fill", default=900, help="MB the step fills")

    @step
    def start(self):
        self.next(self.big)

    @retry(times=2, minutes_between_retries=0)
    @resources(memory="600MiB", max_memory="2GiB",
               backend=os.environ.get("GROW_BACKEND", "local"))
    @step
    def big(self):
        self.ran_with = tuple(current.resources)
        block = bytearray(self.fill * 10**6)
        block[::4096] = b"x" * len(block[::4096])  # every page touched: resident
        time.sleep(1)  # the nanny's memory monitor looks every 100 ms
        self.filled = len(block)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    GrowFlow()
