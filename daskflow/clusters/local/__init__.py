"""The local backend: ``distributed.LocalCluster`` worker processes on this machine.

Everything about it is in this folder: :mod:`.backend` (the request as
``LocalCluster``'s keyword arguments, dask-cuda for GPUs, this machine's size),
:mod:`.forkserver` (workers forked from a warm server instead of spawned) and
:mod:`._worker_preload` (what that server imports first).
"""

from .backend import (
    LocalBackend,
    default_request,
    machine_cores,
    machine_memory,
    visible_gpus,
)

__all__ = ["LocalBackend", "default_request", "machine_cores", "machine_memory",
           "visible_gpus"]
