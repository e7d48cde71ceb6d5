"""@catch on the splits of a foreach: the splits listed in CATCH_FAIL (indices, comma
separated) fail, are caught, and the flow goes on; a resume with --caught reruns only
them. The environment decides, not a parameter, so a resume can run them clean."""
import os

from daskflow import FlowSpec, catch, current, step


class CatchForeachFlow(FlowSpec):
    @step
    def start(self):
        self.items = list(range(8))
        self.next(self.work, foreach="items")

    @catch(var="error")
    @step
    def work(self):
        failing = {int(i) for i in os.environ.get("CATCH_FAIL", "").split(",") if i}
        if self.index in failing:
            raise ValueError(f"split {self.index} fails")
        self.square = self.input * self.input
        self.ran_in = current.run_id
        self.next(self.join)

    @step
    def join(self, inputs):
        self.caught = sorted(i.index for i in inputs if i.error is not None)
        self.squares = {i.index: i.square for i in inputs if i.error is None}
        self.ran_in = {i.index: i.ran_in for i in inputs if i.error is None}
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CatchForeachFlow()
