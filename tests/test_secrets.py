"""Secrets (daskflow.secrets): given by reference, in the workers' environment, shown nowhere."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from daskflow import Flow
from daskflow.clusters import ResourceRequest, ResourceRequestError
from daskflow.secrets import SecretError, SecretValue, parse_secrets, split_env
from daskflow.steps import StepDecoratorError, environment

VALUE = "s3cr3t-Zq9-do-not-show"


def files_holding(root: Path, text: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


def test_a_secret_reaches_tasks_and_step_workers_and_is_stored_nowhere(run_flow, workdir):
    env = {"DF_SECRET": VALUE, "DF_EXPECTED": VALUE}
    result = run_flow("secret_flow.py", "run", env=env)
    assert result.returncode == 0, result.stderr
    run = Flow("SecretFlow").latest_run
    assert run["start"].task.data.seen                # the task's environment has it
    assert run["big"].task.data.big_seen              # under the name the step gave it
    assert run["big"].task.data.workers_have_it       # every worker of the step's cluster
    assert run["end"].task.data.end_clean             # and no other step
    outputs = [result.stdout, result.stderr]
    for command in (["dump", f"{run.id}/start"], ["dump", f"{run.id}/big"], ["logs", f"{run.id}/start"], ["report", run.id],
                    ["show"]):
        shown = run_flow("secret_flow.py", *command, env=env)
        assert shown.returncode == 0, shown.stderr
        outputs += [shown.stdout, shown.stderr]
    assert "DF_SECRET" in run_flow("secret_flow.py", "show", env=env).stdout  # named, at least
    assert not any(VALUE in text for text in outputs)
    assert files_holding(workdir, VALUE) == []  # datastore, records, logs, report


def test_a_missing_secret_fails_before_the_run_naming_it(run_flow, workdir):
    result = run_flow("secret_flow.py", "run")
    assert result.returncode != 0
    assert "secret DF_SECRET refers to the environment variable DF_SECRET, which is not " \
           "set here" in result.stderr
    assert "secret_flow.py:" in result.stderr and "(step 'start')" in result.stderr
    assert not (workdir / ".daskflow").exists() or not any((workdir / ".daskflow").rglob("_run.json"))


@pytest.mark.fast
@pytest.mark.parametrize("secrets, message", [
    ({"DB_PASSWORD": VALUE}, "a string of 22 characters without a known source"),
    ({"DB_PASSWORD": "vault:" + VALUE}, "without a known source"),
    ({"DB_PASSWORD": "env:not a name"}, "is not an environment variable name"),
    ({"BAD-NAME": "env:X"}, "'BAD-NAME' is not an environment variable name"),
    ("DB_PASSWORD", "must be a list of variable names or a dict"),
])
def test_a_value_given_instead_of_a_reference_is_refused_without_showing_it(secrets, message):
    with pytest.raises(StepDecoratorError, match=message) as info:
        environment(secrets=secrets)
    assert VALUE not in str(info.value)


@pytest.mark.fast
def test_vars_and_secrets_of_one_name_are_refused():
    with pytest.raises(StepDecoratorError, match="A given in both vars and secrets"):
        environment(vars={"A": "1"}, secrets=["A"])


@pytest.mark.fast
def test_requests_and_values_never_show_a_value():
    request = ResourceRequest(env={"MODE": "x"}, secrets={"TOKEN": "env:SRC"})
    assert request.secrets == (("TOKEN", "env:SRC"),)
    assert request.describe() == "1 worker x (1 core), env MODE, secrets TOKEN"
    assert "env:SRC" in repr(request)
    assert repr(SecretValue(VALUE)) == str(SecretValue(VALUE)) == "<secret>"
    assert f"{[SecretValue(VALUE)]}" == "[<secret>]"
    with pytest.raises(ResourceRequestError, match="also given in env"):
        ResourceRequest(env={"TOKEN": "x"}, secrets={"TOKEN": "env:SRC"})


@pytest.mark.fast
def test_config_env_entries_may_be_secret():
    plain, secret = split_env({"MODE": 1, "DB": {"secret": "aws-secretsmanager:prod/db"}},
                              what="env")
    assert plain == {"MODE": "1"} and str(secret["DB"]) == "aws-secretsmanager:prod/db"
    with pytest.raises(SecretError, match="DB must be a value or {secret: reference}"):
        split_env({"DB": {"value": VALUE}}, what="env")
    assert parse_secrets(["A"], what="x")["A"].target == "A"
    assert os.environ.get("A_NAME_NOBODY_SETS") is None


@pytest.mark.fast
def test_clusters_that_take_secrets_by_reference_get_a_context_without_values(monkeypatch):
    import runpy

    import cloudpickle

    from daskflow.runtime.context import RunContext, without_secret_values
    from daskflow.runtime.placement import ClusterPool
    from daskflow.runtime.plan import plan_steps, resolve_secrets
    flow_cls = runpy.run_path(str(Path(__file__).parent / "flows" / "secret_flow.py"),
                              run_name="secret_flow")["SecretFlow"]
    monkeypatch.setenv("DF_SECRET", VALUE)
    plans = plan_steps(flow_cls, flow_cls._flow_graph())
    resolve_secrets(plans)
    assert plans["start"].secret_env["DF_SECRET"].reveal() == VALUE
    ctx = RunContext(flow_cls, flow_cls._flow_graph(), "root", "1", {}, plans=plans)
    full, plain = cloudpickle.dumps(ctx), cloudpickle.dumps(without_secret_values(ctx))
    assert VALUE.encode() in full and VALUE.encode() not in plain
    assert str(without_secret_values(ctx).plans["big"].secrets["DF_TOKEN"]) == "env:DF_SECRET"
    assert "<secret>" in repr(plans["start"]) and VALUE not in repr(plans["start"])
    pool = ClusterPool(full, "1", None, None, ctx_bytes_by_reference=plain)
    from daskflow.clusters import get_backend
    assert pool.context_bytes(get_backend("local")) == full
    assert pool.context_bytes(get_backend("kubernetes")) == plain
    assert pool.context_bytes(get_backend("aws-fargate")) == plain
    assert pool.context_bytes(get_backend("aws-ec2")) == full  # TLS: values go to its tasks


@pytest.mark.fast
def test_steps_on_backends_that_take_references_get_no_values(monkeypatch):
    import runpy

    import dask.config

    from daskflow.runtime.plan import plan_steps, resolve_secrets
    flow_cls = runpy.run_path(str(Path(__file__).parent / "flows" / "secret_flow.py"),
                              run_name="secret_flow")["SecretFlow"]
    monkeypatch.setenv("DF_SECRET", VALUE)
    with dask.config.set({"daskflow.cluster.backend": "kubernetes"}):
        plans = plan_steps(flow_cls, flow_cls._flow_graph())
        resolve_secrets(plans)
        assert plans["big"].backend == "kubernetes" and plans["big"].secret_env == {}
        assert plans["start"].secret_env["DF_SECRET"].reveal() == VALUE  # the default cluster
        monkeypatch.delenv("DF_SECRET")
        with pytest.raises(SecretError, match="DF_SECRET, which is not set here"):
            resolve_secrets(plans)  # checked before the run even when passed by reference
