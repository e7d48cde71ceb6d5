"""EC2 instance types daskflow chooses from for the ``aws-ec2`` and ``aws-ecs`` backends.

Source: the EC2 ``DescribeInstanceTypes`` answers that moto 5.2.5 ships in
``moto/ec2/resources/instance_types.json.gz`` (moto's maintainers regenerate it
from the real API; taken 2026-11, current generation, x86_64, not bare metal),
for a chosen set of families:

- general purpose m6i, m5, m7i; compute c6i, c5, c7i; memory r6i, r5, r7i;
- GPU g4dn (NVIDIA T4), g6 (L4), g5 (A10G), p4d (A100), p5 (H100).

Prices are not part of the table. "Smallest" means: fewest GPUs; among GPU
types, the cheaper GPU model first (the order of :data:`FAMILY_PREFERENCE`:
T4, L4, A10G, A100, H100); then fewest vCPUs, then least memory; ties between
types of the same size go to the family listed first (m6i before m5 before
m7i: the same size of m6i costs no more than m5's and less than m7i's on the
on-demand price list).

Each row is ``VCpuInfo.DefaultVCpus``, ``MemoryInfo.SizeInMiB`` and the sum of
``GpuInfo.Gpus[].Count`` of that file's entry; to check one::

    python -c "import json, gzip, os, moto; d = json.load(gzip.open(os.path.join(
        os.path.dirname(moto.__file__), 'ec2/resources/instance_types.json.gz')));
        print(d['g5.xlarge']['VCpuInfo'], d['g5.xlarge']['GpuInfo'])"

A user can restrict the choice with ``daskflow.cluster.aws.instance-families``
or name one type with ``daskflow.cluster.aws.instance-type``.
"""

from __future__ import annotations

from typing import NamedTuple


class InstanceType(NamedTuple):
    """One EC2 instance type: vCPUs, memory in MiB, NVIDIA GPUs and their model."""

    name: str
    vcpus: int
    memory_mib: int
    gpus: int
    gpu_model: str

    @property
    def family(self) -> str:
        return self.name.split(".")[0]


#: Ties between types of the same size go to the family listed first.
FAMILY_PREFERENCE = ("m6i", "c6i", "r6i", "m5", "c5", "r5", "m7i", "c7i", "r7i",
                     "g4dn", "g6", "g5", "p4d", "p5")

INSTANCE_TYPES: tuple[InstanceType, ...] = (
    InstanceType("m6i.large", 2, 8192, 0, ""),
    InstanceType("m6i.xlarge", 4, 16384, 0, ""),
    InstanceType("m6i.2xlarge", 8, 32768, 0, ""),
    InstanceType("m6i.4xlarge", 16, 65536, 0, ""),
    InstanceType("m6i.8xlarge", 32, 131072, 0, ""),
    InstanceType("m6i.12xlarge", 48, 196608, 0, ""),
    InstanceType("m6i.16xlarge", 64, 262144, 0, ""),
    InstanceType("m6i.24xlarge", 96, 393216, 0, ""),
    InstanceType("m6i.32xlarge", 128, 524288, 0, ""),
    InstanceType("m5.large", 2, 8192, 0, ""),
    InstanceType("m5.xlarge", 4, 16384, 0, ""),
    InstanceType("m5.2xlarge", 8, 32768, 0, ""),
    InstanceType("m5.4xlarge", 16, 65536, 0, ""),
    InstanceType("m5.8xlarge", 32, 131072, 0, ""),
    InstanceType("m5.12xlarge", 48, 196608, 0, ""),
    InstanceType("m5.16xlarge", 64, 262144, 0, ""),
    InstanceType("m5.24xlarge", 96, 393216, 0, ""),
    InstanceType("m7i.large", 2, 8192, 0, ""),
    InstanceType("m7i.xlarge", 4, 16384, 0, ""),
    InstanceType("m7i.2xlarge", 8, 32768, 0, ""),
    InstanceType("m7i.4xlarge", 16, 65536, 0, ""),
    InstanceType("m7i.8xlarge", 32, 131072, 0, ""),
    InstanceType("m7i.12xlarge", 48, 196608, 0, ""),
    InstanceType("m7i.16xlarge", 64, 262144, 0, ""),
    InstanceType("m7i.24xlarge", 96, 393216, 0, ""),
    InstanceType("m7i.48xlarge", 192, 786432, 0, ""),
    InstanceType("c6i.large", 2, 4096, 0, ""),
    InstanceType("c6i.xlarge", 4, 8192, 0, ""),
    InstanceType("c6i.2xlarge", 8, 16384, 0, ""),
    InstanceType("c6i.4xlarge", 16, 32768, 0, ""),
    InstanceType("c6i.8xlarge", 32, 65536, 0, ""),
    InstanceType("c6i.12xlarge", 48, 98304, 0, ""),
    InstanceType("c6i.16xlarge", 64, 131072, 0, ""),
    InstanceType("c6i.24xlarge", 96, 196608, 0, ""),
    InstanceType("c6i.32xlarge", 128, 262144, 0, ""),
    InstanceType("c5.large", 2, 4096, 0, ""),
    InstanceType("c5.xlarge", 4, 8192, 0, ""),
    InstanceType("c5.2xlarge", 8, 16384, 0, ""),
    InstanceType("c5.4xlarge", 16, 32768, 0, ""),
    InstanceType("c5.9xlarge", 36, 73728, 0, ""),
    InstanceType("c5.12xlarge", 48, 98304, 0, ""),
    InstanceType("c5.18xlarge", 72, 147456, 0, ""),
    InstanceType("c5.24xlarge", 96, 196608, 0, ""),
    InstanceType("c7i.large", 2, 4096, 0, ""),
    InstanceType("c7i.xlarge", 4, 8192, 0, ""),
    InstanceType("c7i.2xlarge", 8, 16384, 0, ""),
    InstanceType("c7i.4xlarge", 16, 32768, 0, ""),
    InstanceType("c7i.8xlarge", 32, 65536, 0, ""),
    InstanceType("c7i.12xlarge", 48, 98304, 0, ""),
    InstanceType("c7i.16xlarge", 64, 131072, 0, ""),
    InstanceType("c7i.24xlarge", 96, 196608, 0, ""),
    InstanceType("c7i.48xlarge", 192, 393216, 0, ""),
    InstanceType("r6i.large", 2, 16384, 0, ""),
    InstanceType("r6i.xlarge", 4, 32768, 0, ""),
    InstanceType("r6i.2xlarge", 8, 65536, 0, ""),
    InstanceType("r6i.4xlarge", 16, 131072, 0, ""),
    InstanceType("r6i.8xlarge", 32, 262144, 0, ""),
    InstanceType("r6i.12xlarge", 48, 393216, 0, ""),
    InstanceType("r6i.16xlarge", 64, 524288, 0, ""),
    InstanceType("r6i.24xlarge", 96, 786432, 0, ""),
    InstanceType("r6i.32xlarge", 128, 1048576, 0, ""),
    InstanceType("r5.large", 2, 16384, 0, ""),
    InstanceType("r5.xlarge", 4, 32768, 0, ""),
    InstanceType("r5.2xlarge", 8, 65536, 0, ""),
    InstanceType("r5.4xlarge", 16, 131072, 0, ""),
    InstanceType("r5.8xlarge", 32, 262144, 0, ""),
    InstanceType("r5.12xlarge", 48, 393216, 0, ""),
    InstanceType("r5.16xlarge", 64, 524288, 0, ""),
    InstanceType("r5.24xlarge", 96, 786432, 0, ""),
    InstanceType("r7i.large", 2, 16384, 0, ""),
    InstanceType("r7i.xlarge", 4, 32768, 0, ""),
    InstanceType("r7i.2xlarge", 8, 65536, 0, ""),
    InstanceType("r7i.4xlarge", 16, 131072, 0, ""),
    InstanceType("r7i.8xlarge", 32, 262144, 0, ""),
    InstanceType("r7i.12xlarge", 48, 393216, 0, ""),
    InstanceType("r7i.16xlarge", 64, 524288, 0, ""),
    InstanceType("r7i.24xlarge", 96, 786432, 0, ""),
    InstanceType("r7i.48xlarge", 192, 1572864, 0, ""),
    InstanceType("g4dn.xlarge", 4, 16384, 1, "T4"),
    InstanceType("g4dn.2xlarge", 8, 32768, 1, "T4"),
    InstanceType("g4dn.4xlarge", 16, 65536, 1, "T4"),
    InstanceType("g4dn.8xlarge", 32, 131072, 1, "T4"),
    InstanceType("g4dn.12xlarge", 48, 196608, 4, "T4"),
    InstanceType("g4dn.16xlarge", 64, 262144, 1, "T4"),
    InstanceType("g6.xlarge", 4, 16384, 1, "L4"),
    InstanceType("g6.2xlarge", 8, 32768, 1, "L4"),
    InstanceType("g6.4xlarge", 16, 65536, 1, "L4"),
    InstanceType("g6.8xlarge", 32, 131072, 1, "L4"),
    InstanceType("g6.12xlarge", 48, 196608, 4, "L4"),
    InstanceType("g6.16xlarge", 64, 262144, 1, "L4"),
    InstanceType("g6.24xlarge", 96, 393216, 4, "L4"),
    InstanceType("g6.48xlarge", 192, 786432, 8, "L4"),
    InstanceType("g5.xlarge", 4, 16384, 1, "A10G"),
    InstanceType("g5.2xlarge", 8, 32768, 1, "A10G"),
    InstanceType("g5.4xlarge", 16, 65536, 1, "A10G"),
    InstanceType("g5.8xlarge", 32, 131072, 1, "A10G"),
    InstanceType("g5.12xlarge", 48, 196608, 4, "A10G"),
    InstanceType("g5.16xlarge", 64, 262144, 1, "A10G"),
    InstanceType("g5.24xlarge", 96, 393216, 4, "A10G"),
    InstanceType("g5.48xlarge", 192, 786432, 8, "A10G"),
    InstanceType("p4d.24xlarge", 96, 1179648, 8, "A100"),
    InstanceType("p5.4xlarge", 16, 262144, 1, "H100"),
    InstanceType("p5.48xlarge", 192, 2097152, 8, "H100"),
)


def smallest_fitting(vcpus: float, memory_mib: int, gpus: int,
                     families: list[str] | None = None,
                     table: tuple[InstanceType, ...] = INSTANCE_TYPES) -> InstanceType | None:
    """The smallest type with at least ``vcpus``, ``memory_mib`` and ``gpus``; None if none.

    A request without GPUs never gets a GPU type (they cost several times more).

    >>> smallest_fitting(2, 4096, 0).name
    'c6i.large'
    >>> smallest_fitting(4, 20000, 0).name
    'r6i.xlarge'
    >>> smallest_fitting(1, 4096, 1).name
    'g4dn.xlarge'
    """
    def preference(t: InstanceType) -> int:
        return FAMILY_PREFERENCE.index(t.family) if t.family in FAMILY_PREFERENCE else 99

    fits = [t for t in table
            if t.vcpus >= vcpus and t.memory_mib >= memory_mib and t.gpus >= gpus
            and (gpus > 0) == (t.gpus > 0)
            and (not families or t.family in families)]
    if not fits:
        return None
    # among GPU types the GPU model is what costs: a cheaper model first, then the size
    return min(fits, key=lambda t: (t.gpus, preference(t) if t.gpus else 0, t.vcpus,
                                    t.memory_mib, preference(t)))


def largest(table: tuple[InstanceType, ...] = INSTANCE_TYPES, *, gpus: bool = False,
            families: list[str] | None = None) -> InstanceType | None:
    """The type with the most memory (then vCPUs) among GPU or CPU-only types: for messages."""
    pool = [t for t in table if (t.gpus > 0) == gpus and (not families or t.family in families)]
    return max(pool, key=lambda t: (t.memory_mib, t.vcpus, t.gpus)) if pool else None


def by_name(name: str) -> InstanceType | None:
    return next((t for t in INSTANCE_TYPES if t.name == name), None)
