"""What an AWS worker-hour costs: EC2 by instance type, Fargate by task size.

The tables are ``daskflow.cluster.prices.aws-ec2`` (instance type -> price of an
instance-hour; a type not in it: no estimate), ``aws-fargate`` (per vCPU-hour and
GiB-hour of the Fargate task size the request is rounded up to) and ``aws-ecs``
(the generic rates, on the request's own size). The aws backends' ``price`` is this.
"""

from __future__ import annotations

import math
from typing import Any

from ..pricing import price_table, priced_memory, table_price
from ..request import GiB, MiB, ResourceRequest
from .sizing import fargate_size


def worker_hour_price(backend: Any, request: ResourceRequest) -> float | None:
    """One worker-hour of ``request`` on ``backend`` (an aws backend); None: no price.

    >>> from daskflow.clusters import get_backend
    >>> worker_hour_price(get_backend("aws-ec2", instance_type="m5.large"),
    ...                   ResourceRequest())
    0.096
    """
    launch = backend.launch_type
    table = price_table(f"aws-{launch}")
    if table is None:
        return None
    if launch == "ec2":
        price = table.get(backend.instance_type(request).name)
        return None if price is None else float(price)
    cores, memory = float(request.threads), priced_memory(backend, request)
    if launch == "fargate":
        units, mib = fargate_size(request.cpu, math.ceil((memory or GiB) / MiB))
        cores, memory = units / 1024, mib * MiB
    return table_price(table, cores=cores, memory=memory, gpus=request.gpu)
