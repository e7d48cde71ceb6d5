"""The price of a worker-hour from ``daskflow.cluster.prices``: each backend's ``price`` (nothing started)."""

from __future__ import annotations

import dask.config
import pytest

from daskflow.clusters import ResourceRequest, get_backend
from daskflow.clusters.pricing import cost
from daskflow.runtime.events import cluster_usage_lines

GiB = 2**30


@pytest.mark.fast
def test_a_rate_per_worker_core_memory_and_gpu() -> None:
    rates = {"worker-hour": 0.5, "cpu-hour": 0.25, "gib-hour": 0.01, "gpu-hour": 2.0}
    with dask.config.set({"daskflow.cluster.prices.local": rates}):
        price = get_backend("local").price(ResourceRequest(cpu=4, memory=8 * GiB))
    assert price == pytest.approx(0.5 + 4 * 0.25 + 8 * 0.01)
    assert get_backend("local").price(ResourceRequest(cpu=4)) == 0  # the default
    assert cost(7200, 1.5) == 3.0 and cost(None, 1.5) is None and cost(10, None) is None


@pytest.mark.fast
def test_aws_defaults_fargate_by_task_size_and_ec2_by_instance_type() -> None:
    pytest.importorskip("dask_cloudprovider")
    # 0.5 vCPU / 3000 MiB rounds up to Fargate's 512 / 3072
    fargate = get_backend("aws-fargate").price(ResourceRequest(cpu=0.5, memory=3000 * 2**20))
    assert fargate == pytest.approx(0.5 * 0.04048 + 3 * 0.004445)
    ec2 = get_backend("aws-ec2", instance_type="m5.large")
    assert ec2.price(ResourceRequest()) == 0.096
    unknown = get_backend("aws-ec2", instance_type="x9.huge")
    assert unknown.price(ResourceRequest()) is None
    assert unknown.hourly_price(ResourceRequest()) is None


@pytest.mark.fast
def test_the_summary_says_when_there_is_no_price() -> None:
    [line] = cluster_usage_lines([{"name": "step-1", "backend": "aws-ec2", "step": "fit",
                                   "worker_seconds_held": 10.0, "worker_seconds_used": 0.0,
                                   "cost": None}])
    assert line == "Cluster step-1 (aws-ec2, fit): 10.0 worker-s held, 0.0 used (0%), " \
                   "no price configured"
