"""Data parallelism inside a step: helpers for big tables (and parallel_map).

>>> from daskflow.collections import read_dataset, partitions      # doctest: +SKIP
"""

from .dataframes import Partition, cluster_client, load_partition, partitions, read_dataset

__all__ = [
    "Partition",
    "cluster_client",
    "load_partition",
    "partitions",
    "read_dataset",
]
