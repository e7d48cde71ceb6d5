"""How big an AWS worker is: Fargate's valid task sizes, and sizes in words.

The EC2 instance types daskflow chooses from are in :mod:`.instances`.
"""

from __future__ import annotations

import math

from ..errors import ResourceRequestError
from ..request import GiB, MiB, ResourceRequest, format_bytes
from .instances import InstanceType

#: Valid Fargate (Linux) task sizes: CPU units -> the memory sizes in MiB it allows.
#: Source: AWS ECS developer guide, "Task CPU and memory" (Fargate), as of 2025-09.
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}
#: Ephemeral storage every Fargate task gets (dask-cloudprovider cannot ask for more).
FARGATE_DISK = 20 * GiB


def fargate_size(cpu: float, memory_mib: int) -> tuple[int, int]:
    """The smallest valid Fargate (CPU units, MiB) with at least ``cpu`` vCPUs and ``memory_mib``.

    >>> fargate_size(1, 4096), fargate_size(0.25, 300), fargate_size(1, 30000)
    ((1024, 4096), (256, 512), (4096, 30720))
    """
    units = cpu_units(cpu)
    for size, memories in FARGATE_SIZES.items():
        if size < units:
            continue
        fitting = [m for m in memories if m >= memory_mib]
        if fitting:
            return size, fitting[0]
    biggest = max(FARGATE_SIZES)
    raise ResourceRequestError(
        f"Fargate cannot give a task {cpu:g} vCPU and {memory_mib} MiB: its largest task "
        f"is {biggest // 1024} vCPU with {max(FARGATE_SIZES[biggest]) // 1024} GiB, and "
        f"{biggest // 1024} vCPU allows {min(FARGATE_SIZES[biggest]) // 1024}-"
        f"{max(FARGATE_SIZES[biggest]) // 1024} GiB. Ask for less, or run the step on "
        f"EC2 instances: @resources(..., backend='aws-ec2').")


def cpu_units(cpu: float) -> int:
    """vCPUs as ECS CPU units (1024 a vCPU), rounded up.

    >>> cpu_units(1), cpu_units(0.25), cpu_units(1.0001)
    (1024, 256, 1025)
    """
    return math.ceil(cpu * 1024 - 1e-9)


def describe_size(request: ResourceRequest, memory: int) -> str:
    """``2 threads, 8 GiB, 1 GPU``: one worker, as the terminal says it."""
    gpu = f", {request.gpu} GPU{'s' if request.gpu != 1 else ''}" if request.gpu else ""
    return f"{request.threads} thread{'s' if request.threads != 1 else ''}, " \
           f"{format_bytes(memory)}{gpu}"


def describe_type(t: InstanceType) -> str:
    """``4 vCPU, 16 GiB, 1 x T4``: an instance type, as the terminal says it."""
    gpu = f", {t.gpus} x {t.gpu_model}" if t.gpus else ""
    return f"{t.vcpus} vCPU, {format_bytes(t.memory_mib * MiB)}{gpu}"

