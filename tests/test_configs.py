"""``Config`` / ``config_expr`` as Metaflow 2.19 reads them.

The expected values come from Metaflow 2.19.39 in a separate virtual environment: the
flow tests/flows/config_flow.py with ``from metaflow import ...`` instead of daskflow
(otherwise the same file) run as ``USER=ana python cfg_flow.py [--config ...] run`` and
read back with Metaflow's client; error texts from the same commands' stderr.
"""

from __future__ import annotations

import json
import pickle

import pytest

from daskflow import Config, ConfigValue, Flow, FlowSpec, Parameter, config_expr, \
    namespace, retry, step
from daskflow.configs import ConfigError, load_configs
from daskflow.steps import apply_configs
from daskflow.exceptions import FlowDefinitionError
from daskflow.parameters import resolve_parameters

DEFAULT = {"project": "cfg_proj", "alpha": 1, "mode": "fast", "nested": {"k": [1, 2]},
           "retries": 2}


def seen(cfg, alpha, mode, k, project):
    """What the start step records, as Metaflow 2.19.39 recorded it (`self.seen`)."""
    return {"cfg": cfg, "type": "ConfigValue", "alpha": alpha, "mode_env": mode,
            "upper": mode.upper(), "k": k, "plain": "just text", "plain_type": "str",
            "params": ["alpha", "cfg", "plain"], "branch": "user.ana",
            "mutate": "TypeError: ConfigValue is immutable"}, project


@pytest.fixture
def ana(monkeypatch):
    monkeypatch.setenv("USER", "ana")
    namespace(None)
    yield
    namespace("user:ana")


def _stored(workdir) -> tuple[dict, str]:
    run = Flow("CfgFlow").latest_run
    task = run["start"].task
    # Metaflow 2.19.39: the task's artifacts, and a config read back is a plain dict
    assert sorted(a.id for a in task.artifacts) == ["alpha", "cfg", "name", "plain", "seen"]
    assert type(task.data.cfg) is dict
    project = next(t for t in run.system_tags if t.startswith("project:"))
    return task.data.seen, project


def test_configs_from_defaults_values_and_files_as_metaflow(run_flow, workdir, ana):
    result = run_flow("config_flow.py", "run", env={"USER": "ana"})
    assert result.returncode == 0, result.stderr
    assert _stored(workdir) == seen(DEFAULT, 1, "fast", [1, 2], "project:cfg_proj")

    other = {"project": "other", "alpha": 7, "mode": "slow", "nested": {"k": [3]},
             "retries": 0}
    result = run_flow("config_flow.py", "--config-value", "cfg", json.dumps(other), "run",
                      env={"USER": "ana"})
    assert result.returncode == 0, result.stderr
    assert _stored(workdir) == seen(other, 7, "slow", [3], "project:other")

    from_file = {"project": "fromfile", "alpha": 3, "mode": "file", "nested": {"k": []},
                 "retries": 1}
    (workdir / "c.json").write_text(json.dumps(from_file))
    result = run_flow("config_flow.py", "--config", "cfg", "c.json", "run", "--alpha", "9",
                      env={"USER": "ana"})
    assert result.returncode == 0, result.stderr
    assert _stored(workdir) == seen(from_file, 9, "file", [], "project:fromfile")
    origin = Flow("CfgFlow").latest_run.id

    # resume keeps the origin's configs, and refuses new ones (Metaflow's rule)
    result = run_flow("config_flow.py", "resume", "start", env={"USER": "ana"})
    assert result.returncode == 0, result.stderr
    assert Flow("CfgFlow").latest_run.origin_run_id == origin
    assert _stored(workdir) == seen(from_file, 9, "file", [], "project:fromfile")
    refused = run_flow("config_flow.py", "--config-value", "cfg", "{}", "resume", "start")
    assert refused.returncode == 1
    assert "Cannot specify --config or --config-value with 'resume'" in refused.stderr

    shown = run_flow("config_flow.py", "--config", "cfg", "c.json", "show")
    assert "@retry(times=1) @environment(vars={'MODE': 'file', 'UPPER': 'FILE'}" in \
        shown.stdout


@pytest.mark.parametrize("args,message", [
    # Metaflow 2.19.39's messages for the same command lines (it exits with 2, a usage
    # error; daskflow with 1, as for every refused input)
    (["--config", "cfg", "c.json", "--config-value", "cfg", "{}"],
     "Cannot provide both a value and a file for the same configuration. Found such "
     "values for 'cfg'"),
    (["--config", "cfg", "missing.json"],
     "Bad values passed for configuration options: configuration file 'missing.json' "
     "could not be read for 'cfg'"),
    (["--config-value", "cfg", "{bad"],
     "Bad values passed for configuration options: configuration value for 'cfg' "
     "(--config-value) is not valid JSON: Expecting property name enclosed in double "
     "quotes: line 1 column 2 (char 1)"),
    (["--config-value", "nope", "{}"], "CfgFlow has no config 'nope' (its configs: cfg, "
                                       "plain)"),
    (["--config-value", "cfg", "{}"], "config_flow.py:15: @retry: The config expression "
                                      "'cfg.retries' could not be evaluated: KeyError"),
])
def test_bad_configs_are_refused_in_one_line(run_in_process, workdir, args, message):
    (workdir / "c.json").write_text("{}")
    result = run_in_process("config_flow.py", *args, "run")
    assert result.returncode == 1
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (workdir / ".daskflow").exists()


# -- the engine, offline -------------------------------------------------------------


@pytest.mark.fast
def test_a_config_value_reads_as_metaflow_s_and_never_changes():
    value = ConfigValue({"a": {"b": [1, {"c": 2}]}})
    assert value.a.b[1].c == 2 and value["a"]["b"][0] == 1
    assert isinstance(value, dict) and json.loads(json.dumps(value)) == value.to_dict()
    assert value == {"a": {"b": [1, {"c": 2}]}} and pickle.loads(pickle.dumps(value)) == value
    for change in (lambda: setattr(value, "x", 1), lambda: value.update(x=1),
                   lambda: value.__setitem__("x", 1), lambda: value.pop("a")):
        with pytest.raises(TypeError, match="ConfigValue is immutable"):
            change()


class Configured(FlowSpec):
    cfg = Config("cfg", default_value={"times": 2, "opts": {"times": 4}, "a": 0.5})
    text = Config("text", default_value="raw", plain=True)
    yaml = Config("yaml", default_value="k: [1, 2]", parser="metaflow.yaml_parser")
    alpha = Parameter("alpha", default=cfg.a)

    @retry(times=cfg.times)
    @step
    def start(self):
        self.next(self.end)

    @retry(**cfg.opts)
    @step
    def end(self):
        pass


@pytest.mark.fast
def test_decorators_and_defaults_wait_for_the_configs(monkeypatch):
    assert repr(Configured.start.decorators[0]) == "@retry(times=config_expr('cfg.times'))"
    loaded = load_configs(Configured)
    assert loaded == {"cfg": {"times": 2, "opts": {"times": 4}, "a": 0.5}, "text": "raw",
                      "yaml": {"k": [1, 2]}}
    apply_configs(Configured, loaded)
    assert Configured.start.decorators[0].options.times == 2
    assert Configured.end.decorators[0].options.times == 4  # from **cfg.opts
    assert resolve_parameters(Configured, {"alpha": "0.25"}) == {"alpha": 0.25}  # a float

    monkeypatch.setenv("METAFLOW_FLOW_CONFIG_VALUE", json.dumps({"cfg": {"times": "x", "opts": {}}}))
    with pytest.raises(FlowDefinitionError, match=r"test_configs.py:13[0-9]: @retry.*'x'"):
        apply_configs(Configured, load_configs(Configured))
    apply_configs(Configured, loaded)


def shout(text):
    return text.upper() + "!"


@pytest.mark.fast
def test_config_expr_uses_the_module_s_names_and_fails_in_one_line():
    expr = config_expr("shout(cfg.mode)")
    assert expr.evaluate({"cfg": ConfigValue({"mode": "fast"})}) == "FAST!"
    with pytest.raises(ConfigError, match="'cfg.nope' could not be evaluated"):
        config_expr("cfg.nope").evaluate({"cfg": ConfigValue({})})


@pytest.mark.fast
def test_required_and_malformed_configs(tmp_path):
    class Needs(FlowSpec):
        cfg = Config("cfg", required=True)
        listed = Config("listed", default_value="[1, 2]")

        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            pass

    with pytest.raises(ConfigError) as caught:
        load_configs(Needs)
    assert str(caught.value) == (
        "Bad values passed for configuration options: missing configuration for 'cfg', "
        "configuration value for 'listed' (its default_value) is a list, not a mapping; "
        "pass plain=True to Config to keep any value.")
    with pytest.raises(ConfigError, match="only specify default or default_value"):
        Config("both", default="x.json", default_value={})


def test_configs_need_no_daskflow_api_in_a_metaflow_file(workdir):
    from .test_metaflow_files import daskflow_run
    (workdir / "mf_cfg.py").write_text(
        "from metaflow import Config, FlowSpec, step, config_expr, environment\n\n\n"
        "class MfCfg(FlowSpec):\n"
        "    cfg = Config('cfg', default_value={'mode': 'a'})\n\n"
        "    @environment(vars={'MODE': config_expr('cfg.mode')})\n"
        "    @step\n"
        "    def start(self):\n"
        "        import os\n"
        "        self.mode = (os.environ['MODE'], self.cfg.mode)\n"
        "        self.next(self.end)\n\n"
        "    @step\n"
        "    def end(self):\n"
        "        pass\n\n\n"
        "if __name__ == '__main__':\n"
        "    MfCfg()\n")
    result = daskflow_run(workdir, "mf_cfg.py", "--config-value", "cfg", '{"mode": "b"}',
                          "run")
    assert result.returncode == 0, result.stderr
    assert Flow("MfCfg").latest_run.data.mode == ("b", "b")
