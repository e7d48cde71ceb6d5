from daskflow import FlowSpec, card, step


class CardBadTypeFlow(FlowSpec):
    @card(type="fancy")
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CardBadTypeFlow()
