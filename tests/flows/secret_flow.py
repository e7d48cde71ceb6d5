"""A secret reaching a step's tasks (shared cluster) and a step cluster's workers."""
import os

from daskflow import FlowSpec, environment, resources, step


def worker_env(name):
    import os
    return os.environ.get(name)


class SecretFlow(FlowSpec):
    @environment(secrets=["DF_SECRET"])
    @step
    def start(self):
        self.seen = os.environ.get("DF_SECRET") == os.environ.get("DF_EXPECTED")
        print("the secret has", len(os.environ["DF_SECRET"]), "characters")
        self.next(self.big)

    @environment(vars={"DF_MODE": "big"}, secrets={"DF_TOKEN": "env:DF_SECRET"})
    @resources(cpu=1, memory="1GiB", workers=2)
    @step
    def big(self):
        from daskflow import current
        expected = os.environ.get("DF_EXPECTED")
        self.big_seen = os.environ.get("DF_TOKEN") == expected
        current.client.wait_for_workers(2, timeout=60)  # the cluster starts with its first
        self.workers_have_it = set(current.client.run(worker_env, "DF_TOKEN").values()) \
            == {expected}
        self.next(self.end)

    @step
    def end(self):
        self.end_clean = os.environ.get("DF_TOKEN") is None


if __name__ == "__main__":
    SecretFlow()
