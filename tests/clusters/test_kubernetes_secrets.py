"""Secret variables on Kubernetes (daskflow.clusters.kubernetes.secrets).

What is real: the DaskCluster checked against the CRD schema shipped in
dask-kubernetes; the Secret checked against the core v1 model of the official
``kubernetes`` client (generated from the API server's OpenAPI); kr8s calls over
HTTP to test_kubernetes' FakeKubeAPI, taught here to keep Secrets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dask.config
import pytest

pytest.importorskip("dask_kubernetes")

from daskflow.clusters import ResourceRequest, get_backend
from daskflow.clusters.base import SCHEDULER_ENV
from daskflow.clusters.kubernetes.secrets import secret_object
from daskflow.clusters.kubernetes.spec import validate_cluster_spec
from daskflow.secrets import SecretValue

from .test_kubernetes import FakeKubeAPI, _status, write_kubeconfig

VALUE = "k8s-pw-Qx7-never-in-a-pod-spec"


def env_of(spec: dict, role: str) -> dict[str, Any]:
    [container] = spec["spec"][role]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def ref(key: str, cluster: str = "daskflow-s") -> dict:
    return {"secretKeyRef": {"name": f"{cluster}-secrets", "key": key}}


@pytest.mark.fast
def test_pods_refer_to_the_secret_and_never_hold_a_value(monkeypatch):
    monkeypatch.setenv("DF_DB", VALUE)
    setting = {"PLAIN": "1", "API_TOKEN": {"secret": "env:DF_DB"}}
    request = ResourceRequest(env={"MODE": "fast"}, secrets={"DB_PASSWORD": "env:DF_DB"})
    with dask.config.set({"daskflow.cluster.kubernetes.env": setting}):
        spec = get_backend("kubernetes").cluster_spec(request, "daskflow-s")
        plain = get_backend("kubernetes").cluster_spec(ResourceRequest(), "daskflow-s")
    assert validate_cluster_spec(spec) == []  # the CRD's schema: valueFrom.secretKeyRef
    assert VALUE not in json.dumps(spec)
    assert env_of(spec, "scheduler") == {"PLAIN": "1", "API_TOKEN": ref("API_TOKEN"),
                                         **SCHEDULER_ENV}
    assert env_of(spec, "worker") == {"PLAIN": "1", "MODE": "fast", "API_TOKEN": ref("API_TOKEN"),
                                      "DB_PASSWORD": ref("DB_PASSWORD")}
    assert {**env_of(plain, "worker"), **SCHEDULER_ENV} == env_of(plain, "scheduler") \
        == env_of(spec, "scheduler")


@pytest.mark.fast
def test_the_secret_is_a_core_v1_secret():
    kubernetes = pytest.importorskip("kubernetes")
    secret = secret_object("daskflow-s", {"DB_PASSWORD": SecretValue(VALUE)},
                           {"app.kubernetes.io/managed-by": "daskflow"})
    client = kubernetes.client.ApiClient()
    model = client._ApiClient__deserialize(secret, "V1Secret")  # the v1 model's types
    assert client.sanitize_for_serialization(model) == secret  # nothing unknown, dropped
    assert model.string_data == {"DB_PASSWORD": VALUE} and model.type == "Opaque"


class SecretKeepingAPI(FakeKubeAPI):
    """FakeKubeAPI that also keeps v1 Secrets (POST, GET, DELETE)."""

    def __init__(self) -> None:
        self.secrets: dict[tuple[str, str], dict] = {}
        super().__init__()

    def answer(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if parts[:3] != ["api", "v1", "namespaces"] or len(parts) < 5 or parts[4] != "secrets":
            return super().answer(method, path, query, body)
        namespace = parts[3]
        if method == "POST":
            self.secrets[(namespace, body["metadata"]["name"])] = body
            return 201, body
        key = (namespace, parts[5])
        if key not in self.secrets:
            return 404, _status(404, "NotFound", f'secrets "{parts[5]}" not found')
        return 200, self.secrets.pop(key) if method == "DELETE" else self.secrets[key]


def test_the_secret_is_made_before_the_cluster_and_deleted_at_teardown(tmp_path: Path,
                                                                      monkeypatch):
    api = SecretKeepingAPI()
    try:
        monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", api.url, "ml")))
        monkeypatch.setenv("DF_DB", VALUE)
        backend = get_backend("kubernetes")
        backend.create_secret(ResourceRequest(secrets={"DB_PASSWORD": "env:DF_DB"}), "daskflow-s")
        secret = api.secrets[("ml", "daskflow-s-secrets")]
        assert secret["stringData"] == {"DB_PASSWORD": VALUE}
        assert secret["metadata"]["labels"]["dask.org/cluster-name"] == "daskflow-s"
        backend.cleanup(backend.snapshot(None, "daskflow-s"), failing=True)
        assert api.secrets == {}
        calls = len(api.requests)
        backend.create_secret(ResourceRequest(), "daskflow-none")  # no secrets: no Secret
        backend.cleanup(backend.snapshot(None, "daskflow-none"), failing=False)
        assert len(api.requests) == calls
    finally:
        api.close()
