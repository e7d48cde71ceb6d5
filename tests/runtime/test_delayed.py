"""A flow as a Dask object: ``MyFlow.delayed(...)`` computed on a real LocalCluster."""

from __future__ import annotations

import logging
from pathlib import Path

import dask
import pytest

from daskflow.exceptions import ParameterError, RunFailed
from daskflow.runtime import load_flow

FLOWS = Path(__file__).parents[1] / "flows"


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL) as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(2, timeout=60)
        yield cluster


@pytest.fixture
def flow_cls(workdir):
    return load_flow(FLOWS / "delayed_flow.py")


def test_two_flows_computed_together_run_at_once_on_that_cluster(cluster, flow_cls):
    first, second = dask.compute(flow_cls.delayed(alpha=1.0), flow_cls.delayed(alpha=2.0))

    assert first.id != second.id
    assert first.successful and second.successful
    assert (first.data.total, second.data.total) == (6.0, 12.0)
    assert first.parameters == {"alpha": 1.0}
    workers = set(cluster.scheduler_info["workers"])
    assert set(first.data.workers) | set(second.data.workers) <= workers
    # each driver left its worker's thread pool: with two one-thread workers both runs
    # went on at once, and neither waited for the other to end
    assert first.created_at < second.finished_at and second.created_at < first.finished_at


def test_a_flow_is_one_node_of_a_larger_graph(cluster, flow_cls):
    alpha = dask.delayed(lambda: 3.0)()
    run = flow_cls.delayed(alpha=alpha)
    total = dask.delayed(lambda r: r.data.total)(run)
    assert total.compute() == 18.0


def test_parameters_are_checked_when_the_value_is_made(workdir, flow_cls):
    with pytest.raises(ParameterError, match="Unknown parameter 'alpah'.*Did you mean 'alpha'"):
        flow_cls.delayed(alpah=1.0)
    with pytest.raises(ParameterError, match="Invalid value 'high' for parameter 'alpha'"):
        flow_cls.delayed(alpha="high")


def test_a_delayed_parameter_is_checked_when_known(cluster, flow_cls):
    run = flow_cls.delayed(alpha=dask.delayed(lambda: "high")())
    with pytest.raises(ParameterError, match="Invalid value 'high' for parameter 'alpha'"):
        run.compute()


def test_a_failing_flow_raises_from_compute(cluster, flow_cls):
    with pytest.raises(RunFailed, match=r"Run DelayedFlow/\d+ failed: task DelayedFlow/\d+/"
                                        r"start/\d+ raised ValueError: alpha must be at least "
                                        r"0, got -1.0") as info:
        flow_cls.delayed(alpha=-1.0).compute()
    assert info.value.run.successful is False


def test_without_a_distributed_scheduler_it_runs_as_run_does(workdir, flow_cls):
    run = flow_cls.delayed(alpha=1.0).compute(scheduler="sync")
    assert run.successful and run.data.total == 6.0
