"""A switch: the path taken depends on a value computed at run time."""
from daskflow import FlowSpec, Parameter, step


class SwitchFlow(FlowSpec):
    size = Parameter("size", default=5)

    @step
    def start(self):
        self.kind = "big" if self.size > 10 else "small"
        self.next({"big": self.big, "small": self.small}, condition="kind")

    @step
    def big(self):
        self.path = "big"
        self.next(self.end)

    @step
    def small(self):
        self.path = "small"
        self.next(self.end)

    @step
    def end(self):
        self.final = f"took {self.path}"


if __name__ == "__main__":
    SwitchFlow()
