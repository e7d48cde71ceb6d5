"""Statistics per group of a CSV, one foreach task per group, joined into a table.

    python examples/group_stats.py run
    python examples/group_stats.py run --rows 1000000 --csv my_sales.csv

Without --csv it generates a sales table (region, product, units, price) first.
Read the result back afterwards:

    >>> from daskflow import Flow
    >>> Flow("GroupStatsFlow").latest_run.data.summary
"""
import numpy as np
import pandas as pd

from daskflow import FlowSpec, Parameter, step


class GroupStatsFlow(FlowSpec):
    """Per-region sales statistics, computed in parallel."""

    rows = Parameter("rows", default=200_000, help="rows to generate when no --csv is given")
    csv = Parameter("csv", default="", help="a CSV with columns region, product, units, price")
    seed = Parameter("seed", default=7)

    @step
    def start(self):
        """Read (or generate) the table and list the groups."""
        categories = {"region": "category", "product": "category"}
        if self.csv:
            self.sales = pd.read_csv(self.csv, dtype=categories)
        else:  # in memory: nothing left behind in a temp folder
            self.sales = self.generate().astype(categories)
        self.sales["revenue"] = self.sales["units"] * self.sales["price"]
        self.regions = sorted(self.sales["region"].cat.categories)
        print(f"{len(self.sales):,} rows, {len(self.regions)} regions from "
              f"{self.csv or 'a generated table'}")
        self.next(self.stats, foreach="regions")

    def generate(self) -> pd.DataFrame:
        rng = np.random.default_rng(self.seed)
        regions = np.array(["north", "south", "east", "west", "central", "islands"])
        products = np.array([f"p{i:02d}" for i in range(20)])
        return pd.DataFrame({
            "region": regions[rng.integers(0, len(regions), self.rows)],
            "product": products[rng.integers(0, len(products), self.rows)],
            "units": rng.poisson(3, self.rows) + 1,
            "price": rng.lognormal(3, 0.5, self.rows).round(2),
        })

    @step
    def stats(self):
        """One region: revenue, units and price quantiles, best product."""
        region = self.input
        part = self.sales[self.sales["region"] == region]
        by_product = part.groupby("product", observed=True)["revenue"].sum()
        self.row = {
            "region": region,
            "orders": len(part),
            "units": int(part["units"].sum()),
            "revenue": round(float(part["revenue"].sum()), 2),
            "median_price": float(part["price"].median()),
            "p90_price": float(part["price"].quantile(0.9)),
            "best_product": str(by_product.idxmax()),
        }
        print(f"{region}: {self.row['orders']:,} orders, revenue {self.row['revenue']:,.2f}")
        self.next(self.join)

    @step
    def join(self, inputs):
        """Collect one row per region into a table."""
        self.summary = (pd.DataFrame([inp.row for inp in inputs])
                        .sort_values("revenue", ascending=False).reset_index(drop=True))
        self.total_revenue = round(float(self.summary["revenue"].sum()), 2)
        self.next(self.end)

    @step
    def end(self):
        print(self.summary.to_string(index=False))
        print(f"total revenue: {self.total_revenue:,.2f}")


if __name__ == "__main__":
    GroupStatsFlow()
