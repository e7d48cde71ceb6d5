"""A linear flow that reads every kind of parameter and reports `current`."""
from daskflow import FlowSpec, IncludeFile, JSONType, Parameter, current, step


class LinearFlow(FlowSpec):
    alpha = Parameter("alpha", default=0.5, help="a float")
    count = Parameter("count", default=3)
    name = Parameter("name", default="world")
    verbose = Parameter("verbose", default=False)
    config = Parameter("config", type=JSONType, default='{"depth": 2}')
    notes = IncludeFile("notes", default=None, help="a text file to include")

    @step
    def start(self):
        print(f"hello {self.name}")
        self.seen = {"flow": current.flow_name, "run": current.run_id,
                     "step": current.step_name, "task": current.task_id,
                     "pathspec": current.pathspec, "retry": current.retry_count,
                     "running": current.is_running_flow, "tags": sorted(current.tags),
                     "user": current.username}
        self.values = [1, 2]
        self.next(self.middle)

    @step
    def middle(self):
        self.values = self.values + [self.count]
        self.scaled = [v * self.alpha for v in self.values]
        print("to stderr too", file=__import__("sys").stderr)
        self.next(self.end)

    @step
    def end(self):
        self.summary = {"alpha": self.alpha, "count": self.count, "name": self.name,
                        "verbose": self.verbose, "config": self.config,
                        "notes": self.notes, "scaled": self.scaled}


if __name__ == "__main__":
    LinearFlow()
