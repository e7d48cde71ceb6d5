"""The local backend: ``distributed.LocalCluster`` worker processes on this machine."""

from __future__ import annotations

import logging
import os
from typing import Any

from .. import config
from ..exceptions import ClusterError
from .base import ClusterBackend, ResourceRequest


def machine_memory() -> int:
    from distributed.system import MEMORY_LIMIT
    return int(MEMORY_LIMIT)


class LocalBackend(ClusterBackend):
    """Worker processes on this machine, sized by the request.

    >>> LocalBackend().cluster_kwargs(ResourceRequest(cpu=2, memory=2**30, workers=2))
    ... # doctest: +ELLIPSIS
    {'n_workers': 2, 'threads_per_worker': 2, 'memory_limit': 1073741824, ...}
    """

    name = "local"

    def cluster_kwargs(self, request: ResourceRequest) -> dict[str, Any]:
        memory = request.memory if request.memory is not None \
            else config.get("local.memory-limit")
        return {
            "n_workers": request.workers,
            "threads_per_worker": request.threads,
            "memory_limit": memory,
            "processes": True,
            "dashboard_address": config.get("local.dashboard-address"),
            "silence_logs": logging.CRITICAL,  # task errors are reported by daskflow
        }

    def check(self, request: ResourceRequest) -> None:
        cores = os.cpu_count() or 1
        memory = machine_memory()
        if request.memory is not None and request.memory * request.workers > memory:
            raise ClusterError(
                f"The local backend cannot give {request.workers} worker(s) of "
                f"{request.memory / 2**30:.1f} GiB: this machine has "
                f"{memory / 2**30:.1f} GiB. Ask for less, or run the step on a backend "
                f"with bigger machines (e.g. @resources(..., backend='slurm')).")
        if request.gpu:
            raise ClusterError(
                f"The local backend cannot give {request.gpu} GPU(s): no GPU support here "
                f"(needs NVIDIA GPUs and dask-cuda). Run the step on a GPU backend.")
        if request.threads > cores:
            raise ClusterError(
                f"The local backend cannot give a worker {request.threads} cores: this "
                f"machine has {cores}. Ask for fewer, or use a bigger backend.")

    def make_cluster(self, request: ResourceRequest) -> Any:
        from distributed import LocalCluster
        return LocalCluster(**self.cluster_kwargs(request))
