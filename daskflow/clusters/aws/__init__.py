"""The AWS backends: dask-cloudprovider's ``FargateCluster``, ``ECSCluster`` and ``EC2Cluster``.

``aws`` launches what ``daskflow.cluster.aws.launch-type`` says; ``aws-fargate``,
``aws-ecs`` and ``aws-ec2`` pin one, so that one flow can put a step on Fargate
and another on a GPU instance with ``@resources(backend=...)``.

Everything about AWS is in this folder, split by concern:

- :mod:`.backend`: the request as dask-cloudprovider's keyword arguments, the check, the start;
- :mod:`.sizing`: Fargate task sizes, sizes in words;
- :mod:`.instances`: the EC2 instance types daskflow chooses from;
- :mod:`.api`: credentials, region, bounded clients, the preflight check;
- :mod:`.network`: the security group, and what a cluster exposes;
- :mod:`.secrets`: secret variables and the TLS key in Secrets Manager;
- :mod:`.resources`: teardown verified against the AWS API, leftovers deleted;
- :mod:`.cluster`: dask-cloudprovider's classes with a bounded start;
- :mod:`.labels`: a cluster's run, step, user, ... as tags;
- :mod:`.inventory`: daskflow's live ECS tasks and EC2 instances, found by their tags;
- :mod:`.pricing`: a worker-hour's price by Fargate task size or EC2 instance type.

Importing this package imports dask-cloudprovider: the registry does it only
when an aws backend is asked for.
"""

from .api import AWSCredentialsError, AWSRegionError, AWSUnreachableError
from .backend import AWSBackend, AWSEC2Backend, AWSECSBackend, AWSFargateBackend
from .labels import CLUSTER_TAG
from .sizing import FARGATE_SIZES, fargate_size

__all__ = ["CLUSTER_TAG", "FARGATE_SIZES", "AWSBackend", "AWSCredentialsError",
           "AWSEC2Backend", "AWSECSBackend", "AWSFargateBackend", "AWSRegionError",
           "AWSUnreachableError", "fargate_size"]
