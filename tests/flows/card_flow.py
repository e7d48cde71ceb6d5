"""A flow with cards, written as a Metaflow user writes it (only the imports changed)."""

from daskflow import FlowSpec, card, current, step
from daskflow.cards import get_cards
from daskflow.cards import Artifact, Image, Markdown, ProgressBar, Table, VegaChart

# A 1x1 red PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201e2e1c2e70000000049454e44ae426082")


class CardFlow(FlowSpec):

    @card
    @step
    def start(self):
        self.alpha = 0.5
        self.words = ["a", "b"]
        current.card.append(Markdown("Appended to the *default* card."))
        self.next(self.train)

    @card(type="blank", id="summary")
    @card(type="blank", id="plots", refresh_interval=0)
    @step
    def train(self):
        import pandas as pd

        frame = pd.DataFrame({"epoch": [1, 2, 3], "loss": [0.9, 0.5, 0.25]})
        current.card["summary"].append(Markdown("# Training <script>alert('x')</script>"))
        current.card["summary"].append(Table.from_dataframe(frame))
        current.card["summary"].append(Table([[1, 2]], headers=["a", "b"]))
        current.card["summary"].append(Artifact({"lr": 0.1}, name="config"))
        current.card["plots"].append(Image(PNG, label="a red pixel"))
        current.card["plots"].append(VegaChart({"title": "loss", "mark": "line",
                                                "data": {"values": [{"x": 1, "y": 2}]}}))
        pb = ProgressBar(max=10, label="epochs")
        current.card["plots"].append(pb)
        for i in range(10):
            pb.update(i + 1)
            current.card["plots"].refresh()
        # refresh() wrote the card while the step ran: a live view shows progress.
        live = get_cards(current.pathspec, id="plots")[0].html
        self.live_progress = "10/10" in live and "in progress" in live
        self.loss = 0.25
        self.next(self.end)

    @card(type="html")
    @step
    def end(self):
        self.html = "<!DOCTYPE html><html><body><h2>My own page</h2></body></html>"


if __name__ == "__main__":
    CardFlow()
