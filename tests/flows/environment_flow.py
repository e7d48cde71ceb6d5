"""@environment on two concurrent branches, a plain branch, and a step on its own cluster."""
import os
import subprocess
import sys
import time

from daskflow import FlowSpec, environment, resources, step


def sample(seconds=0.6):
    """DF_MODE as this task sees it, read many times while the others run."""
    seen = set()
    end = time.time() + seconds
    while time.time() < end:
        seen.add(os.environ.get("DF_MODE"))
        time.sleep(0.01)
    return sorted(seen, key=str)


def worker_env(name):
    """Read on the worker (``os.environ.get`` itself would carry this process's mapping)."""
    import os
    return os.environ.get(name)


class EnvironmentFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.a, self.b, self.plain)

    @environment(vars={"DF_MODE": "alpha", "DF_ONLY_A": 1})
    @step
    def a(self):
        self.began, self.seen, self.ended = time.time(), sample(), time.time()
        self.only_a = os.environ.get("DF_ONLY_A")
        self.child = subprocess.run([sys.executable, "-c", "import os; print(os.environ['DF_MODE'])"],
                                    capture_output=True, text=True).stdout.strip()
        self.next(self.join)

    @environment(vars={"DF_MODE": "beta"})
    @step
    def b(self):
        self.began, self.seen, self.ended = time.time(), sample(), time.time()
        self.only_a = os.environ.get("DF_ONLY_A")
        self.next(self.join)

    @step
    def plain(self):
        self.began, self.seen, self.ended = time.time(), sample(), time.time()
        self.next(self.join)

    @step
    def join(self, inputs):
        self.seen = {"a": inputs.a.seen, "b": inputs.b.seen, "plain": inputs.plain.seen}
        self.spans = {"a": (inputs.a.began, inputs.a.ended),
                      "b": (inputs.b.began, inputs.b.ended),
                      "plain": (inputs.plain.began, inputs.plain.ended)}
        self.only_a = {"a": inputs.a.only_a, "b": inputs.b.only_a}
        self.child = inputs.a.child
        self.after = os.environ.get("DF_MODE")
        self.next(self.big)

    @environment(vars={"DF_MODE": "gamma"})
    @resources(cpu=1, memory="1GiB", workers=2)
    @step
    def big(self):
        from daskflow import current
        self.big_seen = os.environ.get("DF_MODE")
        current.client.wait_for_workers(2, timeout=60)  # the cluster starts with its first
        # the step cluster's workers were started with it (the other worker runs no
        # task of this step, so what it has came from its start)
        self.workers_started_with = sorted(set(
            current.client.run(worker_env, "DF_MODE").values()), key=str)
        self.next(self.end)

    @step
    def end(self):
        self.end_seen = os.environ.get("DF_MODE")


if __name__ == "__main__":
    EnvironmentFlow()
