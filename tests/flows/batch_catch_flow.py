"""@catch on one split of a batched foreach (see batch_flow.py). A wide foreach of short splits, which run in batches: one split can fail, be caught
or be slow. Which one, and how, comes from the environment of the first run only
(BATCH_FAIL_AT, BATCH_FAIL_MODE: once | always | slow), so a resume runs it clean."""
import os
import sys

from daskflow import FlowSpec, Parameter, catch, current, step


class BatchCatchFlow(FlowSpec):
    n = Parameter("n", default=300)

    @step
    def start(self):
        self.items = list(range(self.n))
        self.next(self.work, foreach="items")

    @catch(var="problem")
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
        self.total = sum(i.out for i in inputs if hasattr(i, "out"))
        self.caught = [i.index for i in inputs if getattr(i, "problem", None) is not None]
        self.count = len(inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BatchCatchFlow()
