from daskflow import FlowSpec, resources, step


class BadDecoratorFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.train)

    @resources(memory="lots")
    @step
    def train(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BadDecoratorFlow()
