"""What a worker-hour costs, from the price table in ``daskflow.cluster.prices``.

An estimate for the run record, the report, ``run.clusters`` and the end-of-run
summary: the cluster's worker-seconds held (metered) times the price of one
worker-hour of its size. Workers only: a remote scheduler (an ECS task, an EC2
instance, a pod) is not counted.

- ``aws-ec2``: the worker's instance type's on-demand price (a type not in the
  table: no estimate);
- ``aws-fargate``: per vCPU-hour and GiB-hour of the Fargate task size the
  request is rounded up to;
- any other backend: ``worker-hour + cpu-hour * cores + gib-hour * GiB +
  gpu-hour * GPUs`` (memory: the request's, else the backend's default).
"""

from __future__ import annotations

import math
from typing import Any

from .. import config
from .request import GiB, MiB, ResourceRequest


def hourly_price(backend: Any, request: ResourceRequest) -> float | None:
    """One worker-hour of ``request`` on ``backend``; None when the table has no price.

    >>> from daskflow.clusters import get_backend
    >>> import dask
    >>> with dask.config.set({"daskflow.cluster.prices.local.cpu-hour": 0.5}):
    ...     hourly_price(get_backend("local"), ResourceRequest(cpu=4))
    2.0
    """
    name = getattr(backend, "name", "")
    launch = getattr(backend, "launch_type", None)
    if name.startswith("aws") and launch:
        name = f"aws-{launch}"
    table = config.get(f"cluster.prices.{name}", None)
    if not isinstance(table, dict):
        return None
    table = {str(k).replace("_", "-"): v for k, v in table.items()}  # as from env variables
    if name == "aws-ec2":
        price = table.get(backend.instance_type(request).name)
        return None if price is None else float(price)
    cores, memory = float(request.threads), _memory(backend, request)
    if name == "aws-fargate":
        from .aws.sizing import fargate_size
        units, mib = fargate_size(request.cpu, math.ceil((memory or GiB) / MiB))
        cores, memory = units / 1024, mib * MiB
    return (float(table.get("worker-hour") or 0)
            + float(table.get("cpu-hour") or 0) * cores
            + float(table.get("gib-hour") or 0) * (memory or 0) / GiB
            + float(table.get("gpu-hour") or 0) * request.gpu)


def cost(worker_seconds: float | None, price: float | None) -> float | None:
    """``worker_seconds`` at ``price`` per worker-hour, rounded to 1/10000 of the currency."""
    if worker_seconds is None or price is None:
        return None
    return round(worker_seconds / 3600 * price, 4)


def currency() -> str:
    return str(config.get("cluster.prices.currency", None) or "")


def _memory(backend: Any, request: ResourceRequest) -> int | None:
    if request.memory is not None:
        return request.memory
    try:
        return int(backend.worker_memory(request))
    except Exception:  # noqa: BLE001  no default memory setting (local): price it as none
        return None
