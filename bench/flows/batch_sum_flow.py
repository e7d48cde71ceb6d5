"""Sum of squares of N ints in B batches with parallel_map inside a daskflow step.

Run: python batch_sum_flow.py run --n 10000000 --batches 10 --max-workers 2
The step builds the batches (untimed), then times parallel_map on the run's
own cluster twice, and prints one `RESULT {json}` line as batch_sum.py does.
"""
import json
import time

from daskflow import FlowSpec, Parameter, step
from daskflow.collections import parallel_map


def sum_sq(batch):
    return sum(x * x for x in batch)


class BatchSumFlow(FlowSpec):
    n = Parameter("n", type=int, default=10_000_000)
    batches = Parameter("batches", type=int, default=10)

    @step
    def start(self):
        n, size = self.n, -(-self.n // self.batches)
        items = list(range(n))
        batches = [items[i:i + size] for i in range(0, n, size)]
        t1 = time.perf_counter()
        total = sum(parallel_map(sum_sq, batches))
        t2 = time.perf_counter()
        total2 = sum(parallel_map(sum_sq, batches))
        t3 = time.perf_counter()
        expected = (n - 1) * n * (2 * n - 1) // 6
        print("RESULT " + json.dumps({
            "peer": "daskflow-step", "n": n, "batches": self.batches, "setup_s": 0.0,
            "call_s": t2 - t1, "call2_s": t3 - t2, "close_s": 0.0,
            "ok": total == expected and total2 == expected}))
        self.total = total
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BatchSumFlow()
