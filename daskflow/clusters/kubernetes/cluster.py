"""dask-kubernetes' ``KubeCluster`` with daskflow's bound on its whole start.

Imported by the kubernetes backend when it starts a cluster, not before:
``dask_kubernetes.operator`` is a heavy import.
"""

from __future__ import annotations

import asyncio

from dask_kubernetes.operator import KubeCluster

from ..bounded_start import BoundedStart


class DaskflowKubeCluster(BoundedStart, KubeCluster):
    """The operator acting, the scheduler pod and its service: all within the start timeout."""

    kind = "Kubernetes"

    def forget(self) -> None:
        # not closed: dask-kubernetes' atexit reaper would try, on a dead loop
        type(self)._instances.discard(self)

    def own_timeout(self, exc: BaseException) -> bool:
        # KubeCluster's own: no operator controller acted on the DaskCluster
        return isinstance(exc, asyncio.TimeoutError) and "actioned" in str(exc)

    def start_timeout_advice(self) -> str:
        return (f"(scheduler pod and service not ready). kubectl describe daskcluster "
                f"{self.name} says why. ")
