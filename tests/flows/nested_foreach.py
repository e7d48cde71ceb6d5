"""Foreach within foreach, with a branch inside, and foreach_stack()."""
from daskflow import FlowSpec, Parameter, step


class NestedFlow(FlowSpec):
    width = Parameter("width", default=3)

    @step
    def start(self):
        self.letters = ["x", "y", "z"][: self.width]
        self.next(self.outer, foreach="letters")

    @step
    def outer(self):
        self.letter = self.input
        self.numbers = range(2)
        self.next(self.inner, foreach="numbers")

    @step
    def inner(self):
        self.stack = self.foreach_stack()
        self.label = f"{self.letter}{self.input}"
        self.position = self.index
        self.next(self.inner_join)

    @step
    def inner_join(self, inputs):
        self.labels = [i.label for i in inputs]
        self.stacks = [i.stack for i in inputs]
        self.merge_artifacts(inputs, include=["letter"])
        self.next(self.outer_join)

    @step
    def outer_join(self, inputs):
        self.all_labels = [label for i in inputs for label in i.labels]
        self.letters_seen = [i.letter for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    NestedFlow()
