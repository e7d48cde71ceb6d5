"""dask-cloudprovider's AWS cluster classes, as daskflow starts them.

Imported by the aws backends when they start a cluster, not before. On top of
dask-cloudprovider's classes: a bound on the whole start (:class:`BoundedStart`;
its own waits have none), ``dask scheduler`` / ``dask worker`` commands (the
``dask-scheduler`` script is gone since distributed 2026.6), ECS tasks stopped at
once on close, and an EC2 scheduler wait that does not block the event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from dask_cloudprovider.aws import EC2Cluster, ECSCluster, FargateCluster
from dask_cloudprovider.aws import ec2 as ec2_module
from dask_cloudprovider.aws import ecs as ecs_module
from dask_cloudprovider.generic.vmcluster import VMCluster
from distributed.deploy.spec import SpecCluster

from ..bounded_start import BoundedStart
from .resources import detach_finalizers
from .secrets import SecretTaskDefinitions


def _dask_cli(command: list[str], old: str, new: list[str]) -> list[str]:
    """``dask-worker ...`` as ``dask worker ...``."""
    return [*new, *command[1:]] if command[0] == old else command


class DaskCLIScheduler(ecs_module.Scheduler):
    """An ECS scheduler task that runs ``dask scheduler``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._overrides["command"] = _dask_cli(
            self._overrides["command"], "dask-scheduler", ["dask", "scheduler"])


class DaskCLIWorker(ecs_module.Worker):
    """An ECS worker task that runs ``dask worker``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._overrides["command"] = _dask_cli(
            self._overrides["command"], "dask-worker", ["dask", "worker"])


class ECSCommands(SpecCluster):
    """Sits between ECSCluster and SpecCluster: swaps in the task classes above."""

    async def _start(self) -> None:
        spec = getattr(self, "scheduler_spec", None)
        if spec and spec.get("cls") is ecs_module.Scheduler:
            spec["cls"] = DaskCLIScheduler
        if getattr(self, "new_spec", None) and self.new_spec.get("cls") is ecs_module.Worker:
            self.new_spec["cls"] = DaskCLIWorker  # worker_spec shares this dict
        await super()._start()

    async def _close(self) -> None:
        # SpecCluster retires workers first, which waits for the tasks they run: the
        # step is over (or gave up, as @timeout does), so stop their ECS tasks now
        workers = [w for w in getattr(self, "workers", {}).values()
                   if getattr(w, "task", None)]
        await asyncio.gather(*(w.close() for w in workers), return_exceptions=True)
        await super()._close()


class PollingEC2Scheduler(ec2_module.EC2Scheduler):
    async def wait_for_scheduler(self) -> None:
        """dask-cloudprovider's blocks the event loop on connect(): poll without blocking."""
        address = (self.external_address or self.address).split("://")[1]
        host, port = address.rsplit(":", 1)
        while True:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 2)
                writer.close()
                return
            except (OSError, asyncio.TimeoutError):
                await asyncio.sleep(1)


class EC2Scheduler(VMCluster):
    """Sits between EC2Cluster and VMCluster: swaps in the scheduler class above."""

    async def _start(self) -> None:
        self.scheduler_class = PollingEC2Scheduler
        await super()._start()


class BoundedAWSStart(BoundedStart):
    """What a bounded start means on AWS: its scheduler was never reachable."""

    kind = "AWS"

    def forget(self) -> None:
        detach_finalizers(self)

    def start_timeout_advice(self) -> str:
        return ("(its scheduler never became reachable). Check the security groups and "
                "subnets (the scheduler's port 8786 must be reachable from here). ")


class DaskflowFargateCluster(SecretTaskDefinitions, BoundedAWSStart, FargateCluster, ECSCommands):
    kind = "AWS Fargate"


class DaskflowECSCluster(SecretTaskDefinitions, BoundedAWSStart, ECSCluster, ECSCommands):
    kind = "AWS ECS"


class DaskflowEC2Cluster(BoundedAWSStart, EC2Cluster, EC2Scheduler):
    kind = "AWS EC2"


#: the launch type's cluster class
CLUSTER_CLASSES: dict[str, type] = {"fargate": DaskflowFargateCluster,
                                    "ecs": DaskflowECSCluster,
                                    "ec2": DaskflowEC2Cluster}
