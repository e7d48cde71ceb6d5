"""parallel_map inside a step over Dask collections: a bag (eager and lazy), an array's
rows and a DataFrame's partitions, on the run's cluster.

`--fail-at K` makes the function mapped over the bag raise on item K.
"""
from daskflow import FlowSpec, Parameter, step
from daskflow.collections import parallel_map


class CollectionMapFlow(FlowSpec):
    fail_at = Parameter("fail-at", default=-1)

    @step
    def start(self):
        import dask.array as da
        import dask.bag as db
        import dask.dataframe as dd
        import pandas as pd

        fail_at = self.fail_at

        def triple(x):
            if x == fail_at:
                raise ValueError(f"item {x} is bad")
            return 3 * x

        bag = db.range(1000, npartitions=7)
        self.tripled = parallel_map(triple, bag)
        self.lazy_total = parallel_map(triple, bag, lazy=True).filter(
            lambda x: x % 2 == 0).sum().compute()
        self.row_sums = parallel_map(lambda row: int(row.sum()),
                                     da.arange(60).reshape(20, 3).rechunk((6, 2)))
        frame = dd.from_pandas(pd.DataFrame({"x": range(100)}), npartitions=5)
        self.partition_sums = parallel_map(lambda part: int(part["x"].sum()), frame,
                                           per="partition")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CollectionMapFlow()
