"""daskflow's live clusters on AWS, found by their tags, and how ``gc`` ends them.

Every ECS task and EC2 instance daskflow starts carries ``daskflow-cluster``
(the cluster's name) and the run's labels (``daskflow-run``, ``-step``,
``-user``, ``-version``, ``-driver``; :mod:`.labels`). Listing asks ECS
(ListClusters, ListTasks, DescribeTasks with tags) and EC2 (DescribeInstances
filtered on the tag); ending one stops its tasks or terminates its instances.
Calls go through the aws backend's bounded clients (``api-timeout``): the aws
backends' ``live_clusters`` and ``end_cluster`` are these.
"""

from __future__ import annotations

from typing import Any

from ..live import LiveCluster
from .labels import CLUSTER_TAG, from_aws_tags


def configured() -> bool:
    """Whether this machine has AWS credentials and a region (boto3's own lookup)."""
    try:
        import boto3
    except ImportError:
        return False
    session = boto3.Session()
    return session.get_credentials() is not None and bool(session.region_name)


def list_clusters(ecs: Any, ec2: Any) -> list[LiveCluster]:
    """daskflow's running ECS tasks and EC2 instances, one cluster per ``daskflow-cluster``."""
    return ecs_clusters(ecs) + ec2_clusters(ec2)


def ecs_clusters(ecs: Any) -> list[LiveCluster]:
    """Running ECS tasks tagged ``daskflow-cluster``, one cluster per tag value."""
    found: dict[str, LiveCluster] = {}
    for page in ecs.get_paginator("list_clusters").paginate():
        for cluster_arn in page["clusterArns"]:
            arns = [arn for p in ecs.get_paginator("list_tasks").paginate(cluster=cluster_arn)
                    for arn in p["taskArns"]]
            for i in range(0, len(arns), 100):  # DescribeTasks takes at most 100
                tasks = ecs.describe_tasks(cluster=cluster_arn, tasks=arns[i:i + 100],
                                           include=["TAGS"])["tasks"]
                for task in tasks:
                    _add_task(found, cluster_arn, task)
    return list(found.values())


def _add_task(found: dict[str, LiveCluster], cluster_arn: str, task: dict[str, Any]) -> None:
    tags = {t["key"]: t["value"] for t in task.get("tags") or []}
    name = tags.get(CLUSTER_TAG)
    if not name or "STOPPED" in (task.get("lastStatus"), task.get("desiredStatus")):
        return
    launch = str(task.get("launchType") or "ecs").lower()
    cluster = found.setdefault(name, LiveCluster(
        f"aws-{'fargate' if launch == 'fargate' else 'ecs'}", name,
        from_aws_tags(tags), None, 0, "PENDING",
        handle={"ecs_cluster": cluster_arn, "tasks": []}))
    cluster.handle["tasks"].append(task["taskArn"])
    created = task.get("createdAt")
    if created is not None:
        when = created.timestamp() if hasattr(created, "timestamp") else float(created)
        cluster.started_at = min(cluster.started_at or when, when)
    if "-worker" in str(task.get("group", "")):
        cluster.workers = (cluster.workers or 0) + 1
    if task.get("lastStatus") == "RUNNING":
        cluster.state = "RUNNING"


def ec2_clusters(ec2: Any) -> list[LiveCluster]:
    """Pending or running EC2 instances tagged ``daskflow-cluster``."""
    found: dict[str, LiveCluster] = {}
    filters = [{"Name": "tag-key", "Values": [CLUSTER_TAG]},
               {"Name": "instance-state-name", "Values": ["pending", "running"]}]
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in instance.get("Tags") or []}
                name = tags[CLUSTER_TAG]
                cluster = found.setdefault(name, LiveCluster(
                    "aws-ec2", name, from_aws_tags(tags), None, 0,
                    "PENDING", handle={"instances": []}))
                cluster.handle["instances"].append(instance["InstanceId"])
                when = instance["LaunchTime"].timestamp()
                cluster.started_at = min(cluster.started_at or when, when)
                cluster.workers = (cluster.workers or 0) + 1
                if instance["State"]["Name"] == "running":
                    cluster.state = "RUNNING"
    return list(found.values())


def end(ecs: Any, ec2: Any, cluster: LiveCluster) -> str:
    """Stop the cluster's ECS tasks, terminate its EC2 instances."""
    tasks = cluster.handle.get("tasks") or []
    for arn in tasks:
        ecs.stop_task(cluster=cluster.handle["ecs_cluster"], task=arn,
                      reason="daskflow clusters gc: its run is over")
    instances = cluster.handle.get("instances") or []
    if instances:
        ec2.terminate_instances(InstanceIds=instances)
    return ", ".join(part for part in (
        f"stopped {len(tasks)} ECS task(s)" if tasks else "",
        f"terminated {len(instances)} EC2 instance(s)" if instances else "")) or "nothing to end"
