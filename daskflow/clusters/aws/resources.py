"""What an AWS cluster consists of, found by its unique name: verified gone, deleted when left.

Teardown is verified against the AWS API: no ECS task of the cluster may be
left un-STOPPED, no EC2 instance un-terminated. Then daskflow deletes what
dask-cloudprovider leaves behind after ``close()`` (ECS cluster, task
definitions, IAM roles, security group) and the secrets daskflow stored for it
(:mod:`.secrets`), or logs what is left when it cannot.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

from .api import AWSAPI
from .labels import CLUSTER_TAG

logger = logging.getLogger("daskflow.clusters")


class AWSResources(AWSAPI):
    """The teardown half of the aws backends (``snapshot`` ... ``cleanup`` of the contract)."""

    def snapshot(self, cluster: Any, name: str) -> Any:
        if cluster is not None:
            detach_finalizers(cluster)  # daskflow deletes what they would, and verifies it
        region = getattr(cluster, "_region_name", None) or getattr(cluster, "region", None)
        return {"name": name, "launch": self.launch_type,
                "cluster_arn": getattr(cluster, "cluster_arn", None)
                or self.option("cluster-arn") or f"dask-{name}",
                "own_cluster": not self.option("cluster-arn"),
                "region": region or self.option("region")}

    def _client_for(self, snapshot: Any, service: str) -> Any:
        session = self.session()
        return self.client(service, session, snapshot["region"] or self.region(session))

    def leftovers(self, snapshot: Any) -> list[str]:
        if snapshot["launch"] == "ec2":
            return [f"EC2 instance {i['InstanceId']} ({i['InstanceType']}, "
                    f"{i['State']['Name']})" for i in self._instances(snapshot)]
        return [f"ECS task {t['taskArn'].rsplit('/', 1)[-1]} ({t['lastStatus']})"
                for t in self._tasks(snapshot) if t.get("lastStatus") != "STOPPED"]

    def _instances(self, snapshot: Any) -> list[dict[str, Any]]:
        ec2 = self._client_for(snapshot, "ec2")
        found = []
        for page in ec2.get_paginator("describe_instances").paginate(Filters=[
                {"Name": f"tag:{CLUSTER_TAG}", "Values": [snapshot["name"]]},
                {"Name": "instance-state-name",
                 "Values": ["pending", "running", "stopping", "stopped", "shutting-down"]}]):
            for reservation in page.get("Reservations", []):
                found += reservation.get("Instances", [])
        return found

    def _tasks(self, snapshot: Any) -> list[dict[str, Any]]:
        import botocore.exceptions as bx
        ecs = self._client_for(snapshot, "ecs")
        arns: list[str] = []
        try:
            for role in ("scheduler", "worker"):
                for desired in ("RUNNING", "STOPPED"):
                    for page in ecs.get_paginator("list_tasks").paginate(
                            cluster=snapshot["cluster_arn"],
                            family=f"dask-{snapshot['name']}-{role}",
                            desiredStatus=desired):
                        arns += page.get("taskArns", [])
        except bx.ClientError as exc:
            if "ClusterNotFound" in str(exc):
                return []  # never created, or already deleted with its tasks
            raise
        tasks = []
        for i in range(0, len(arns), 100):
            tasks += ecs.describe_tasks(cluster=snapshot["cluster_arn"],
                                        tasks=arns[i:i + 100]).get("tasks", [])
        return tasks

    def force_teardown(self, snapshot: Any) -> None:
        if snapshot["launch"] == "ec2":
            ids = [i["InstanceId"] for i in self._instances(snapshot)]
            if ids:
                self._client_for(snapshot, "ec2").terminate_instances(InstanceIds=ids)
            return
        ecs = self._client_for(snapshot, "ecs")
        for task in self._tasks(snapshot):
            if task.get("desiredStatus") != "STOPPED" or task.get("lastStatus") != "STOPPED":
                ecs.stop_task(cluster=snapshot["cluster_arn"], task=task["taskArn"],
                              reason="daskflow: step over, cluster torn down")

    def cleanup(self, snapshot: Any, *, failing: bool) -> None:
        """Delete what dask-cloudprovider leaves after close; list it if delete-leftovers is off."""
        if snapshot["launch"] == "ec2":
            return  # instances terminate with their disks; the shared security group stays
        left = self.cloud_leftovers(snapshot)
        if not left:
            return
        if not self.option("delete-leftovers"):
            logger.warning("AWS resources of cluster %s left by dask-cloudprovider: %s",
                           snapshot["name"], "; ".join(f"{kind} {what}" for kind, what in left))
            return
        failed = []
        for kind, what in left:
            try:
                self._delete(snapshot, kind, what)
            except Exception as exc:  # one failure must not keep the others
                failed.append(f"{kind} {what} ({type(exc).__name__}: {exc})")
        if failed:
            logger.warning("Could not delete these AWS resources of cluster %s: %s. Delete "
                           "them by hand (they are tagged %s=%s).", snapshot["name"],
                           "; ".join(failed), CLUSTER_TAG, snapshot["name"])

    def cloud_leftovers(self, snapshot: Any) -> list[tuple[str, str]]:
        """Non-running resources of the cluster that still exist: (kind, id) pairs."""
        import botocore.exceptions as bx
        name = snapshot["name"]
        ecs = self._client_for(snapshot, "ecs")
        left: list[tuple[str, str]] = []
        for role in ("scheduler", "worker"):
            for page in ecs.get_paginator("list_task_definitions").paginate(
                    familyPrefix=f"dask-{name}-{role}", status="ACTIVE"):
                left += [("task definition", arn) for arn in page["taskDefinitionArns"]]
        iam = self._client_for(snapshot, "iam")
        for role in (f"dask-{name}-execution-role", f"dask-{name}-task-role"):
            try:
                iam.get_role(RoleName=role)
                left.append(("IAM role", role))
            except bx.ClientError:
                pass
        ec2 = self._client_for(snapshot, "ec2")
        groups = ec2.describe_security_groups(Filters=[
            {"Name": "group-name", "Values": [f"dask-{name}-security-group"]}])
        left += [("security group", g["GroupId"]) for g in groups.get("SecurityGroups", [])]
        left += [("secret", arn) for arn in self._secrets(snapshot)]
        if snapshot["own_cluster"]:
            clusters = ecs.describe_clusters(clusters=[snapshot["cluster_arn"]])
            left += [("ECS cluster", c["clusterArn"]) for c in clusters.get("clusters", [])
                     if c.get("status") == "ACTIVE"]
        return left

    def _secrets(self, snapshot: Any) -> list[str]:
        """The Secrets Manager secrets daskflow stored for the cluster (:mod:`.secrets`)."""
        from .secrets import secret_name
        prefix = secret_name(snapshot["name"], "")
        sm = self._client_for(snapshot, "secretsmanager")
        return [found["ARN"] for page in sm.get_paginator("list_secrets").paginate(
                    Filters=[{"Key": "name", "Values": [prefix]}])
                for found in page.get("SecretList", []) if found["Name"].startswith(prefix)]

    def _delete(self, snapshot: Any, kind: str, what: str) -> None:
        if kind == "task definition":
            self._client_for(snapshot, "ecs").deregister_task_definition(taskDefinition=what)
        elif kind == "IAM role":
            iam = self._client_for(snapshot, "iam")
            for policy in iam.list_attached_role_policies(RoleName=what)["AttachedPolicies"]:
                iam.detach_role_policy(RoleName=what, PolicyArn=policy["PolicyArn"])
            for inline in iam.list_role_policies(RoleName=what)["PolicyNames"]:
                iam.delete_role_policy(RoleName=what, PolicyName=inline)
            iam.delete_role(RoleName=what)
        elif kind == "security group":
            self._client_for(snapshot, "ec2").delete_security_group(GroupId=what)
        elif kind == "secret":  # at once: no recovery window holding the value
            self._client_for(snapshot, "secretsmanager").delete_secret(
                SecretId=what, ForceDeleteWithoutRecovery=True)
        elif kind == "ECS cluster":
            self._client_for(snapshot, "ecs").delete_cluster(cluster=what)



def detach_finalizers(cluster: Any) -> None:
    """Drop dask-cloudprovider's ``weakref.finalize`` deletions of ``cluster``'s resources.

    They hold the cluster alive until interpreter exit, then call ``cluster.sync``
    on a closed loop, failing with tracebacks; daskflow's cleanup does their work.
    """
    for finalizer in list(getattr(weakref.finalize, "_registry", {})):
        try:
            info = finalizer.peek()
        except Exception:
            continue
        if info is not None and info[0] is cluster:
            finalizer.detach()

