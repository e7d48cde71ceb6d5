from daskflow import FlowSpec, step


class GeneratorStepFlow(FlowSpec):
    @step
    def start(self):
        for i in range(3):
            yield i
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    GeneratorStepFlow()
