"""Data parallelism inside a step: ``parallel_map`` and helpers for big tables.

>>> from daskflow.collections import parallel_map
>>> parallel_map(lambda x: x * x, range(4))                        # doctest: +SKIP
[0, 1, 4, 9]
"""

from .dataframes import (
    DatasetError,
    Partition,
    cluster_client,
    load_partition,
    partitions,
    read_dataset,
)
from .parallel import (
    ParallelMapError,
    ParallelMapInputError,
    parallel_imap_unordered,
    parallel_map,
)

__all__ = [
    "DatasetError",
    "ParallelMapError",
    "ParallelMapInputError",
    "Partition",
    "cluster_client",
    "load_partition",
    "parallel_imap_unordered",
    "parallel_map",
    "partitions",
    "read_dataset",
]
