"""A secret on a step's own SLURM jobs: in the workers' environment, not in their job scripts."""
import os
import subprocess

from daskflow import FlowSpec, current, environment, resources, step


def worker_env(name):
    import os
    return os.environ.get(name)


class SlurmSecretFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.on_slurm)

    @environment(vars={"DF_PLAIN": "plain"}, secrets={"DF_TOKEN": "env:DF_SECRET"})
    @resources(cpu=1, memory="400MiB", workers=2, backend="slurm")
    @step
    def on_slurm(self):
        client = current.client
        client.wait_for_workers(2, timeout=60)  # the cluster starts with its first
        expected = os.environ.get("DF_EXPECTED")
        self.task_has_it = os.environ.get("DF_TOKEN") == expected
        self.workers_have_it = set(client.run(worker_env, "DF_TOKEN").values()) == {expected}
        job_ids = sorted(client.run(worker_env, "SLURM_JOB_ID").values())
        # what anyone who may read the jobs (or run ps on the node) sees
        self.scripts = [subprocess.run(["scontrol", "write", "batch_script", job, "-"],
                                       capture_output=True, text=True).stdout
                        for job in job_ids]
        self.ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SlurmSecretFlow()
