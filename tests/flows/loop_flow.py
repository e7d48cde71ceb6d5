"""Metaflow's recursive switch: a step that chooses itself again runs once more (a loop),
alone and inside a foreach.  LOOP_FAIL=<split>:<pass> makes that pass of that split fail,
so that a resume has a loop to pick up in the middle."""
import os

from daskflow import FlowSpec, current, step


class LoopFlow(FlowSpec):
    @step
    def start(self):
        self.count = 0
        self.next(self.loop)

    @step
    def loop(self):
        self.count += 1
        self.state = "again" if self.count < 3 else "done"
        self.next({"again": self.loop, "done": self.fan}, condition="state")

    @step
    def fan(self):
        self.items = [1, 2, 3]
        self.passes = 0
        self.trail = []
        self.next(self.grow, foreach="items")

    @step
    def grow(self):
        self.passes += 1
        self.trail = self.trail + [f"{current.run_id}/{current.task_id}"]
        if os.environ.get("LOOP_FAIL") == f"{self.index}:{self.passes}":
            raise RuntimeError(f"pass {self.passes} of split {self.index} fails")
        self.state = "again" if self.passes < self.input else "done"
        self.next({"again": self.grow, "done": self.after}, condition="state")

    @step
    def after(self):
        self.stack = [(f.index, f.num_splits) for f in self._foreach_stack]
        self.next(self.join)

    @step
    def join(self, inputs):
        self.passes = [i.passes for i in inputs]
        self.trails = [i.trail for i in inputs]
        self.stacks = [i.stack for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    LoopFlow()
