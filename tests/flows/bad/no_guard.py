from daskflow import FlowSpec, step


class NoGuardFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


NoGuardFlow()
