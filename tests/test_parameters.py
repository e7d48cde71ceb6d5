"""Parameter values from the environment and lists from ``separator=``, as Metaflow gives them."""

from __future__ import annotations

import pytest

from daskflow import Flow, Parameter
from daskflow.exceptions import ParameterError


def test_environment_gives_values_the_command_line_does_not(run_flow, workdir):
    result = run_flow("env_params.py", "run", "--count", "3", env={
        "METAFLOW_RUN_ALPHA": "2.5", "METAFLOW_RUN_LEARNING_RATE": "0.01",
        "METAFLOW_RUN_COUNT": "9", "METAFLOW_RUN_DATASET": "mnist"})
    assert result.returncode == 0, result.stderr
    run = Flow("EnvParamsFlow").latest_run
    # The option wins over the variable; a dash in the name is an underscore in it.
    assert run["start"].task.data.values == {
        "alpha": 2.5, "rate": 0.01, "count": 3, "items": ["p", "q"], "dataset": "mnist"}
    assert run.data.items == ["p", "q"] and run.data.dataset == "mnist"


def test_separator_splits_the_given_value_into_a_list(run_flow, workdir):
    result = run_flow("env_params.py", "run", "--items", "a,b,c", "--dataset", "x")
    assert result.returncode == 0, result.stderr
    assert Flow("EnvParamsFlow").latest_run.data.items == ["a", "b", "c"]
    result = run_flow("env_params.py", "run", "--dataset", "x",
                      env={"METAFLOW_RUN_ITEMS": "solo"})
    assert result.returncode == 0, result.stderr
    assert Flow("EnvParamsFlow").latest_run.data.items == ["solo"]


def test_current_parameter_names_lists_the_attributes_sorted(run_flow, workdir):
    result = run_flow("env_params.py", "run", "--dataset", "x")
    assert result.returncode == 0, result.stderr
    run = Flow("EnvParamsFlow").latest_run
    expected = ["alpha", "count", "dataset", "items", "rate"]
    assert run["start"].task.data.names == expected
    assert run.data.names_at_end == expected


def test_a_bad_value_in_the_environment_names_the_variable(run_flow, workdir):
    result = run_flow("env_params.py", "run", "--dataset", "x",
                      env={"METAFLOW_RUN_COUNT": "ten"})
    assert result.returncode == 1
    assert "Invalid value 'ten' for parameter 'count': expected int" in result.stderr
    assert "$METAFLOW_RUN_COUNT" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (workdir / ".daskflow").exists()


def test_a_missing_required_parameter_names_its_variable(run_flow, workdir):
    result = run_flow("env_params.py", "run")
    assert result.returncode == 1
    assert "Missing required parameter 'dataset'" in result.stderr
    assert "METAFLOW_RUN_DATASET" in result.stderr


def test_separator_is_only_for_string_parameters():
    with pytest.raises(ParameterError, match="Parameter 'n': separator= splits a string"):
        Parameter("n", default=1, separator=",")
    assert Parameter("tags", separator=";").resolve({"tags": "x;y"}) == ["x", "y"]
