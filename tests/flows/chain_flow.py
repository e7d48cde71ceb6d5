"""A foreach whose splits go on to a second step before their join (a chain:
``start -foreach-> double -> plus_one -> join``), batched whole: ``double`` keeps a
DataFrame that ``plus_one`` reads back.  From the environment of the first run only:
CHAIN_FAIL_AT (that split's ``plus_one`` fails once), CHAIN_FAIL_JOIN (the join
fails), CHAIN_NOTES (each body run appends ``<task id> <attempt> <pid> <time> start``
and ``... end`` to the file ``body-runs``, one ``write`` each, as
``kill_foreach_flow.py`` does, for a test that kills workers; ``plus_one`` naps
``--nap`` seconds), so a resume runs it clean."""
import os
import time

import pandas as pd

from daskflow import FlowSpec, Parameter, current, retry, step


def note(what):
    if os.environ.get("CHAIN_NOTES"):
        line = (f"{current.task_id} {current.retry_count} {os.getpid()} {time.time():.3f} "
                f"{what}\n")
        fd = os.open("body-runs", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


class ChainFlow(FlowSpec):
    n = Parameter("n", default=300)
    nap = Parameter("nap", default=0.0)

    @step
    def start(self):
        self.items = list(range(self.n))
        self.next(self.double, foreach="items")

    @retry(times=3)
    @step
    def double(self):
        note("start")
        self.doubled = self.input * 2
        self.frame = pd.DataFrame({"i": [self.input] * 3, "v": [1.5, 2.5, 3.5]})
        print(f"double {self.input} in {current.step_name}/{current.task_id}")
        note("end")
        self.next(self.plus_one)

    @retry(times=3)
    @step
    def plus_one(self):
        note("start")
        time.sleep(self.nap)
        fail_at = int(os.environ.get("CHAIN_FAIL_AT", "-1"))
        if self.input == fail_at and current.retry_count == 0:
            raise ValueError(f"plus_one of split {self.input} fails once")
        assert self.frame["i"].tolist() == [self.input] * 3
        self.out = self.doubled + 1
        self.rows = len(self.frame)
        print(f"plus_one {self.input} in {current.step_name}/{current.task_id}")
        note("end")
        self.next(self.join)

    @step
    def join(self, inputs):
        if os.environ.get("CHAIN_FAIL_JOIN"):
            raise RuntimeError("the join fails")
        self.total = sum(i.out for i in inputs)
        self.rows = sum(i.rows for i in inputs)
        self.count = len(inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ChainFlow()
