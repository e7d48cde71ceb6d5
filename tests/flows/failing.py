"""A flow whose middle step raises, to see how failures are reported and stored."""
from daskflow import FlowSpec, step


class FailingFlow(FlowSpec):
    @step
    def start(self):
        self.before = "kept"
        self.next(self.explode)

    @step
    def explode(self):
        print("about to fail")
        self.partial = "never stored"
        raise ValueError("the answer is not 42")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    FailingFlow()
