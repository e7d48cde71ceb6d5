"""Metaflow's ``@secrets`` on daskflow's secret references, against Metaflow 2.19.

Metaflow's behaviour was recorded with Metaflow 2.19.39 (and boto3) in a separate virtual
environment, against moto's server with the same secrets as here: a flow with
``@secrets(sources=[...])`` on its start step, run with ``python sec_flow.py run``; the
variables its task saw, and the error lines it printed, are the expected values below.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from daskflow import Flow
from daskflow.graph import FlowGraph
from daskflow.secrets import SecretError, SecretRef
from daskflow.steps import StepDecoratorError, StepPlan, environment
from daskflow.steps.secrets import secrets


VALUE = "p1-Zq9-do-not-show"
SECRETS = {"db/creds": {"user": "u1", "pass-word": VALUE, "port": 5432, "a.b": "x"},
           "plain-token": "tok123", "listsecret": [1, 2], "homesecret": {"HOME": "x"},
           "mfsecret": {"METAFLOW_X": "x"}, "dup": {"user": "other"}}

FLOW = '''
import os

from metaflow import FlowSpec, secrets, step


class SecFlow(FlowSpec):
    @secrets(sources=["aws-secrets-manager.db/creds",
                      {"type": "aws-secrets-manager", "id": "plain-token",
                       "options": {"json": False}},
                      {"type": "aws-secrets-manager", "id": "plain-token",
                       "options": {"json": False, "env_var_name": "MY_TOKEN"}},
                      "env.DF_FROM_ENV"])
    @step
    def start(self):
        self.env = {k: os.environ.get(k) for k in ("user", "pass_word", "port", "a_b",
                                                   "plain_token", "MY_TOKEN")}
        self.from_env = os.environ.get("DF_FROM_ENV") == "e1"
        print("password has", len(os.environ["pass_word"]), "characters")
        self.next(self.end)

    @step
    def end(self):
        self.clean = os.environ.get("pass_word") is None


if __name__ == "__main__":
    SecFlow()
'''


@pytest.fixture
def aws(moto_server, monkeypatch):  # noqa: F811
    """moto's Secrets Manager with SECRETS in it, and the driver's environment set."""
    env = {"AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    import boto3
    client = boto3.client("secretsmanager")
    for name, value in SECRETS.items():
        text = value if isinstance(value, str) else json.dumps(value)
        try:
            client.create_secret(Name=name, SecretString=text)
        except client.exceptions.ResourceExistsException:
            pass
    return env


def test_a_metaflow_flow_gets_its_secrets_as_metaflow_gives_them(aws, workdir):
    (workdir / "sec_flow.py").write_text(FLOW)
    env = {**os.environ, **aws, "DF_FROM_ENV": "e1", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run([sys.executable, "-m", "daskflow", "run", "sec_flow.py", "run"],
                            cwd=workdir, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    run = Flow("SecFlow").latest_run
    # Metaflow 2.19.39 gave the task exactly these
    assert run["start"].task.data.env == {"user": "u1", "pass_word": VALUE, "port": "5432",
                                          "a_b": "x", "plain_token": "tok123",
                                          "MY_TOKEN": "tok123"}
    assert run["start"].task.data.from_env and run["end"].task.data.clean
    # the values are in no record or log, only in the artifact the step made of them
    stored = [p for p in (workdir / ".daskflow").rglob("*")
              if p.is_file() and VALUE.encode() in p.read_bytes()]
    assert len(stored) == 1 and "_data" in stored[0].parts
    assert VALUE not in result.stdout + result.stderr


def _plan(decorator, env_vars=None):
    graph = FlowGraph.__new__(FlowGraph)
    graph.file = "flow.py"
    node = type("Node", (), {"lineno": 7})()
    plan = StepPlan("start", node, graph, (decorator,))
    plan.env.update(env_vars or {})
    decorator.plan(step=plan)
    return plan


@pytest.mark.parametrize("sources,message", [
    # Metaflow 2.19.39's error line for the same sources (it fails the task; daskflow
    # refuses the run before it starts, naming the step)
    (["aws-secrets-manager.db/creds", "aws-secrets-manager.dup"],
     "Secret 'dup (aws-secrets-manager)' will inject 'user' as env var, and it is also "
     "added by 'db/creds (aws-secrets-manager)'"),
    (["aws-secrets-manager.homesecret"],
     "Secret 'homesecret (aws-secrets-manager)' will inject 'HOME' as env var, but it "
     "already exists in env"),
    (["aws-secrets-manager.plain-token"],
     "Failed to retrieve secret 'plain-token': Secret string could not be parsed as JSON"),
    (["aws-secrets-manager.listsecret"],
     "Failed to retrieve secret 'listsecret': Secret string is a JSON, but not an object "
     "(dict-like) - actual type <class 'list'>."),
    (["aws-secrets-manager.mfsecret"],
     "Found disallowed env var name 'METAFLOW_X' (starts with 'METAFLOW_')."),
    (["vault.x"], "Unknown secrets backend type vault (available types: "
                  "aws-secrets-manager, env)"),
])
def test_bad_secrets_are_refused_with_metaflows_words(aws, sources, message):
    with pytest.raises(SecretError) as refused:
        _plan(secrets(sources=sources))
    text = str(refused.value)
    assert text.startswith("flow.py:7 (step 'start'): ") and message in text
    assert "\n" not in text and "u1" not in text


def test_a_json_secret_is_one_reference_per_key(aws):
    plan = _plan(secrets(sources=["aws-secrets-manager.db/creds"]))
    assert plan.secrets == {
        "user": SecretRef("aws-secretsmanager", "db/creds#user"),
        "pass_word": SecretRef("aws-secretsmanager", "db/creds#pass-word"),
        "port": SecretRef("aws-secretsmanager", "db/creds#port"),
        "a_b": SecretRef("aws-secretsmanager", "db/creds#a.b")}
    assert _plan(secrets(sources=["aws-secrets-manager.homesecret"], allow_override=True)
                 ).secrets == {"HOME": SecretRef("aws-secretsmanager", "homesecret#HOME")}


@pytest.mark.fast
@pytest.mark.parametrize("kwargs,message", [
    ({"sources": [42]}, "@secrets sources items must be either a string or a dict"),
    ({"sources": [{"type": "env"}]}, "Bad @secrets specification - 'id' must be a string"),
    ({"sources": ["x"]}, "No default secrets backend type configured, but needed by "
                         "@secrets. Set METAFLOW_DEFAULT_SECRETS_BACKEND_TYPE."),
    ({"sources": [], "role": "arn:aws:iam::1:role/r"}, "assumes no role"),
])
def test_malformed_sources_are_refused_when_the_flow_is_defined(monkeypatch, kwargs, message):
    monkeypatch.delenv("METAFLOW_DEFAULT_SECRETS_BACKEND_TYPE", raising=False)
    with pytest.raises(StepDecoratorError, match=message):
        secrets(**kwargs)


@pytest.mark.fast
def test_env_sources_and_the_default_type(monkeypatch):
    monkeypatch.setenv("METAFLOW_DEFAULT_SECRETS_BACKEND_TYPE", "env")
    monkeypatch.setenv("DB_PASSWORD", VALUE)
    plan = _plan(secrets(sources=["DB_PASSWORD", {"type": "env", "id": "DB_PASSWORD",
                                                  "options": {"env_var_name": "PG"}}]))
    assert plan.secrets == {"DB_PASSWORD": SecretRef("env", "DB_PASSWORD"),
                            "PG": SecretRef("env", "DB_PASSWORD")}
    with pytest.raises(SecretError, match="'MODE' as env var, but it already exists in env"):
        _plan(secrets(sources=[{"type": "env", "id": "DB_PASSWORD",
                                "options": {"env_var_name": "MODE"}}]), env_vars={"MODE": "1"})


@pytest.mark.fast
def test_secrets_and_environment_of_one_name_are_refused(monkeypatch):
    monkeypatch.setenv("TOKEN", VALUE)
    env_plan = _plan(environment(secrets=["TOKEN"]))
    with pytest.raises(SecretError, match="also added by @environment"):
        secrets(sources=["env.TOKEN"]).plan(step=env_plan)


def test_the_with_option_takes_secrets(monkeypatch, workdir):
    monkeypatch.setenv("DF_SECRET", VALUE)
    flow = Path(__file__).parents[1] / "flows" / "linear_params.py"
    result = subprocess.run([sys.executable, str(flow), "run", "--with",
                             "secrets:sources=['env.DF_SECRET']"], cwd=workdir,
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
