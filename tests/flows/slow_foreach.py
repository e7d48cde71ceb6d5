"""A foreach whose splits write their pid and take a while (unless the file `no-nap`
exists in the working directory); split `fail_index` fails while the file
`fail-marker` exists."""
import os
import time

from daskflow import FlowSpec, Parameter, current, step


class SlowForeachFlow(FlowSpec):
    n = Parameter("n", default=6)
    nap = Parameter("nap", default=0.5)
    fail_index = Parameter("fail_index", default=-1)

    @step
    def start(self):
        self.items = list(range(self.n))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        with open(f"pid-{self.index}-{current.retry_count}", "w") as f:
            f.write(str(os.getpid()))
        if not os.path.exists("no-nap"):
            time.sleep(self.nap)
        if self.index == self.fail_index and os.path.exists("fail-marker"):
            raise RuntimeError(f"split {self.index} fails while fail-marker exists")
        self.out = self.input * 10
        self.ran_in = current.run_id
        self.next(self.join)

    @step
    def join(self, inputs):
        self.outs = [i.out for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        self.total = sum(self.outs)


if __name__ == "__main__":
    SlowForeachFlow()
