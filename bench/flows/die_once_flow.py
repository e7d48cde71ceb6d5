"""One split of a foreach dies on its first attempt; its next attempt notes when it began.

``$DIE_HOW``: ``process`` (default) kills the split's worker process (SIGKILL; its nanny
starts another), ``job`` cancels the SLURM job it runs in (``scancel``: no nanny is left,
the task goes to a fresh cluster).  ``$DIE_BACKEND``: the split step runs on a step
cluster of that backend (``local``, ``slurm``); unset, on the run's default cluster, where
splits run in batches.  Each attempt writes ``<index>-<attempt>.time`` (the moment it
starts, or dies) in the working folder (``bench/retry_latency.py``).
"""
import os
import signal
import subprocess
import time

from daskflow import FlowSpec, Parameter, current, resources, retry, step

BACKEND = os.environ.get("DIE_BACKEND")


def on_backend(func):
    if not BACKEND:
        return func
    return resources(memory="500MiB", backend=BACKEND)(func)


class DieOnceFlow(FlowSpec):
    n = Parameter("n", default=20)
    victim = Parameter("victim", default=10)
    nap = Parameter("nap", default=0.05)

    @step
    def start(self):
        self.items = list(range(self.n))
        self.next(self.work, foreach="items")

    @retry(times=1, minutes_between_retries=0)
    @on_backend
    @step
    def work(self):
        time.sleep(self.nap)
        if self.input == self.victim and current.retry_count == 0:
            with open(f"{self.input}-0.time", "w") as f:
                f.write(repr(time.time()))
            if os.environ.get("DIE_HOW") == "job":
                subprocess.run(["scancel", os.environ["SLURM_JOB_ID"]], check=True)
                time.sleep(600)
            os.kill(os.getpid(), signal.SIGKILL)
        if self.input == self.victim:
            with open(f"{self.input}-{current.retry_count}.time", "w") as f:
                f.write(repr(time.time()))
        self.out = self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.out for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DieOnceFlow()
