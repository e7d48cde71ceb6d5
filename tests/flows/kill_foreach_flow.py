"""A wide foreach of short splits, batched, that a test kills workers under.

Each body run appends ``<task id> <attempt> <pid> <time> start`` and, once its work is
done, ``<task id> <attempt> <pid> <time> end`` to the file ``body-runs`` in the working folder (one
``write`` each, O_APPEND), so that the test sees which bodies ran, were killed, and
never ran twice after a success.
"""
import os
import time

from daskflow import FlowSpec, Parameter, current, retry, step


def note(line):
    fd = os.open("body-runs", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


class KillForeachFlow(FlowSpec):
    n = Parameter("n", default=2000)
    nap = Parameter("nap", default=0.01)

    @retry(times=3)
    @step
    def start(self):
        self.items = list(range(self.n))
        self.next(self.work, foreach="items")

    @retry(times=3)
    @step
    def work(self):
        note(f"{current.task_id} {current.retry_count} {os.getpid()} {time.time():.3f} start")
        time.sleep(self.nap)
        self.out = self.input * 2
        note(f"{current.task_id} {current.retry_count} {os.getpid()} {time.time():.3f} end")
        self.next(self.join)

    @retry(times=3)
    @step
    def join(self, inputs):
        self.total = sum(i.out for i in inputs)
        self.next(self.end)

    @retry(times=3)
    @step
    def end(self):
        pass


if __name__ == "__main__":
    KillForeachFlow()
