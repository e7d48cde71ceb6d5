"""Steps on clusters of their own: a 2-worker cluster driven with current.client,
a foreach sharing one cluster, and two adjacent steps of the same size."""
import os

from daskflow import FlowSpec, current, resources, step


def cluster_facts(workers=None):
    client = current.client
    if workers:  # a step cluster starts its tasks with its first worker
        client.wait_for_workers(workers, timeout=60)
    workers = client.scheduler_info()["workers"].values()
    return {"scheduler": client.scheduler.address,
            "memory_limits": sorted(w["memory_limit"] for w in workers),
            "nthreads": sorted(w["nthreads"] for w in workers),
            "pids": sorted(client.run(os.getpid).values())}


class ResourcesFlow(FlowSpec):
    @step
    def start(self):
        self.default = cluster_facts()
        self.next(self.big)

    @resources(cpu=1, memory="1GiB", workers=2)
    @step
    def big(self):
        self.facts = cluster_facts(2)
        futures = current.client.map(lambda x: x * x, range(100))
        self.squares = sum(current.client.gather(futures))
        self.next(self.big_again)

    @resources(cpu=1, memory="1GiB", workers=2)
    @step
    def big_again(self):
        self.facts = cluster_facts(2)
        self.items = ["a", "b", "c"]
        self.next(self.work, foreach="items")

    @resources(memory=768)
    @step
    def work(self):
        self.facts = cluster_facts(3)  # a worker per split
        self.next(self.join)

    @step
    def join(self, inputs):
        self.schedulers = sorted({i.facts["scheduler"] for i in inputs})
        self.split_facts = inputs[0].facts
        self.next(self.end)

    @step
    def end(self):
        self.end_facts = cluster_facts()


if __name__ == "__main__":
    ResourcesFlow()
