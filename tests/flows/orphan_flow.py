"""A step on a cluster of its own that writes its workers' pids and waits: the test
kills the driver with SIGKILL meanwhile (``daskflow clusters list`` / ``gc``)."""
import json
import os
import time

from daskflow import FlowSpec, Parameter, current, resources, step


class OrphanFlow(FlowSpec):
    wait = Parameter("wait", default=300.0)

    @step
    def start(self):
        self.next(self.hold)

    @resources(cpu=1, memory="400MiB", workers=2,
               backend=os.environ.get("ORPHAN_BACKEND", "local"))
    @step
    def hold(self):
        print("holding its workers", flush=True)  # spooled as it comes: a kill keeps it
        current.client.wait_for_workers(2, timeout=60)  # the cluster starts with its first
        pids = sorted(current.client.run(os.getpid).values())
        jobs = sorted(str(j) for j in current.client.run(
            lambda: os.environ.get("SLURM_JOB_ID")).values())
        with open("holding.json.tmp", "w") as f:
            json.dump({"pids": pids, "jobs": jobs}, f)
        os.replace("holding.json.tmp", "holding.json")
        time.sleep(self.wait)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    OrphanFlow()
