"""A foreach over what is no list: an attribute never set (a typo), or an int."""
from daskflow import FlowSpec, Parameter, step


class ForeachMistakesFlow(FlowSpec):
    mistake = Parameter("mistake", default="typo")

    @step
    def start(self):
        if self.mistake == "typo":
            self.itmes = [1, 2]
        else:
            self.items = 3
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ForeachMistakesFlow()
