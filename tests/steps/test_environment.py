"""@environment: values for one step's tasks only, concurrent tasks never see them."""

from __future__ import annotations

import pytest

from daskflow import Flow
from daskflow.steps import StepDecoratorError, environment, parse_decospec


def test_two_concurrent_branches_hold_their_own_values(run_flow, workdir):
    # One worker process with two threads: the branches run as threads of one process,
    # where os.environ is shared, so only the runtime's isolation keeps them apart.
    result = run_flow("environment_flow.py", "run", env={
        "DASK_DASKFLOW__LOCAL__N_WORKERS": "1", "DASK_DASKFLOW__LOCAL__THREADS_PER_WORKER": "2"})
    assert result.returncode == 0, result.stderr
    run = Flow("EnvironmentFlow").latest_run
    join = run["join"].task.data
    assert join.seen == {"a": ["alpha"], "b": ["beta"], "plain": [None]}
    assert join.only_a == {"a": "1", "b": None}  # values are text, as in a process environment
    assert join.child == "alpha"                  # subprocesses of the step inherit them
    assert join.after is None                     # restored after the step
    # a task with its own values ran alone in its process
    spans = join.spans
    for env_step in ("a", "b"):
        began, ended = spans[env_step]
        for other, (o_began, o_ended) in spans.items():
            if other != env_step:
                assert ended <= o_began or o_ended <= began, (env_step, other, spans)
    big = run["big"].task.data
    assert big.big_seen == "gamma"
    assert big.workers_started_with == ["gamma"]  # the step cluster's workers got it
    assert run["end"].task.data.end_seen is None


def test_with_environment_on_every_step_parses_dicts_with_commas(run_flow, workdir):
    result = run_flow("linear_params.py", "run", "--with",
                      "environment:vars={'A_ONE': '1', 'B_TWO': '2'}")
    assert result.returncode == 0, result.stderr
    spec = parse_decospec("environment:vars={'A_ONE': '1', 'B_TWO': '2'}")
    assert spec.vars == {"A_ONE": "1", "B_TWO": "2"}


@pytest.mark.fast
@pytest.mark.parametrize("spec,expected", [
    ("retry:times=2,minutes_between_retries=0", {"times": 2, "minutes_between_retries": 0}),
    ('environment:vars={"A": "1", "B": "x,y"}', {"vars": {"A": "1", "B": "x,y"}}),
    ("resources:memory=16GiB,cpu=2", {"memory": "16GiB", "cpu": 2}),
    ("catch:var=err,print_exception=false", {"var": "err", "print_exception": False}),
])
def test_with_is_parsed_as_metaflow_parses_it(spec, expected):
    decorator = parse_decospec(spec)
    for key, value in expected.items():
        assert getattr(decorator.options, key) == value


@pytest.mark.fast
def test_bad_environment_values_are_refused_at_definition():
    with pytest.raises(StepDecoratorError, match="must be a dict"):
        environment(vars=["A=1"])
    with pytest.raises(StepDecoratorError, match="not an environment variable name"):
        environment(vars={"A=B": "1"})
    with pytest.raises(StepDecoratorError, match="unknown argument 'var'"):
        environment(var={"A": "1"})


def test_local_retries_come_at_once(run_flow, workdir):
    # @retry's default wait (2 minutes) is for remote schedulers; Metaflow's local
    # runtime retries at once, and so does a local cluster.
    result = run_flow("failing.py", "run", "--with", "retry:times=3")
    assert result.returncode == 1
    task = Flow("FailingFlow").latest_run["explode"].task
    assert task.attempts == [0, 1, 2, 3]
    from daskflow import Task
    starts = [Task(task.pathspec, attempt=a).record["started_at"] for a in task.attempts]
    assert max(b - a for a, b in zip(starts, starts[1:])) < 60  # not the 120 s wait
