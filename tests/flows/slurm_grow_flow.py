"""A step on SLURM that fills more memory than its first job holds: with @retry and
max_memory, its retry gets a job (and worker) with twice the memory."""
import time

from daskflow import FlowSpec, Parameter, current, resources, retry, step


class SlurmGrowFlow(FlowSpec):
    fill = Parameter("fill", default=900, help="MB the step fills")

    @step
    def start(self):
        self.next(self.big)

    @retry(times=2, minutes_between_retries=0)
    @resources(memory="600MiB", max_memory="2GiB", backend="slurm")
    @step
    def big(self):
        self.ran_with = tuple(current.resources)
        block = bytearray(self.fill * 10**6)
        block[::4096] = b"x" * len(block[::4096])  # every page touched: resident
        time.sleep(1)
        self.filled = len(block)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SlurmGrowFlow()
