"""Secrets of an ECS/Fargate cluster: in AWS Secrets Manager, named by its task definitions.

An ECS container gets a secret from a ``secrets: [{name, valueFrom}]`` entry of its
task definition: ECS reads the value (with the task's execution role) when the
container starts, so it is in neither the task definition nor RunTask's overrides,
which anyone with ``ecs:Describe*`` can read. So, per cluster:

- a secret given as ``env:NAME`` is stored in a Secrets Manager secret of its own,
  ``daskflow/<cluster>/<VAR>``, tagged with the cluster, deleted at teardown;
- a secret given as ``aws-secretsmanager:ARN-or-name`` is referenced as it is;
- TLS (``daskflow.cluster.tls``, when daskflow starts the scheduler): Dask reads its
  TLS settings from ``DASK_DISTRIBUTED__COMM__...`` variables, which take PEM text
  as well as file names, so the containers of the stock image get the run's
  certificate in their environment and its private key as a secret
  (``daskflow/<cluster>/tls-key``); the scheduler listens with ``--protocol tls``;
- the execution role dask-cloudprovider creates for the cluster gets an inline
  policy allowing ``secretsmanager:GetSecretValue`` on exactly those secrets (one
  given by ``execution-role-arn`` is the user's: it needs that permission already).

dask-cloudprovider registers task definitions without ``secrets``:
:class:`SecretTaskDefinitions` registers each again with them and deregisters the
first revision, which holds no secret.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ...secrets import SecretRef, resolve

#: Secrets Manager names of a cluster's secrets: daskflow/<cluster>/<VAR>
PREFIX = "daskflow"
#: the inline policy on the cluster's execution role
POLICY_NAME = "daskflow-secrets"
#: where Dask reads its TLS settings from (distributed.comm.*)
_TLS = "DASK_DISTRIBUTED__COMM__"
#: what RegisterTaskDefinition takes back from DescribeTaskDefinition
_REGISTER_KEYS = ("family", "taskRoleArn", "executionRoleArn", "networkMode",
                  "containerDefinitions", "volumes", "placementConstraints",
                  "requiresCompatibilities", "cpu", "memory", "pidMode", "ipcMode",
                  "proxyConfiguration", "ephemeralStorage", "runtimePlatform")


def secret_name(cluster: str, var: str) -> str:
    """>>> secret_name("daskflow-1a2b", "DB_PASSWORD")
    'daskflow/daskflow-1a2b/DB_PASSWORD'
    """
    return f"{PREFIX}/{cluster}/{var}"


def tls_environment(cert: str) -> dict[str, str]:
    """The plain part of Dask's TLS settings (the certificate is public)."""
    env = {f"{_TLS}REQUIRE_ENCRYPTION": "True", f"{_TLS}TLS__CA_FILE": cert}
    for role in ("SCHEDULER", "WORKER", "CLIENT"):
        env[f"{_TLS}TLS__{role}__CERT"] = cert
    return env


TLS_KEY_VARS = tuple(f"{_TLS}TLS__{role}__KEY" for role in ("SCHEDULER", "WORKER", "CLIENT"))


def store_secrets(backend: Any, cluster: str, refs: Mapping[str, SecretRef],
                  tags: Mapping[str, str], tls_key: str | None = None) -> list[dict[str, str]]:
    """The ``secrets`` entries of the cluster's containers, values stored as needed."""
    sm = backend.client("secretsmanager")
    aws_tags = [{"Key": k, "Value": str(v)} for k, v in tags.items() if k and v]

    def create(var: str, value: str) -> str:
        return sm.create_secret(Name=secret_name(cluster, var), SecretString=value,
                                Description=f"daskflow cluster {cluster}: {var}",
                                Tags=aws_tags)["ARN"]

    entries = []
    for var, ref in sorted(refs.items()):
        if ref.source == "aws-secretsmanager" and "#" not in ref.target:  # #KEY: copied
            arn = ref.target if ref.target.startswith("arn:") else \
                sm.describe_secret(SecretId=ref.target)["ARN"]
        else:
            arn = create(var, resolve(ref, name=var).reveal())
        entries.append({"name": var, "valueFrom": arn})
    if tls_key is not None:
        arn = create("tls-key", tls_key)
        entries += [{"name": var, "valueFrom": arn} for var in TLS_KEY_VARS]
    return entries


def policy(arns: list[str]) -> str:
    """The execution role's inline policy: read exactly these secrets."""
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
        "Resource": sorted(set(arns))}]})


class SecretTaskDefinitions:
    """Mixin before dask-cloudprovider's ECSCluster: task definitions with ``secrets``.

    Takes ``daskflow_secrets`` (the entries of :func:`store_secrets`).
    """

    def __init__(self, *, daskflow_secrets: Sequence[dict[str, str]] = (),
                 **kwargs: Any) -> None:
        self._daskflow_secrets = list(daskflow_secrets)
        self._daskflow_granted = False
        super().__init__(**kwargs)

    def _check_scheduler_tls_config(self) -> None:
        """dask-cloudprovider's check compares ``type(arg)`` with ``"str"``, so it warns
        whenever TLS is on; here the scheduler has its TLS settings in its environment."""

    async def _create_scheduler_task_definition_arn(self) -> str:
        arn = await super()._create_scheduler_task_definition_arn()  # type: ignore[misc]
        return await self._with_secrets(arn)

    async def _create_worker_task_definition_arn(self) -> str:
        arn = await super()._create_worker_task_definition_arn()  # type: ignore[misc]
        return await self._with_secrets(arn)

    async def _with_secrets(self, arn: str) -> str:
        if not self._daskflow_secrets:
            return arn
        await self._grant_execution_role()
        async with self._client("ecs") as ecs:  # type: ignore[attr-defined]
            described = await ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
            definition = described["taskDefinition"]
            again = {k: definition[k] for k in _REGISTER_KEYS if definition.get(k)}
            for container in again["containerDefinitions"]:
                container["secrets"] = [*container.get("secrets", []), *self._daskflow_secrets]
            if described.get("tags"):
                again["tags"] = described["tags"]
            new = await ecs.register_task_definition(**again)
            await ecs.deregister_task_definition(taskDefinition=arn)
        return new["taskDefinition"]["taskDefinitionArn"]

    async def _grant_execution_role(self) -> None:
        role = self._execution_role_arn.rsplit("/", 1)[-1]  # type: ignore[attr-defined]
        if self._daskflow_granted or role != f"dask-{self.name}-execution-role":  # type: ignore[attr-defined]
            return  # granted already (two task definitions); or the user's own role
        async with self._client("iam") as iam:  # type: ignore[attr-defined]
            await iam.put_role_policy(
                RoleName=role, PolicyName=POLICY_NAME,
                PolicyDocument=policy([e["valueFrom"] for e in self._daskflow_secrets]))
        self._daskflow_granted = True
