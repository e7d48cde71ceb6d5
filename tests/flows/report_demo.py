"""Every shape a run report draws: branches, a foreach inside one, a switch.

``--fail N`` makes foreach split N raise, to see a failed run; with
REPORT_DEMO_FIXED=1 in the environment it does not (fix, then ``resume``).
"""
import os
import time

from daskflow import FlowSpec, Parameter, step


class ReportDemoFlow(FlowSpec):
    width = Parameter("width", default=6, help="how many foreach splits")
    fail = Parameter("fail", default=-1, help="the split that raises (-1: none)")
    nap = Parameter("nap", default=0.3, help="seconds each split sleeps, times 1-3")
    message = Parameter("message", default="", help="the failing split's error message")

    @step
    def start(self):
        """Start two branches."""
        self.next(self.prepare, self.validate)

    @step
    def prepare(self):
        """Make the items to train on."""
        self.items = list(range(self.width))
        self.next(self.train, foreach="items")

    @step
    def train(self):
        """One model per item."""
        time.sleep(self.nap * (1 + self.input % 3))
        if self.input == self.fail and not os.environ.get("REPORT_DEMO_FIXED"):
            raise ValueError(self.message or f"split {self.input} cannot be trained")
        print(f"trained model {self.input}")
        self.score = self.input ** 0.5
        self.next(self.collect)

    @step
    def collect(self, inputs):
        """Keep the best score."""
        self.best = max(i.score for i in inputs)
        self.next(self.join)

    @step
    def validate(self):
        """Check the data meanwhile."""
        time.sleep(self.nap)
        self.valid = True
        self.next(self.join)

    @step
    def join(self, inputs):
        """Decide what to do with the best model."""
        self.best = inputs.collect.best
        self.quality = "good" if self.best > 1 else "poor"
        self.next({"good": self.publish, "poor": self.retrain}, condition="quality")

    @step
    def publish(self):
        self.published = True
        self.next(self.end)

    @step
    def retrain(self):
        self.published = False
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ReportDemoFlow()
