"""pandas, dask and numpy artifacts through a flow: stored as Parquet/.npy, read back lazily."""

import numpy as np
import pandas as pd

from daskflow import FlowSpec, Parameter, step


class DataFrameFlow(FlowSpec):
    rows = Parameter("rows", default=2000, type=int, help="rows of the dask DataFrame")

    @step
    def start(self):
        import dask.dataframe as dd

        self.pdf = pd.DataFrame({
            "city": pd.Categorical(["Oslo", "Lima", "Oslo"], categories=["Lima", "Oslo", "Rome"]),
            "when": pd.date_range("2024-03-31 01:00", periods=3, freq="h", tz="Europe/Oslo"),
            "visits": pd.array([3, None, 5], dtype="Int64"),
            "name": pd.array(["a", None, "c"], dtype="str"),
            "note": ["x", None, "z"],
        }, index=pd.MultiIndex.from_tuples([("n", 1), ("n", 2), ("s", 1)], names=["hemi", "k"]))
        self.pdf["note"] = self.pdf["note"].astype(object)  # Python strings, not pandas' str
        ids = np.arange(self.rows)
        events = pd.DataFrame({
            "group": pd.Categorical(np.array(["a", "b", "c", "d"])[ids % 4]),
            "amount": ids * 0.25,
            "user": pd.array(ids % 7, dtype="Int64"),
        }, index=pd.Index(ids, name="event_id"))
        self.events = dd.from_pandas(events, npartitions=4)
        self.matrix = np.arange(12.0).reshape(3, 4)
        self.next(self.transform)

    @step
    def transform(self):
        from daskflow.collections.dataframes import cluster_client

        events = self.events  # a lazy dask DataFrame over the stored Parquet files
        self.events_type = f"{type(events).__module__}.{type(events).__name__}"
        with cluster_client() as client:
            self.by_group = client.compute(events.groupby("group", observed=True)["amount"]
                                           .sum()).result()
        self.enriched = events.assign(double=events["amount"] * 2)[events["amount"] > 10]
        self.df = self.pdf.assign(visits2=self.pdf["visits"] * 2)
        self.next(self.end)

    @step
    def end(self):
        print(f"groups={len(self.by_group)} rows={len(self.df)}")


if __name__ == "__main__":
    DataFrameFlow()
