import threading

from daskflow import FlowSpec, step


class UnpicklableArtifactFlow(FlowSpec):
    @step
    def start(self):
        self.lock = threading.Lock()
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    UnpicklableArtifactFlow()
