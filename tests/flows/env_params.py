"""Parameters from METAFLOW_RUN_<NAME>, lists from separator=, current.parameter_names."""
from daskflow import FlowSpec, Parameter, current, step


class EnvParamsFlow(FlowSpec):
    alpha = Parameter("alpha", default=0.5)
    rate = Parameter("learning-rate", default=0.1)
    count = Parameter("count", default=1)
    items = Parameter("items", default="p,q", separator=",")
    dataset = Parameter("dataset", required=True)

    @step
    def start(self):
        self.names = current.parameter_names
        self.values = {"alpha": self.alpha, "rate": self.rate, "count": self.count,
                       "items": self.items, "dataset": self.dataset}
        self.next(self.end)

    @step
    def end(self):
        self.names_at_end = current.parameter_names


if __name__ == "__main__":
    EnvParamsFlow()
