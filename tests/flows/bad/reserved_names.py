from daskflow import FlowSpec, Parameter, step


class ReservedNamesFlow(FlowSpec):
    name = Parameter("name", default="index")

    @step
    def start(self):
        if self.name == "index":
            self.index = 3
        else:
            self.input = 3
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ReservedNamesFlow()
