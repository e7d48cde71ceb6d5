"""A run that waits (bounded) until a file appears, so a test can probe its cluster meanwhile."""
import os
import time

from daskflow import FlowSpec, Parameter, step


class TLSProbeFlow(FlowSpec):
    release = Parameter("release", default="release")

    @step
    def start(self):
        deadline = time.monotonic() + 60
        while not os.path.exists(self.release) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.released = os.path.exists(self.release)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    TLSProbeFlow()
