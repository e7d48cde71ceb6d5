from daskflow import FlowSpec, step


class LoopBackFlow(FlowSpec):
    @step
    def start(self):
        self.count = 0
        self.next(self.a)

    @step
    def a(self):
        self.count += 1
        self.next(self.b)

    @step
    def b(self):
        self.state = "again" if self.count < 3 else "done"
        self.next({"again": self.a, "done": self.end}, condition="state")

    @step
    def end(self):
        pass


if __name__ == "__main__":
    LoopBackFlow()
