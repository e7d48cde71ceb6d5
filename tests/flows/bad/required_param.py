from daskflow import FlowSpec, Parameter, step


class RequiredParamFlow(FlowSpec):
    dataset = Parameter("dataset", required=True, help="which dataset")
    epochs = Parameter("epochs", default=2)

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    RequiredParamFlow()
