"""A dataset bigger than a worker's memory: generated, stored as Parquet, joined and aggregated.

    python examples/big_dataframe.py run                   # ~100M rows, ~3.4 GB in memory
    python examples/big_dataframe.py run --rows 200000     # the CI size, seconds

`generate` makes the events table with dask, one partition per task on the
workers (nothing is built in one process), and `self.events = ...` stores it
as partitioned Parquet, written by the workers straight into the datastore.
`aggregate` reads it back lazily, joins it to the users table and
aggregates it; only small results travel to the step, and the per-user
totals (one row per user) stay a dask DataFrame artifact.

`@resources(memory="2GiB", workers=2)` gives both steps one cluster of their
own (adjacent steps of the same size share it): two workers of 2 GiB each,
less than the data, so Dask streams partitions through the workers and spills
to disk when it must.  To run the same steps on SLURM or in the cloud, change
only the decorator: `@resources(memory="16GiB", workers=8, backend="slurm")`.

Read the results afterwards (the Parquet files are in the datastore, under
`.daskflow/BigDataFrameFlow/_data/dd/<id>/`, one file per partition):

    >>> from daskflow import Flow
    >>> run = Flow("BigDataFrameFlow").latest_run
    >>> run.data.summary                           # a pandas DataFrame
    >>> run.data.user_totals.nlargest(5).compute() # a lazy dask DataFrame
"""
import numpy as np
import pandas as pd

from daskflow import FlowSpec, Parameter, current, resources, step

REGIONS = np.array(["north", "south", "east", "west", "central", "islands"])
KINDS = np.array(["view", "click", "cart", "purchase"])


def make_users(users: int, seed: int) -> pd.DataFrame:
    """The users table (one row per user), made on a worker."""
    rng = np.random.default_rng([seed, 0, 1])  # a stream apart from the events
    return pd.DataFrame({
        "user_id": np.arange(users),
        "region": pd.Categorical(REGIONS[rng.integers(0, len(REGIONS), users)], REGIONS),
        "premium": rng.random(users) < 0.1,
    })


def make_events(part: int, rows: int, users: int, seed: int) -> pd.DataFrame:
    """One partition of the events table, made on a worker."""
    rng = np.random.default_rng([seed, part])
    start = part * rows
    return pd.DataFrame({
        "user_id": rng.integers(0, users, rows),
        "kind": pd.Categorical.from_codes(rng.integers(0, len(KINDS), rows), KINDS),
        "amount": rng.lognormal(2.0, 1.0, rows).round(2),
        "day": (rng.integers(0, 365, rows) + 19_723).astype("int32"),  # days since 1970
    }, index=pd.RangeIndex(start, start + rows, name="event_id"))


class BigDataFrameFlow(FlowSpec):
    """Spend per region and kind, and per user, over a table bigger than a worker."""

    rows = Parameter("rows", default=100_000_000, help="events to generate")
    partition_rows = Parameter("partition_rows", default=2_000_000,
                               help="rows per partition (about 70 MB each)")
    users = Parameter("users", default=1_000_000, help="distinct users")
    seed = Parameter("seed", default=7)

    @step
    def start(self):
        """The users table, one partition made on a worker (a dask DataFrame artifact)."""
        import dask.dataframe as dd

        self.user_table = dd.from_map(make_users, [self.users], seed=self.seed,
                                      meta=make_users(0, 0), enforce_metadata=False)
        self.next(self.generate)

    @resources(memory="2GiB", workers=2)
    @step
    def generate(self):
        """The events table, made partition by partition on the workers, stored as Parquet."""
        import dask.dataframe as dd

        parts = -(-self.rows // self.partition_rows)
        sizes = [min(self.partition_rows, self.rows - i * self.partition_rows)
                 for i in range(parts)]
        divisions = [0] + list(np.cumsum(sizes))
        divisions[-1] -= 1  # the last division is the last label, not one past it
        self.events = dd.from_map(
            make_events, range(parts), sizes, users=self.users, seed=self.seed,
            meta=make_events(0, 0, 1, 0), divisions=divisions, enforce_metadata=False)
        print(f"{self.rows:,} events in {parts} partitions")
        self.next(self.aggregate)

    @resources(memory="2GiB", workers=2)
    @step
    def aggregate(self):
        """Join to the users and aggregate; the big table never leaves the workers."""
        events = self.events                    # lazy: nothing is read yet
        joined = events.merge(self.user_table, on="user_id", how="left")  # one-partition side
        by_region = (joined.groupby(["region", "kind"], observed=True)
                     .agg(events=("amount", "count"), spend=("amount", "sum"),
                          premium=("premium", "sum")))
        purchases = events[events["kind"] == "purchase"]
        self.user_totals = (purchases.groupby("user_id")["amount"].sum(split_out=True)
                            .to_frame("spend"))  # one row per user: stays a dask artifact
        # The step's own 2-worker cluster computes; only small results come back here.
        summary, days = current.client.compute(
            [by_region, events.groupby("day")["amount"].sum()], sync=True)
        self.summary = summary.reset_index().sort_values("spend", ascending=False,
                                                         ignore_index=True)
        self.busiest_day = int(days.idxmax())
        self.total_spend = round(float(self.summary["spend"].sum()), 2)
        self.next(self.end)

    @step
    def end(self):
        print(self.summary.head(12).to_string(index=False))
        print(f"total spend {self.total_spend:,.2f}; busiest day {self.busiest_day}")


if __name__ == "__main__":
    BigDataFrameFlow()
