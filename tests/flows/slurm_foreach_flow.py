"""A foreach of 6 splits on a SLURM step cluster of 1-core workers: on a 2-core node only
2 of its 6 jobs ever start, and those 2 run every split."""
import os

from daskflow import FlowSpec, resources, step


class SlurmForeachFlow(FlowSpec):
    @step
    def start(self):
        self.items = list(range(6))
        self.next(self.work, foreach="items")

    @resources(backend="slurm", cpu=1, memory="1GiB")
    @step
    def work(self):
        self.job = os.environ.get("SLURM_JOB_ID")
        self.job_name = os.environ.get("SLURM_JOB_NAME")
        self.square = self.input * self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.squares = sorted(i.square for i in inputs)
        self.jobs = sorted({i.job for i in inputs})
        self.job_names = sorted({i.job_name for i in inputs})
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SlurmForeachFlow()
