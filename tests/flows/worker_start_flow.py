"""Records how its worker processes started (tests/runtime/test_worker_start.py).

Each import of this file appends the importing process's pid to $IMPORT_LOG.
"""
import os
import time

from daskflow import FlowSpec, Parameter, step

if os.environ.get("IMPORT_LOG"):
    with open(os.environ["IMPORT_LOG"], "a") as log:
        log.write(f"{os.getpid()}\n")


def started_with(key):
    """Whether ``key`` was in the environment this process started with (what glibc saw)."""
    try:
        with open("/proc/self/environ", "rb") as f:
            return any(entry.startswith(key.encode() + b"=") for entry in f.read().split(b"\0"))
    except OSError:
        return None


class WorkerStartFlow(FlowSpec):
    pre = Parameter("pre", default=0.0, help="seconds the start step sleeps first")

    @step
    def start(self):
        time.sleep(self.pre)  # past Dask's memory manager's first rounds
        self.items = list(range(4))
        self.next(self.probe, foreach="items")

    @step
    def probe(self):
        time.sleep(0.3)  # long enough for both workers to take splits
        self.pid = os.getpid()
        self.ppid = os.getppid()
        import psutil
        self.parent_threads = psutil.Process(self.ppid).num_threads()
        self.env = {key: os.environ.get(key) for key in ("OMP_NUM_THREADS", "DRIVER_MARK")}
        self.env["started with MALLOC_TRIM_THRESHOLD_"] = started_with("MALLOC_TRIM_THRESHOLD_")
        self.next(self.join)

    @step
    def join(self, inputs):
        self.pids = sorted({i.pid for i in inputs})
        self.ppids = sorted({i.ppid for i in inputs})
        self.envs = [i.env for i in inputs]
        self.parent_threads = max(i.parent_threads for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    WorkerStartFlow()
