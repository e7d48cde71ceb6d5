"""A switch whose choice goes straight to a join: refused, as Metaflow refuses it."""
from daskflow import FlowSpec, step


class SwitchIntoJoinFlow(FlowSpec):

    @step
    def start(self):
        self.items = [1, 2]
        self.next(self.pick, foreach="items")

    @step
    def pick(self):
        self.mode = "skip" if self.input == 1 else "work"
        self.next({"skip": self.join, "work": self.work}, condition="mode")

    @step
    def work(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SwitchIntoJoinFlow()
