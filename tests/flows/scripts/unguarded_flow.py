"""A flow and its run at the top level of one script, with no __main__ guard, as an
analytics script is written; it also works fed on stdin (`python - < this_file`)."""
from daskflow import FlowSpec, Parameter, parallel_map, step

print("TOP LEVEL RAN")


class ScriptFlow(FlowSpec):
    alpha = Parameter("alpha", default=1.0)

    @step
    def start(self):
        self.values = [1, 2, 3]
        self.next(self.end)

    @step
    def end(self):
        self.scaled = [v * self.alpha for v in self.values]


run = ScriptFlow.run(alpha=2.0)
print("FLOW", run.data.scaled)
print("MAP", parallel_map(lambda x: x * 10, range(5)))
