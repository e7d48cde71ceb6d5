from daskflow import FlowSpec, resources, step


class SplitResourcesOutsideForeachFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.work)

    @resources(memory=lambda item: "1GiB")
    @step
    def work(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SplitResourcesOutsideForeachFlow()
