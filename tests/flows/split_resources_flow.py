"""Resources per foreach split: each split's memory comes from its input, so one foreach
runs on two clusters of two sizes. ``--mode huge`` makes one split ask for more than any
machine has; ``--mode raise`` gives one split an input the function cannot read;
``SPLIT_FAILS=i`` in the environment makes split i fail (then ``resume`` without it)."""
import os

from daskflow import FlowSpec, Parameter, resources, step


def memory_of(item):
    return item["memory"]  # a KeyError for an item without it


class SplitResourcesFlow(FlowSpec):
    mode = Parameter("mode", default="")

    @step
    def start(self):
        self.items = [{"i": i, "memory": "2GiB" if i % 2 else "1GiB"} for i in range(6)]
        if self.mode == "huge":
            self.items[3]["memory"] = "10TiB"
        if self.mode == "raise":
            del self.items[4]["memory"]
        self.next(self.work, foreach="items")

    @resources(memory=memory_of)
    @step
    def work(self):
        from distributed import get_worker

        if self.input["i"] == int(os.environ.get("SPLIT_FAILS", -1)):
            raise RuntimeError("this split fails while SPLIT_FAILS names it")
        worker = get_worker()
        self.limit = worker.memory_manager.memory_limit
        self.scheduler = worker.scheduler.address
        self.next(self.join)

    @step
    def join(self, inputs):
        self.limits = [i.limit for i in inputs]
        self.schedulers = [i.scheduler for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SplitResourcesFlow()
