"""Secrets and TLS of ECS/Fargate clusters (daskflow.clusters.aws.secrets), against moto.

The stand-in for the ECS agent (conftest's ECSContainers) reads each ``secrets``
entry of a task definition from Secrets Manager into the container's environment,
as ECS does; the task definitions and tasks are read back from moto.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import dask.config
import pytest

pytest.importorskip("dask_cloudprovider.aws")
boto3 = pytest.importorskip("boto3")

from daskflow.clusters import ResourceRequest, get_backend
from daskflow.clusters.base import SCHEDULER_ENV

from .conftest import container_secrets
from .test_aws import fargate, moto_leftovers, task_definitions, tasks_of  # noqa: F401

VALUE = "pw-Zq9-never-in-a-task-definition"
OTHER = "token-Kx7-kept-in-secrets-manager"


def secrets_of(name: str) -> list[str]:
    found = boto3.client("secretsmanager").list_secrets()["SecretList"]
    return [s["Name"] for s in found if s["Name"].startswith(f"daskflow/{name}/")]


def worker_env(name):
    import os
    return os.environ.get(name)


@pytest.mark.aws
def test_secrets_reach_the_workers_through_secrets_manager_only(fargate, monkeypatch):
    from distributed import Client
    monkeypatch.setenv("DF_DB_PASSWORD", VALUE)
    existing = boto3.client("secretsmanager").create_secret(
        Name=f"team/token-{uuid.uuid4().hex[:6]}", SecretString=OTHER)["ARN"]
    request = ResourceRequest(env={"MODE": "plain"},
                              secrets={"DB_PASSWORD": "env:DF_DB_PASSWORD"})
    setting = {"PLAIN": "1", "API_TOKEN": {"secret": f"aws-secretsmanager:{existing}"}}
    with dask.config.set({"daskflow.cluster.aws.environment": setting}), \
            fargate.open(request) as cluster, Client(cluster) as client:
        name = fargate.names[-1]
        [definition] = task_definitions(f"dask-{name}-worker")  # the first one deregistered
        container = definition["containerDefinitions"][0]
        refs = {e["name"]: e["valueFrom"] for e in container["secrets"]}
        assert set(refs) == {"DB_PASSWORD", "API_TOKEN"} and refs["API_TOKEN"] == existing
        assert secrets_of(name) == [f"daskflow/{name}/DB_PASSWORD"]
        tasks = tasks_of(f"dask-{name}")
        recorded = json.dumps([definition, tasks], default=str)
        assert VALUE not in recorded and OTHER not in recorded
        overrides = tasks[0]["overrides"]["containerOverrides"][0]["environment"]
        # plain values only (and daskflow's own scheduler setting), never a secret's
        from daskflow.clusters.base import SCHEDULER_ENV
        assert {e["name"] for e in overrides} - set(SCHEDULER_ENV) == {"PLAIN", "MODE"}
        assert client.run(worker_env, "DB_PASSWORD") == {w: VALUE for w in client.run(os.getpid)}
        assert set(client.run(worker_env, "API_TOKEN").values()) == {OTHER}
        role = boto3.client("iam").get_role_policy(RoleName=f"dask-{name}-execution-role",
                                                   PolicyName="daskflow-secrets")
        assert sorted(role["PolicyDocument"]["Statement"][0]["Resource"]) == sorted(refs.values())
    assert moto_leftovers(name) == [] and secrets_of(name) == []   # role policy, secret gone
    boto3.client("secretsmanager").describe_secret(SecretId=existing)  # the user's: kept


@pytest.mark.aws
def test_tls_on_fargate_the_key_travels_as_a_secret_and_dask_uses_it(aws, tmp_path):
    backend = get_backend("aws-fargate", driver_cidr="203.0.113.7/32")
    request = ResourceRequest()
    name = f"daskflow-tls-{uuid.uuid4().hex[:6]}"
    kwargs = backend.cluster_kwargs(request, name=name)
    backend.prepare_ecs(request, name, kwargs)
    try:
        security = kwargs["security"]
        assert security.require_encryption and kwargs["scheduler_extra_args"] == [
            "--protocol", "tls"]
        assert "PRIVATE KEY" not in json.dumps(kwargs["environment"])
        keys = {e["name"] for e in kwargs["daskflow_secrets"]}
        assert keys == {f"DASK_DISTRIBUTED__COMM__TLS__{r}__KEY"
                        for r in ("SCHEDULER", "WORKER", "CLIENT")}
        assert len({e["valueFrom"] for e in kwargs["daskflow_secrets"]}) == 1
        # a stock Dask scheduler and worker given the containers' environment, as ECS
        # gives it, speak TLS with the run's credentials and refuse a plain client
        env = {**os.environ, **kwargs["environment"],
               **container_secrets({"secrets": kwargs["daskflow_secrets"]})}
        check_tls_cluster(env, security, tmp_path)
    finally:
        backend.cleanup(backend.snapshot(None, name), failing=False)
    assert moto_leftovers(name) == [] and secrets_of(name) == []


def check_tls_cluster(env, security, tmp_path):
    from distributed import Client
    file = tmp_path / "scheduler.json"
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--protocol", "tls",
         "--host", "127.0.0.1", "--port", "0", "--dashboard-address", ":0",
         "--scheduler-file", str(file)], env=env, stderr=subprocess.DEVNULL)
    worker = None
    try:
        import time
        deadline = time.monotonic() + 30
        while (not file.exists() or not file.read_text().strip().endswith("}")) \
                and time.monotonic() < deadline:  # the file comes first, then its text
            time.sleep(0.1)
        address = json.loads(file.read_text())["address"]
        assert address.startswith("tls://")
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker",
                                   address, "--nthreads", "1", "--no-nanny"], env=env,
                                  stderr=subprocess.DEVNULL)
        with Client(address, security=security, timeout=30) as client:
            client.wait_for_workers(1, timeout=30)
            assert client.submit(sum, [1, 2]).result() == 3
        refused = subprocess.run(
            [sys.executable, "-c", "from distributed import Client; import sys; "
             f"Client('{address.replace('tls://', 'tcp://')}', timeout=3)"],
            capture_output=True, text=True, timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("DASK_DISTRIBUTED")})
        assert refused.returncode != 0
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                process.wait(10)


@pytest.mark.fast
def test_secret_settings_stay_out_of_kwargs_and_ec2_user_data():
    from daskflow.exceptions import ConfigurationError
    setting = {"PLAIN": "1", "API_TOKEN": {"secret": "env:DF_NOT_READ_HERE"}}
    request = ResourceRequest(secrets={"DB_PASSWORD": "env:DF_NOT_READ_HERE"})
    with dask.config.set({"daskflow.cluster.aws.environment": setting}):
        fargate = get_backend("aws-fargate")
        assert fargate.cluster_kwargs(request, name="daskflow-k")["environment"] == {
            "PLAIN": "1", **SCHEDULER_ENV}
        assert {k: str(v) for k, v in fargate.secrets(request).items()} == {
            "API_TOKEN": "env:DF_NOT_READ_HERE", "DB_PASSWORD": "env:DF_NOT_READ_HERE"}
        with pytest.raises(ConfigurationError, match=r"secret entries \(API_TOKEN\) reach ECS "
                                                     r"and Fargate tasks only"):
            get_backend("aws-ec2").cluster_kwargs(request, name="daskflow-k")
    assert fargate.secrets_by_reference and not get_backend("aws-ec2").secrets_by_reference
