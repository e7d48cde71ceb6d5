"""Secret variables of a Kubernetes cluster: a Secret beside the DaskCluster, referenced by its pods.

A pod spec is readable by anyone who may ``get`` DaskClusters or pods in the
namespace, so a secret's value never goes into it: the pods' ``env`` entries say
``valueFrom.secretKeyRef`` to a ``v1`` Secret named ``<cluster>-secrets``, which
daskflow creates (values read on the driver, :mod:`daskflow.secrets`) just before
the DaskCluster and deletes at teardown, whatever happened. The variables of the
``env`` setting (``{secret: reference}`` entries) go to scheduler and workers;
the step's (``@environment(secrets=...)``) to the workers only, as plain ones do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ...secrets import SecretValue


def secret_name(cluster: str) -> str:
    """>>> secret_name("daskflow-1a2b")
    'daskflow-1a2b-secrets'
    """
    return f"{cluster}-secrets"


def env_refs(names: Iterable[str], cluster: str) -> list[dict[str, Any]]:
    """A container's ``env`` entries for ``names``: each a key of the cluster's Secret.

    >>> env_refs(["DB"], "c")
    [{'name': 'DB', 'valueFrom': {'secretKeyRef': {'name': 'c-secrets', 'key': 'DB'}}}]
    """
    return [{"name": name, "valueFrom": {"secretKeyRef": {"name": secret_name(cluster),
                                                          "key": name}}}
            for name in names]


def secret_object(cluster: str, values: Mapping[str, SecretValue],
                  labels: Mapping[str, str]) -> dict[str, Any]:
    """The ``v1`` Secret holding ``values`` (the one place they are revealed)."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": secret_name(cluster), "labels": dict(labels)},
            "stringData": {name: value.reveal() for name, value in values.items()}}


async def create_secret(api: Any, namespace: str, secret: dict[str, Any]) -> None:
    import json
    async with api.call_api("POST", version="v1", namespace=namespace, url="secrets",
                            content=json.dumps(secret)):
        pass


async def delete_secret(api: Any, namespace: str, cluster: str) -> bool:
    """Delete the cluster's Secret; False when there was none."""
    import kr8s
    try:
        async with api.call_api("DELETE", version="v1", namespace=namespace,
                                url=f"secrets/{secret_name(cluster)}"):
            return True
    except kr8s.ServerError as exc:
        if getattr(getattr(exc, "response", None), "status_code", None) == 404:
            return False
        raise


def container_envs(setting: Mapping[str, Any] | None, request: Any, cluster: str
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The scheduler's and the workers' ``env``: the ``env`` setting's plain values and
    secret references, then (workers only) the step's, which win over the setting's."""
    from ...secrets import split_env
    plain, secret = split_env(setting, what="daskflow.cluster.kubernetes.env")
    scheduler = [{"name": k, "value": v} for k, v in plain.items()] + env_refs(secret, cluster)
    step_env, step_secrets = request.env_dict, [name for name, _ in request.secrets]
    if not step_env and not step_secrets:
        return scheduler, list(scheduler)
    worker_plain = {**{k: v for k, v in plain.items() if k not in step_secrets}, **step_env}
    worker_secrets = [n for n in secret if n not in step_env and n not in step_secrets]
    return scheduler, ([{"name": k, "value": v} for k, v in worker_plain.items()]
                       + env_refs([*worker_secrets, *step_secrets], cluster))


def secret_refs(setting: Mapping[str, Any] | None, request: Any) -> dict[str, Any]:
    """Every secret variable of the cluster: name -> :class:`~daskflow.secrets.SecretRef`."""
    from ...secrets import parse_reference, split_env
    _, secret = split_env(setting, what="daskflow.cluster.kubernetes.env")
    return {**secret, **{name: parse_reference(ref, what=name) for name, ref in request.secrets}}
