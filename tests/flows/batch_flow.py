"""A wide foreach of short splits, which run in batches: one split can fail, be caught
or be slow. Which one, and how, comes from the environment of the first run only
(BATCH_FAIL_AT, BATCH_FAIL_MODE: once | always | slow; BATCH_FAIL_JOIN: the join fails),
so a resume runs it clean."""
import os
import sys

from daskflow import FlowSpec, Parameter, current, retry, step


class BatchFlow(FlowSpec):
    n = Parameter("n", default=300)

    @step
    def start(self):
        self.items = list(range(self.n))
        self.next(self.work, foreach="items")

    @retry(times=1, minutes_between_retries=0)
    @step
    def work(self):
        print(f"split {self.index} attempt {current.retry_count} task {current.task_id}")
        os.write(1, f"fd {self.input}\n".encode())
        print(f"to stderr {self.input}", file=sys.stderr)
        fail_at = int(os.environ.get("BATCH_FAIL_AT", "-1"))
        mode = os.environ.get("BATCH_FAIL_MODE", "once")
        if self.index == fail_at and (mode == "always" or current.retry_count == 0):
            raise ValueError(f"split {self.index} fails")
        self.out = self.input * 2
        self.big = "x" * 5000  # above the inline limit: a blob
        self.next(self.join)

    @step
    def join(self, inputs):
        if os.environ.get("BATCH_FAIL_JOIN"):
            raise RuntimeError("the join fails")
        self.total = sum(i.out for i in inputs if hasattr(i, "out"))
        self.count = len(inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BatchFlow()
