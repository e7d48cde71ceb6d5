"""A step that maps over 100k items on the run's cluster and keeps the results.

`--fail-at K` makes the mapped function raise on item K (the run must fail).
"""
from daskflow import FlowSpec, Parameter, step
from daskflow.collections import parallel_imap_unordered, parallel_map


class ParallelMapFlow(FlowSpec):
    n = Parameter("n", default=100_000)
    fail_at = Parameter("fail-at", default=-1)

    @step
    def start(self):
        offset = 3  # a closure: travels with cloudpickle
        fail_at = self.fail_at

        def shifted_square(x):
            if x == fail_at:
                raise ValueError(f"item {x} is bad")
            return x * x + offset

        self.squares = parallel_map(shifted_square, range(self.n))
        self.doubled = parallel_map(lambda s: 2 * s, self.squares[:1000], batch_size=64)
        self.unordered_total = sum(parallel_imap_unordered(lambda x: x, iter(range(5000))))
        self.next(self.end)

    @step
    def end(self):
        print("total=%d" % sum(self.squares))


if __name__ == "__main__":
    ParallelMapFlow()
