"""One flow, four kinds of compute: each step says where it runs with @resources(backend=...).

    python examples/mixed_backends.py show      # where each step runs; starts nothing

prints, for every step, what its cluster would be ("runs on: aws-fargate: 2 tasks
of 4 vCPU / 16 GiB (Fargate size 4096/16384) ..."). To run it you need what each
step names: a SLURM login node, a kubeconfig for a cluster with the Dask
operator, and AWS credentials, with one config block each (see the README,
"Kubernetes and AWS"); install the extras:

    pip install 'daskflow[slurm,kubernetes,aws,s3]'
    python examples/mixed_backends.py --datastore-root s3://your-bucket/flows run --rows 10000000

The steps pass small results only: data moves between clusters through the
datastore, so it must be one that every cluster reaches, hence S3 here: with a
local folder the run is refused before it starts, naming the Kubernetes and AWS
steps, whose workers cannot see this disk. The workers need only the stock Dask image at the driver's
versions (ghcr.io/dask/dask:<dask version>-py<major.minor>) and s3fs. The run
ships this folder's Python files and daskflow to the SLURM, Kubernetes and AWS
clusters, and checks their workers' versions before their first task. The driver
reads S3 with the standard AWS credential chain. The workers use their own
cluster's roles (service account, task role or instance profile): no credential
is copied into a pod spec or task definition. See the README, "Running steps
remotely". No Kubernetes or AWS cluster has run this flow in CI: the specs and
API calls are tested against the CRD schema and moto's server.
"""
from daskflow import FlowSpec, Parameter, current, resources, step


class MixedBackendsFlow(FlowSpec):
    """Prepare on the laptop, simulate on SLURM, train on a Kubernetes GPU, score on AWS."""

    rows = Parameter("rows", default=100_000, help="rows of synthetic data")

    @step
    def start(self):
        # the run's default cluster: local worker processes
        self.seeds = list(range(4))
        self.next(self.simulate)

    @resources(cpu=4, memory="8GiB", workers=4, backend="slurm")
    @step
    def simulate(self):
        import dask.array as da
        x = da.random.default_rng(42).random((self.rows, 16), chunks=(self.rows // 8, 16))
        self.means = (x.mean(axis=0)).compute().tolist()  # on current.client's cluster
        self.next(self.train)

    @resources(cpu=8, memory="32GiB", gpu=1, backend="kubernetes")
    @step
    def train(self):
        workers = current.client.scheduler_info()["workers"]
        self.trained_on = sorted(w["name"] for w in workers.values())
        self.weights = [m * 2 for m in self.means]
        self.next(self.score)

    @resources(cpu=4, memory="16GiB", workers=2, backend="aws-fargate")
    @step
    def score(self):
        futures = current.client.map(lambda w: w * w, self.weights)
        self.score = sum(current.client.gather(futures))
        self.next(self.end)

    @resources(cpu=4, memory="16GiB", gpu=1, backend="aws-ec2")
    @step
    def end(self):
        print(f"score {self.score:.3f}, trained on {self.trained_on}")


if __name__ == "__main__":
    MixedBackendsFlow()
