from daskflow import FlowSpec, step


class BigValuesFlow(FlowSpec):
    @step
    def start(self):
        import pandas as pd
        self.blob = b"x" * 200_000_000
        self.frame = pd.DataFrame({"a": range(1_000_000), "b": 1.5})
        self.small = [1, 2, 3]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BigValuesFlow()
