"""A step on a SLURM cluster of its own, between two steps on the local default cluster."""
import os
import time

from daskflow import FlowSpec, Parameter, current, resources, step


class SlurmFlow(FlowSpec):
    hog = Parameter("hog", default=0, help="MiB the SLURM step tries to hold")
    nap = Parameter("nap", default=0, help="seconds the SLURM step sleeps at its end")

    @step
    def start(self):
        self.local_scheduler = current.client.scheduler.address
        self.next(self.on_slurm)

    @resources(cpu=1, memory="400MiB", workers=2, backend="slurm")
    @step
    def on_slurm(self):
        client = current.client
        client.wait_for_workers(2, timeout=60)  # the cluster starts with its first
        self.job_ids = sorted(client.run(lambda: os.environ.get("SLURM_JOB_ID")).values())
        self.scheduler = client.scheduler.address
        self.total = client.submit(sum, range(1000)).result()
        if self.hog:  # more than the worker's 400 MiB: the step itself is killed
            block = bytearray(self.hog * 2**20)
            self.total = len(block)
        time.sleep(self.nap)  # past the job's walltime, when a test sets one
        self.next(self.end)

    @step
    def end(self):
        self.end_scheduler = current.client.scheduler.address


if __name__ == "__main__":
    SlurmFlow()
