"""The run options, declared once: the command line, ``Runner(...)``, ``async_run``'s
command line and ``delayed`` all agree with ``RUN_OPTIONS``."""

from __future__ import annotations

import inspect
from pathlib import Path

import click
import dask.config
import pytest

from daskflow import NBRunner, Runner
from daskflow.cli import build_cli
from daskflow.config import _DEFAULTS
from daskflow.exceptions import RunOptionError
from daskflow.runtime import load_flow
from daskflow.runtime.options import KEYWORDS, RUN_OPTIONS, command_line, delayed_options

pytestmark = pytest.mark.fast

FLOWS = Path(__file__).parents[1] / "flows"
LINEAR = FLOWS / "linear_params.py"


def cli_of(path: Path) -> click.Group:
    flow_cls = load_flow(path)
    return build_cli(flow_cls, flow_cls._flow_graph())


def options_of(command: click.Command) -> dict[str, click.Option]:
    return {p.name: p for p in command.params if isinstance(p, click.Option)}


def parse(command: click.Command, args: list[str]) -> dict:
    with command.make_context(command.name, list(args)) as ctx:
        return dict(ctx.params)


def test_run_and_resume_take_the_run_rows_with_their_flags_and_defaults() -> None:
    group = cli_of(LINEAR)
    rows = [o for o in RUN_OPTIONS if o.place == "run"]
    for name in ("run", "resume"):
        options = options_of(group.commands[name])
        for row in rows:
            option = options[row.name]
            assert option.opts == [row.flag]
            assert option.multiple == (row.kind == "many")
            assert option.is_flag == (row.kind == "flag")
            assert row.help in (option.help or "")
    # the flow's parameters come after them; nothing else is on `run`
    run_names = [n for n in options_of(group.commands["run"]) if not n.startswith("param_")]
    assert run_names == [row.name for row in rows]


def test_the_group_takes_the_group_rows_and_project_ones_only_with_a_project() -> None:
    plain, project = options_of(cli_of(LINEAR)), options_of(cli_of(FLOWS / "project_flow.py"))
    configs = options_of(cli_of(FLOWS / "config_flow.py"))  # a Config and a @project
    group_rows = [o for o in RUN_OPTIONS if o.place == "group"]
    assert [n for n in plain if n != "debug"] == [o.name for o in group_rows
                                                  if not o.project and not o.configs]
    assert [n for n in project if n != "debug"] == [o.name for o in group_rows
                                                    if not o.configs]
    assert [n for n in configs if n != "debug"] == [o.name for o in group_rows]


def test_runner_takes_every_keyword_row_with_its_default() -> None:
    signature = inspect.signature(Runner)
    keywords = {n: p for n, p in signature.parameters.items() if n != "flow"}
    assert list(keywords) == list(KEYWORDS)
    for row in RUN_OPTIONS:
        if row.keyword:
            assert keywords[row.name].kind is inspect.Parameter.KEYWORD_ONLY
            assert keywords[row.name].default == row.default
            assert f"{row.name} : " in Runner.__doc__
    # what the command line alone takes: the dashboard's port, set for its process
    assert [o.name for o in RUN_OPTIONS if not o.keyword] == ["dashboard_port"]


def test_what_the_command_line_parses_is_what_runner_takes() -> None:
    group = cli_of(LINEAR)
    given = parse(group.commands["run"], [
        "--max-workers", "3", "--max-num-splits", "7", "--tag", "a", "--tag", "b",
        "--cluster", "local", "--with", "retry:times=2", "--run-id-file", "id.txt"])
    given.update(parse(group, ["--quiet", "--datastore-root", "elsewhere", "run"]))
    options = {k: v for k, v in given.items()
               if not k.startswith("param_") and k not in ("debug", "dashboard_port")}
    runner = Runner(LINEAR, **options)
    assert (runner.max_workers, runner.max_num_splits, runner.tags, runner.cluster,
            runner.run_id_file) == (3, 7, ["a", "b"], "local", "id.txt")
    assert runner.datastore_root.endswith("elsewhere")
    assert runner.plans["start"].retries == 2


def test_async_runs_command_line_parses_back_to_the_same_options(tmp_path) -> None:
    runner = Runner(LINEAR, max_workers=2, tags=["x", "y z"], with_decorators=["retry"],
                    quiet=True, cluster="local", scheduler_address="tcp://10.0.0.1:8786",
                    run_id_file="ignored", datastore_root=str(tmp_path))
    group = cli_of(LINEAR)
    run_words = command_line(runner.options, "run")
    back = parse(group.commands["run"], run_words)
    for name in ("max_workers", "tags", "with_decorators", "cluster", "scheduler_address"):
        assert back[name] == runner.options[name], name
    assert back["run_id_file"] is None  # async_run gives the subprocess its own
    group_words = command_line(runner.options, "group")
    assert group_words == ["--quiet", "--datastore-root", str(tmp_path)]


def test_delayed_carries_the_options_a_worker_run_needs_and_no_others() -> None:
    runner = Runner(LINEAR, max_workers=2, tags=["t"], run_id_file="here",
                    scheduler_address="tcp://10.0.0.1:8786")
    carried = delayed_options(runner.options)
    assert carried["max_workers"] == 2 and carried["tags"] == ("t",)
    # a file of this machine, and this machine's scheduler: the worker's own instead
    assert not {"run_id_file", "scheduler_address", "client"} & set(carried)
    assert set(carried) == {o.name for o in RUN_OPTIONS if o.keyword and o.delayed}


def test_an_unknown_keyword_is_one_line_naming_the_allowed_ones() -> None:
    with pytest.raises(RunOptionError) as refused:
        Runner(LINEAR, max_worker=4)
    message = str(refused.value)
    assert "\n" not in message and isinstance(refused.value, TypeError)
    assert message.startswith("Runner() got an unknown option 'max_worker'. Did you mean "
                              "'max_workers'? Allowed: max_workers, max_num_splits, tags, ")
    with pytest.raises(RunOptionError, match="unknown option 'tag'. Did you mean 'tags'"):
        NBRunner(load_flow(LINEAR), tag=["x"])


@pytest.mark.parametrize("name, value, message", [
    ("max_workers", 0, "max_workers must be at least 1, got 0."),
    ("max_num_splits", -1, "max_num_splits must be at least 1, got -1."),
    ("share", 0, "share must be at least 1, got 0."),
])
def test_values_out_of_a_rows_bounds_are_refused(name, value, message) -> None:
    with pytest.raises(RunOptionError, match=message):
        Runner(LINEAR, **{name: value})


def test_an_option_not_given_comes_from_its_setting() -> None:
    with dask.config.set({"daskflow.run.max-workers": 5, "daskflow.run.max-num-splits": 9}):
        runner = Runner(LINEAR)
        assert (runner.max_workers, runner.max_num_splits) == (5, 9)
        assert Runner(LINEAR, max_workers=2).max_workers == 2  # given wins
    for row in RUN_OPTIONS:  # every row's setting is one the package ships a default for
        if row.config is not None:
            value = _DEFAULTS["daskflow"]
            for part in row.config.split("."):
                assert part in value, row.config
                value = value[part]


def test_the_running_page_lists_every_run_option() -> None:
    page = (Path(__file__).parents[2] / "docs" / "running.md").read_text()
    table = page[page.index("## Run options"):page.index("## How it runs")]
    for row in RUN_OPTIONS:
        if row.flag is not None:
            assert f"`{row.flag}" in table, row.flag
        if row.keyword:
            assert f"`{row.name}`" in table, row.name
