"""A step on a SLURM cluster of its own that notes its job id, then takes its time on the
first attempt (a test cancels that job with scancel meanwhile)."""
import os
import time

from daskflow import FlowSpec, current, resources, step


class SlurmCancelFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.on_slurm)

    @resources(cpu=1, memory="400MiB", backend="slurm")
    @step
    def on_slurm(self):
        self.job = os.environ.get("SLURM_JOB_ID")
        with open(f"job-{current.retry_count}", "w") as f:  # the job's folder: the driver's
            f.write(self.job or "")
        if current.retry_count == 0:
            time.sleep(120)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SlurmCancelFlow()
