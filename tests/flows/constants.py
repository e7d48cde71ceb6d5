"""Class constants are read-only artifacts of every task; Metaflow's foreach attributes."""
from daskflow import FlowSpec, Parameter, step


class ConstantsFlow(FlowSpec):
    MAX = 10
    LABELS = ["a", "b", "c"]
    _private = "not stored"
    scale = Parameter("scale", default=2)

    @property
    def doubled(self):
        return self.MAX * 2

    @staticmethod
    def helper(x):
        return x + 1

    @classmethod
    def make(cls):
        return "made"

    @step
    def start(self):
        self.refused = []
        for name in ("MAX", "scale"):
            try:
                setattr(self, name, 0)
            except AttributeError as exc:
                self.refused.append((name, str(exc)))
        self.seen = (self.MAX, self.doubled, self.helper(1), self.make())
        self.start_step = self._current_step
        self.start_stack = (self._foreach_stack, self.foreach_stack())
        self.next(self.body, foreach="LABELS")

    @step
    def body(self):
        self.stack = self._foreach_stack
        self.public_stack = self.foreach_stack()
        self.body_step = self._current_step
        self.label = self.input * self.scale
        self.next(self.join)

    @step
    def join(self, inputs):
        self.labels = [i.label for i in inputs]
        self.max_of_inputs = [i.MAX for i in inputs]
        self.merge_artifacts(inputs, exclude=["label", "stack", "public_stack"])
        self.next(self.end)

    @step
    def end(self):
        self.end_step = self._current_step


if __name__ == "__main__":
    ConstantsFlow()
