from daskflow import FlowSpec, step


class HugeErrorFlow(FlowSpec):
    @step
    def start(self):
        raise ValueError("head " + "x" * 20_000_000 + " tail")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    HugeErrorFlow()
