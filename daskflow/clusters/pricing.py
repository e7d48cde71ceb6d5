"""What a worker-hour costs, from the price tables in ``daskflow.cluster.prices``.

An estimate for the run record, the report, ``run.clusters`` and the end-of-run
summary: the cluster's worker-seconds held (metered) times the price of one
worker-hour of its size. Workers only: a remote scheduler (an ECS task, an EC2
instance, a pod) is not counted.

The price of a worker-hour is each backend's own (``ClusterBackend.price``). The
base class's is the table of the backend's name: ``worker-hour + cpu-hour * cores
+ gib-hour * GiB + gpu-hour * GPUs`` (memory: the request's, else the backend's
default), :func:`table_price`. A backend priced another way says so in its own
folder (EC2 instance types, Fargate task sizes: ``aws/pricing.py``).
"""

from __future__ import annotations

from typing import Any

from .. import config
from .request import GiB, ResourceRequest


def price_table(name: str) -> dict[str, Any] | None:
    """``daskflow.cluster.prices.<name>``, its keys as in YAML; None: no table."""
    table = config.get(f"cluster.prices.{name}", None)
    if not isinstance(table, dict):
        return None
    return {str(k).replace("_", "-"): v for k, v in table.items()}  # as from env variables


def table_price(table: dict[str, Any], *, cores: float, memory: int | None,
                gpus: int) -> float:
    """One worker-hour of a worker of this size at ``table``'s rates.

    >>> table_price({"worker-hour": 0.5, "cpu-hour": 0.25}, cores=4, memory=None, gpus=0)
    1.5
    """
    return (float(table.get("worker-hour") or 0)
            + float(table.get("cpu-hour") or 0) * cores
            + float(table.get("gib-hour") or 0) * (memory or 0) / GiB
            + float(table.get("gpu-hour") or 0) * gpus)


def priced_memory(backend: Any, request: ResourceRequest) -> int | None:
    """A worker's bytes: the request's, else the backend's default; None: neither."""
    if request.memory is not None:
        return request.memory
    try:
        return int(backend.worker_memory(request))
    except Exception:  # noqa: BLE001  no default memory setting (local): price it as none
        return None


def cost(worker_seconds: float | None, price: float | None) -> float | None:
    """``worker_seconds`` at ``price`` per worker-hour, rounded to 1/10000 of the currency."""
    if worker_seconds is None or price is None:
        return None
    return round(worker_seconds / 3600 * price, 4)


def currency() -> str:
    return str(config.get("cluster.prices.currency", None) or "")
