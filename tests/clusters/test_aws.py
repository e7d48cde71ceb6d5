"""The AWS backends: sizing (pure), then against moto's server on 127.0.0.1.

What is real: dask-cloudprovider's FargateCluster/ECSCluster/EC2Cluster and
daskflow's own calls, over HTTP with aiobotocore/botocore to ``moto_server`` (a
subprocess), a real Dask scheduler (``local_scheduler``, given as
``scheduler-address``: moto runs no scheduler task) and real Dask workers.
What is not: AWS (moto answers its API and records what was asked), and the
containers — :class:`ECSContainers` (conftest) runs each RUNNING task's container
command, exactly as moto recorded it, as a local process, and kills it when moto
shows the task stopped. EC2 instances never boot under moto, so the EC2 backend
is checked up to its bounded wait for the scheduler and the verified teardown.
"""

from __future__ import annotations

import base64
import re
import time
from typing import Any

import dask.config
import pytest

pytest.importorskip("dask_cloudprovider.aws")
boto3 = pytest.importorskip("boto3")

from daskflow.clusters import (
    ClusterStartTimeoutError,
    ResourceRequest,
    ResourceRequestError,
    get_backend,
)
from daskflow.clusters.aws import (
    CLUSTER_TAG,
    FARGATE_SIZES,
    AWSCredentialsError,
    AWSRegionError,
    fargate_size,
)
from daskflow.clusters.aws.instances import INSTANCE_TYPES, smallest_fitting
from daskflow.clusters.base import SCHEDULER_ENV
from daskflow.exceptions import ClusterError

from .contract import ClusterContract, MiB, alive_pids

GiB = 2**30



# -- sizing, pure ---------------------------------------------------------------------------------
FARGATE_TABLE = [
    # cpu, memory MiB -> Fargate cpu units, MiB
    (0.25, 512, (256, 512)),
    (0.25, 3000, (512, 3072)),      # 0.25 vCPU allows at most 2 GiB: more CPU
    (1, 4096, (1024, 4096)),
    (1, 1500, (1024, 2048)),        # 1 vCPU needs at least 2 GiB
    (1.5, 4096, (2048, 4096)),
    (2, 17000, (4096, 17408)),      # 2 vCPU allows at most 16 GiB
    (4, 16384, (4096, 16384)),
    (6, 16384, (8192, 16384)),
    (8, 50000, (8192, 53248)),      # 4 GiB steps above 4 vCPU
    (16, 100000, (16384, 106496)),  # 8 GiB steps at 16 vCPU
    (1, 122880, (16384, 122880)),
]


@pytest.mark.fast
@pytest.mark.parametrize("cpu, memory, expected", FARGATE_TABLE)
def test_fargate_sizes_round_up_to_a_valid_combination(cpu, memory, expected) -> None:
    units, mib = fargate_size(cpu, memory)
    assert (units, mib) == expected
    assert mib in FARGATE_SIZES[units]


@pytest.mark.fast
@pytest.mark.parametrize("cpu, memory", [(17, 4096), (4, 130000), (32, 256000)])
def test_fargate_refuses_what_it_cannot_give_with_its_limits(cpu, memory) -> None:
    with pytest.raises(ResourceRequestError, match=r"largest task is 16 vCPU with 120 GiB.*"
                                                   r"backend='aws-ec2'"):
        fargate_size(cpu, memory)


EC2_TABLE = [
    # cpu, memory, gpu -> instance type (1 GiB is kept for the OS: reserved-memory)
    (1, 2 * GiB, 0, "c6i.large"),
    (2, 4 * GiB, 0, "m6i.large"),
    (4, 7 * GiB, 0, "c6i.xlarge"),
    (4, 16 * GiB, 0, "r6i.xlarge"),
    (8, 60 * GiB, 0, "r6i.2xlarge"),
    (36, 64 * GiB, 0, "c5.9xlarge"),     # fewer vCPUs than any c6i that fits
    (0.5, 100 * GiB, 0, "r6i.4xlarge"),
    (1, 4 * GiB, 1, "g4dn.xlarge"),
    (8, 60 * GiB, 1, "g4dn.4xlarge"),
    (8, 64 * GiB, 1, "g4dn.8xlarge"),     # a bigger T4 box, not an H100 with fewer vCPUs
    (4, 16 * GiB, 4, "g4dn.12xlarge"),
    (4, 16 * GiB, 8, "g6.48xlarge"),
]


@pytest.mark.fast
@pytest.mark.parametrize("cpu, memory, gpu, expected", EC2_TABLE)
def test_ec2_picks_the_smallest_instance_that_fits(cpu, memory, gpu, expected) -> None:
    backend = get_backend("aws-ec2")
    request = ResourceRequest(cpu=cpu, memory=memory, gpu=gpu)
    chosen = backend.instance_type(request)
    assert chosen.name == expected
    assert chosen.vcpus >= cpu and chosen.memory_mib * MiB >= memory + GiB
    assert chosen.gpus >= gpu and (chosen.gpus > 0) == (gpu > 0)
    kwargs = backend.cluster_kwargs(request, name="daskflow-x")
    assert kwargs["worker_instance_type"] == expected
    assert kwargs["worker_options"] == {"nthreads": request.threads, "memory_limit": memory}
    assert kwargs["worker_class"] == ("dask_cuda.CUDAWorker" if gpu else "distributed.Nanny")


@pytest.mark.fast
def test_ec2_families_and_refusal() -> None:
    assert smallest_fitting(4, 8192, 1, ["g5"]).name == "g5.xlarge"
    with dask.config.set({"daskflow.cluster.aws.instance-families": ["g5"]}):
        assert get_backend("aws-ec2").instance_type(ResourceRequest(gpu=1)).name == "g5.xlarge"
    with pytest.raises(ResourceRequestError, match=r"largest is r7i.48xlarge \(192 vCPU, "
                                                   r"1536 GiB\).*Ask for less"):
        get_backend("aws-ec2").check(ResourceRequest(memory=4 * 2**40))
    assert len(INSTANCE_TYPES) > 90


@pytest.mark.fast
def test_fargate_kwargs() -> None:
    kwargs = get_backend("aws-fargate", tags={"team": "ml"}).cluster_kwargs(
        ResourceRequest(cpu=1.5, memory=3000 * MiB, workers=3), name="daskflow-f")
    assert (kwargs["worker_cpu"], kwargs["worker_mem"]) == (2048, 4096)
    assert kwargs["worker_nthreads"] == 2 and kwargs["n_workers"] == 3
    assert kwargs["worker_extra_args"] == ["--memory-limit", str(3000 * MiB)]
    # the settings' tags, the cluster's name, and the labels (daskflow-user, ...: test_labels)
    assert {k: kwargs["tags"][k] for k in ("team", CLUSTER_TAG)} == \
        {"team": "ml", CLUSTER_TAG: "daskflow-f"}
    assert kwargs["skip_cleanup"] and "fargate_workers" not in kwargs  # FargateCluster's own
    assert kwargs["scheduler_timeout"] == "20 minutes"
    assert kwargs["image"] == f"ghcr.io/dask/dask:{dask.__version__}"


@pytest.mark.fast
def test_the_requests_environment_goes_to_ecs_tasks_and_ec2_instances() -> None:
    request = ResourceRequest(env={"MODE": "fast", "LEVEL": 2})
    with dask.config.set({"daskflow.cluster.aws.environment": {"EXTRA": "1", "MODE": "slow"}}):
        fargate = get_backend("aws-fargate").cluster_kwargs(request, name="daskflow-e")
        ec2 = get_backend("aws-ec2").cluster_kwargs(request, name="daskflow-e")
        plain = get_backend("aws-fargate").cluster_kwargs(ResourceRequest(), name="daskflow-p")
    # and every scheduler lets the runtime decide what runs again when a worker dies
    assert fargate["environment"] == {"EXTRA": "1", "MODE": "fast", "LEVEL": "2", **SCHEDULER_ENV}
    assert ec2["env_vars"] == {"EXTRA": "1", "MODE": "fast", "LEVEL": "2", **SCHEDULER_ENV}
    assert plain["environment"] == {"EXTRA": "1", "MODE": "slow", **SCHEDULER_ENV}


@pytest.mark.fast
def test_fargate_refuses_gpus_and_big_disks_before_contacting_aws() -> None:
    with pytest.raises(ResourceRequestError, match=r"Fargate has no GPUs.*aws-ec2"):
        get_backend("aws-fargate").check(ResourceRequest(gpu=1))
    with pytest.raises(ResourceRequestError, match=r"20 GiB of disk"):
        get_backend("aws-fargate").check(ResourceRequest(disk=50 * GiB))


@pytest.mark.fast
@pytest.mark.parametrize("backend, request_, text", [
    ("aws-fargate", ResourceRequest(cpu=4, memory=16 * GiB, workers=2),
     "aws-fargate: 2 tasks of 4 vCPU / 16 GiB (Fargate size 4096/16384)"),
    ("aws-ec2", ResourceRequest(cpu=4, memory=16 * GiB, gpu=1, workers=3),
     "aws-ec2: 3 g4dn.2xlarge instances (8 vCPU, 32 GiB, 1 x T4)"),
    ("aws-fargate", ResourceRequest(gpu=1), "aws-fargate: cannot serve"),
])
def test_describe_says_what_would_be_asked(backend, request_, text) -> None:
    assert get_backend(backend).describe(request_).startswith(text)


@pytest.mark.fast
def test_launch_type_comes_from_config() -> None:
    with dask.config.set({"daskflow.cluster.aws.launch-type": "ec2"}):
        assert get_backend("aws").launch_type == "ec2"
    assert get_backend("aws").launch_type == "fargate"


# -- against moto's server -----------------------------------------------------------------------
def task_definitions(family_prefix: str) -> list[dict[str, Any]]:
    ecs = boto3.client("ecs")
    arns = ecs.list_task_definitions(familyPrefix=family_prefix)["taskDefinitionArns"]
    return [ecs.describe_task_definition(taskDefinition=a)["taskDefinition"] for a in arns]


def tasks_of(cluster: str) -> list[dict[str, Any]]:
    ecs = boto3.client("ecs")
    arns = ecs.list_tasks(cluster=cluster)["taskArns"] + \
        ecs.list_tasks(cluster=cluster, desiredStatus="STOPPED")["taskArns"]
    if not arns:
        return []
    return ecs.describe_tasks(cluster=cluster, tasks=arns, include=["TAGS"])["tasks"]


def moto_leftovers(name: str) -> list[str]:
    """Everything of cluster ``name`` that moto still holds, from moto's own listings."""
    ecs, iam, ec2 = boto3.client("ecs"), boto3.client("iam"), boto3.client("ec2")
    left = [f"task {t['taskArn']} {t['lastStatus']}" for c in ecs.list_clusters()["clusterArns"]
            for t in tasks_of(c) if t["lastStatus"] != "STOPPED"
            and t["group"].startswith(f"family:dask-{name}-")]
    mine = [c for c in ecs.list_clusters()["clusterArns"] if name in c]
    left += [f"cluster {c['clusterArn']}" for c in
             (ecs.describe_clusters(clusters=mine)["clusters"] if mine else [])
             if c["status"] == "ACTIVE"]  # a deleted cluster stays listed, INACTIVE
    left += [f"task definition {a}" for a in
             ecs.list_task_definitions(familyPrefix=f"dask-{name}")["taskDefinitionArns"]]
    left += [f"role {r['RoleName']}" for r in iam.list_roles()["Roles"] if name in r["RoleName"]]
    left += [f"security group {g['GroupName']}" for g in
             ec2.describe_security_groups()["SecurityGroups"] if name in g["GroupName"]]
    reservations = ec2.describe_instances(Filters=[
        {"Name": f"tag:{CLUSTER_TAG}", "Values": [name]}])["Reservations"]
    left += [f"instance {i['InstanceId']} {i['State']['Name']}" for r in reservations
             for i in r["Instances"] if i["State"]["Name"] != "terminated"]
    return left


@pytest.fixture
def fargate(aws, local_scheduler, ecs_containers, monkeypatch):
    """The aws-fargate backend against moto, its workers joining a local scheduler."""
    names: list[str] = []
    backend = get_backend("aws-fargate", scheduler_address=local_scheduler,
                          use_private_ip=True)
    original = backend.new_cluster_name
    monkeypatch.setattr(backend, "new_cluster_name", lambda: names.append(original()) or names[-1])
    backend.names = names  # type: ignore[attr-defined]
    return backend


MOTO_TABLE = [  # the rest of the size table is checked purely above
    (ResourceRequest(cpu=0.5, memory=3000 * MiB, workers=2), 512, 3072),
    (ResourceRequest(cpu=2, memory=20 * GiB), 4096, 20480),
]


@pytest.mark.aws
@pytest.mark.parametrize("request_, cpu, memory", MOTO_TABLE,
                         ids=[r[0].describe() for r in MOTO_TABLE])
def test_fargate_task_definition_moto_recorded(fargate, request_, cpu, memory) -> None:
    from distributed import Client
    with fargate.open(request_) as cluster, Client(cluster) as client:
        name = fargate.names[-1]
        [worker_def] = task_definitions(f"dask-{name}-worker")
        assert (worker_def["cpu"], worker_def["memory"]) == (str(cpu), str(memory))
        assert worker_def["requiresCompatibilities"] == ["FARGATE"]
        tasks = [t for t in tasks_of(f"dask-{name}") if t["lastStatus"] == "RUNNING"]
        assert len(tasks) == request_.workers and {t["launchType"] for t in tasks} == {"FARGATE"}
        command = tasks[0]["overrides"]["containerOverrides"][0]["command"]
        assert command[:2] == ["dask", "worker"]
        assert command[-2:] == ["--memory-limit", str(request_.memory)]
        assert {"key": CLUSTER_TAG, "value": name} in tasks[0]["tags"]
        info = client.scheduler_info(n_workers=-1)["workers"].values()
        assert sorted(w["memory_limit"] for w in info) == [request_.memory] * request_.workers
    assert moto_leftovers(name) == []  # tasks stopped; cluster, roles, task definitions deleted


@pytest.mark.aws
def test_a_fargate_worker_stopped_as_spot_capacity_is_reported_preempted(fargate) -> None:
    # the worker's ECS task is stopped through the real API, with the reason Fargate Spot
    # gives; the backend asks ECS how the task ended (DescribeTasks)
    from distributed import Client

    from daskflow.runtime.diagnosis import LostWorker
    with fargate.open(ResourceRequest(cpu=0.5, memory=1024 * MiB)) as cluster, \
            Client(cluster) as client:
        [(address, info)] = client.scheduler_info(n_workers=-1)["workers"].items()
        [task] = [t for t in tasks_of(cluster.cluster_arn) if t["lastStatus"] == "RUNNING"
                  and t["group"].endswith("-worker")]
        boto3.client("ecs").stop_task(cluster=cluster.cluster_arn, task=task["taskArn"],
                                      reason="Your Spot Task was interrupted.")
        death = fargate.worker_death(cluster, LostWorker("t", address, info["name"], None))
    assert death.cause == "preempted"
    assert "stoppedReason 'Your Spot Task was interrupted.'" in death.message


@pytest.mark.aws
def test_missing_credentials_are_a_clear_error(aws, monkeypatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    started = time.monotonic()
    with pytest.raises(AWSCredentialsError, match=r"No AWS credentials were found.*aws configure"):
        get_backend("aws-fargate").check(ResourceRequest())
    assert time.monotonic() - started < 10


@pytest.mark.aws
@pytest.mark.parametrize("region, text", [
    ("mars-east-1", "AWS region 'mars-east-1' does not offer ECS"),
    ("us-east1", "Did you mean 'us-east-1'"),
])
def test_a_region_without_the_service_is_a_clear_error(aws, region, text) -> None:
    with pytest.raises(AWSRegionError, match=text):
        get_backend("aws-fargate", region=region).check(ResourceRequest())


@pytest.mark.aws
def test_no_region_is_a_clear_error(aws, monkeypatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(AWSRegionError, match="No AWS region is configured"):
        get_backend("aws-fargate").check(ResourceRequest())


# -- ECS on EC2 container instances ----------------------------------------------------------------
def unique(prefix: str) -> str:
    import uuid
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def named(backend: Any, monkeypatch, prefix: str = "daskflow-test") -> str:
    """Make ``backend`` name its next cluster this: the test can look it up in moto."""
    name = unique(prefix)
    monkeypatch.setattr(backend, "new_cluster_name", lambda: name)
    return name


@pytest.fixture
def ecs_cluster(aws) -> str:
    """An ECS cluster with one container instance (moto registers 4096 CPU units, 7482 MiB)."""
    ecs, ec2 = boto3.client("ecs"), boto3.client("ec2")
    arn = ecs.create_cluster(clusterName=unique("shared-ec2"))["cluster"]["clusterArn"]
    [instance] = ec2.run_instances(ImageId="ami-12c6146b", InstanceType="m5.xlarge",
                                   MinCount=1, MaxCount=1)["Instances"]
    document = {"instanceId": instance["InstanceId"], "instanceType": "m5.xlarge",
                "region": "us-east-1", "availabilityZone": "us-east-1a",
                "privateIp": instance["PrivateIpAddress"], "imageId": instance["ImageId"]}
    import json
    ecs.register_container_instance(cluster=arn, instanceIdentityDocument=json.dumps(document))
    return arn


@pytest.mark.aws
def test_ecs_task_definition_and_teardown(ecs_cluster, local_scheduler, ecs_containers) -> None:
    backend = get_backend("aws-ecs", cluster_arn=ecs_cluster, scheduler_address=local_scheduler)
    request = ResourceRequest(cpu=1.5, memory=3000 * MiB)
    with backend.open(request) as cluster:
        name = cluster.job_name
        [worker_def] = task_definitions(f"dask-{name}-worker")
        container = worker_def["containerDefinitions"][0]
        assert (container["cpu"], container["memory"]) == (1536, 3000)
        assert worker_def["requiresCompatibilities"] == []  # EC2 capacity, not Fargate
        assert len([t for t in tasks_of(ecs_cluster) if t["lastStatus"] == "RUNNING"]) == 1
    assert moto_leftovers(name) == []
    assert boto3.client("ecs").describe_clusters(clusters=[ecs_cluster])["clusters"][0][
        "status"] == "ACTIVE"  # not ours: kept


@pytest.mark.aws
def test_ecs_refuses_what_no_container_instance_holds(ecs_cluster) -> None:
    backend = get_backend("aws-ecs", cluster_arn=ecs_cluster)
    with pytest.raises(ResourceRequestError, match=r"they have: 4096 CPU units, 7482 MiB, 0 GPUs"
                                                   r".*at least g4dn.xlarge"):
        backend.check(ResourceRequest(gpu=1))
    with pytest.raises(ResourceRequestError, match=r"at least r6i.xlarge"):
        backend.check(ResourceRequest(cpu=2, memory=16 * GiB))
    backend.check(ResourceRequest(cpu=4, memory=7 * GiB))


@pytest.mark.aws
def test_ecs_gpu_request_reaches_the_task_definition(ecs_cluster, local_scheduler,
                                                     monkeypatch, caplog) -> None:
    backend = get_backend("aws-ecs", cluster_arn=ecs_cluster, scheduler_address=local_scheduler,
                          delete_leftovers=False)  # keep the task definition to read it
    monkeypatch.setattr(backend, "check", lambda request: None)  # moto has no GPU instances
    name = named(backend, monkeypatch)
    # no GPU worker ever joins (nothing runs dask-cuda-worker here): the wait for workers
    # times out, or, on a loaded machine, the bounded start itself does
    with dask.config.set({"daskflow.cluster.start-timeout": "4s"}):
        with pytest.raises(ClusterStartTimeoutError, match="None of the 1 aws-ecs worker|"
                                                          "did not start within the start"):
            with backend.open(ResourceRequest(cpu=1, memory=2 * GiB, gpu=1)):
                pass
    [worker_def] = task_definitions(f"dask-{name}-worker")
    container = worker_def["containerDefinitions"][0]
    assert container["resourceRequirements"] == [{"type": "GPU", "value": "1"}]
    assert (container["cpu"], container["memory"]) == (1024, 2048)
    [task] = [t for t in tasks_of(ecs_cluster) if t["group"] == f"family:dask-{name}-worker"]
    assert task["lastStatus"] == "STOPPED"  # the failed start still stopped its task
    assert f"task definition {worker_def['taskDefinitionArn']}" in caplog.text


# -- EC2 ------------------------------------------------------------------------------------------
@pytest.mark.aws
def test_ec2_start_is_bounded_and_its_instances_are_terminated(aws, monkeypatch) -> None:
    """The scheduler VM never answers under moto: dask-cloudprovider alone would wait forever."""
    ec2 = boto3.client("ec2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    group = ec2.create_security_group(GroupName=unique("dask-test"), Description="test",
                                      VpcId=vpc)["GroupId"]
    backend = get_backend("aws-ec2", security_groups=[group], ami="ami-12c6146b")
    name = named(backend, monkeypatch)
    started = time.monotonic()
    config_before = dask.config.get("distributed.comm.require-encryption")
    with dask.config.set({"daskflow.cluster.start-timeout": "3s"}):
        with pytest.raises(ClusterError) as info:
            with backend.open(ResourceRequest(cpu=2, memory=4 * GiB)):
                pytest.fail("started")
    assert time.monotonic() - started < 30
    # Where nothing answers at moto's made-up scheduler IP, the start timeout ends the
    # wait; where a proxy accepts every TCP connection (this sandbox's does), the TLS
    # handshake with it fails first. Either way the start ends, and nothing is left.
    assert isinstance(info.value, ClusterStartTimeoutError) and "start timeout of 3s" in \
        str(info.value) or "Cluster failed to start" in str(info.value)
    reservations = ec2.describe_instances(Filters=[
        {"Name": f"tag:{CLUSTER_TAG}", "Values": [name]}])["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    assert [i["InstanceType"] for i in instances] == ["t3.medium"]  # the scheduler's
    assert {i["State"]["Name"] for i in instances} == {"terminated"}
    assert dask.config.get("distributed.comm.require-encryption") == config_before
    # the scheduler VM was given the run's (EC) credentials, not an RSA key of its own
    from daskflow.clusters.security import credentials
    user_data = base64.b64decode(ec2.describe_instance_attribute(
        InstanceId=instances[0]["InstanceId"], Attribute="userData")["UserData"]["Value"])
    inherited = re.search(rb'DASK_INTERNAL_INHERIT_CONFIG="([^"]+)"', user_data)
    assert inherited is not None
    tls = dask.config.deserialize(inherited.group(1).decode())["distributed"]["comm"]["tls"]
    assert tls["ca-file"] == credentials()[0]


# -- the shared contract ----------------------------------------------------------------------
@pytest.mark.aws
class TestFargateContract(ClusterContract):
    """The lifecycle against moto, workers run by ECSContainers, a local scheduler."""

    backend_name = "aws-fargate"
    request = ResourceRequest(cpu=1, memory=400 * MiB, workers=2)
    too_big = ResourceRequest(cpu=1, memory=2**50)

    @pytest.fixture(autouse=True)
    def _moto(self, aws, local_scheduler, ecs_containers) -> None:
        type(self).backend_options = {"scheduler_address": local_scheduler,
                                      "use_private_ip": True}
        self.containers = ecs_containers

    def remaining(self, found: dict[str, Any]) -> list[str]:
        left = moto_leftovers(found["job_name"])
        self.containers.settle()  # on ECS, STOPPED means the container has exited
        return left + alive_pids(found["pids"])

    def check_refusal(self, message: str) -> None:
        super().check_refusal(message)
        assert "16 vCPU with 120 GiB" in message

    def test_nothing_left_long_after_the_driver_is_sigkilled(self, tmp_path) -> None:
        pytest.skip("after a SIGKILLed driver, AWS ends the cluster through the scheduler "
                    "task's idle timeout (scheduler_timeout = daskflow.cluster.idle-timeout) "
                    "and the workers' death timeout; here the scheduler is a local process "
                    "given as scheduler-address, not a task, so that path cannot run")


# -- how AWS says a worker ended: the strings AWS documents, as causes ---------------------------
# (DescribeTasks' stopCode and stoppedReason, containers' reason and exit code, per "Amazon ECS
# stopped task error messages"; DescribeInstances' StateReason codes)
OOM_CONTAINER = {"name": "dask", "exitCode": 137,
                 "reason": "OutOfMemoryError: Container killed due to memory usage"}


@pytest.mark.fast
@pytest.mark.parametrize("task, cause", [
    ({"lastStatus": "STOPPED", "stopCode": "SpotInterruption",
      "stoppedReason": "Your Spot Task was interrupted."}, "preempted"),
    ({"lastStatus": "STOPPED", "stopCode": "TerminationNotice",
      "stoppedReason": "Task stopped due to a termination notice"}, "preempted"),
    ({"lastStatus": "STOPPED", "stopCode": "EssentialContainerExited",
      "stoppedReason": "Essential container in task exited", "containers": [OOM_CONTAINER]},
     "out-of-memory"),
    ({"lastStatus": "STOPPED", "stopCode": "UserInitiated",
      "stoppedReason": "Task stopped by user"}, "worker-lost"),
    ({"lastStatus": "STOPPED", "stopCode": "EssentialContainerExited",
      "stoppedReason": "Host EC2 (instance i-0a1b2c3d4e5f67890) terminated.",
      "containers": [{"name": "dask", "exitCode": 143}]}, "worker-lost"),
    ({"lastStatus": "STOPPED", "stoppedReason": "Your Spot Task was interrupted."},
     "preempted"),                                        # as moto records a StopTask reason
    ({"lastStatus": "RUNNING"}, None),
])
def test_an_ecs_tasks_stop_is_a_cause(task, cause) -> None:
    from daskflow.clusters.aws.deaths import ecs_task_cause
    assert ecs_task_cause(task) == cause


@pytest.mark.fast
def test_an_ecs_tasks_stop_is_said_in_its_own_words() -> None:
    from daskflow.clusters.aws.deaths import ecs_task_words
    said = ecs_task_words({"stopCode": "EssentialContainerExited",
                           "stoppedReason": "Essential container in task exited",
                           "containers": [OOM_CONTAINER]})
    assert said == ("stopCode EssentialContainerExited; stoppedReason 'Essential container in "
                    "task exited'; container dask: OutOfMemoryError: Container killed due to "
                    "memory usage (137)")


@pytest.mark.fast
@pytest.mark.parametrize("instance, cause", [
    ({"State": {"Name": "terminated"}, "StateReason": {
        "Code": "Server.SpotInstanceTermination",
        "Message": "Server.SpotInstanceTermination: Spot instance termination"}}, "preempted"),
    ({"State": {"Name": "stopped"}, "InstanceLifecycle": "spot", "StateReason": {
        "Code": "Server.SpotInstanceShutdown",
        "Message": "Server.SpotInstanceShutdown: Spot instance shutdown"}}, "preempted"),
    ({"State": {"Name": "terminated"}, "StateReason": {
        "Code": "Client.UserInitiatedShutdown",
        "Message": "Client.UserInitiatedShutdown: User initiated shutdown"}}, "worker-lost"),
    ({"State": {"Name": "terminated"}, "StateReason": {
        "Code": "Server.InternalError",
        "Message": "Server.InternalError: Internal error on launch"}}, "worker-lost"),
    ({"State": {"Name": "running"}}, None),
])
def test_an_ec2_instances_state_reason_is_a_cause(instance, cause) -> None:
    from daskflow.clusters.aws.deaths import ec2_instance_cause
    assert ec2_instance_cause(instance) == cause
