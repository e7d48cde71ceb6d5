from daskflow import FlowSpec, step


class NoNextFlow(FlowSpec):
    @step
    def start(self):
        self.x = 1

    @step
    def end(self):
        pass


if __name__ == "__main__":
    NoNextFlow()
