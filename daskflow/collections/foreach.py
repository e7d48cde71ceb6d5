"""``foreach`` over a Dask collection: one split per partition, read where the split runs.

``self.events = dd.read_parquet(...)`` then ``self.next(self.per_part, foreach="events")``
fans out to one split per partition; in the split ``self.input`` is that partition,
loaded on the worker that runs the split the first time the split reads it.  The step
that fans out computes nothing: it stores, per split, a small :class:`ForeachPart`.

- A dask ``DataFrame`` or ``Series`` is an artifact stored as Parquet, one file per
  partition, written by the workers of the step's cluster as every DataFrame artifact
  is.  A split reads its partition's file (:class:`StoredPartition`): a pandas
  DataFrame or Series, dtypes and index as they were.
- A ``dask.bag.Bag`` or ``dask.array.Array`` is stored as its (lazy) graph, as before.
  Each split gets its partition's own tasks (:mod:`.graph_parts`) and computes them
  (:class:`GraphPartition`): a bag partition as a list; an array band, the blocks along
  axis 0, as one numpy array (an array chunked along other axes too has each band's
  blocks joined: ``arr.chunks[0]`` says how many splits, and their rows).

``--max-num-splits`` counts partitions.  :func:`~.dataframes.partitions` still gives a
list of small descriptors (each split calls :func:`~.dataframes.load_partition`), and a
``read_dataset(...)`` result is a dask DataFrame like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..inputs import ForeachPart
from .graph_parts import FRAME, GraphPart, collection_kind, partition_count, split_graph

if TYPE_CHECKING:
    from ..datastore import ArtifactRef, ArtifactStore

__all__ = ["CollectionFanOut", "GraphPartition", "StoredPartition", "fan_out_of"]


def fan_out_of(value: Any, var: str) -> CollectionFanOut | None:
    """A :class:`CollectionFanOut` when ``value`` is a dask collection, else None."""
    kind = collection_kind(value)
    return CollectionFanOut(value, kind, var) if kind is not None else None


class CollectionFanOut:
    """A dask collection a foreach fans out over; ``len()`` is its partition count.

    :meth:`parts` makes the foreach items once the step's artifacts are stored.
    """

    def __init__(self, value: Any, kind: str, var: str) -> None:
        self.value = value
        self.kind = kind
        self.var = var

    def __len__(self) -> int:
        return partition_count(self.value, self.kind)

    def parts(self, store: ArtifactStore, stored: ArtifactRef | None) -> list[ForeachPart]:
        """One item per partition; ``stored`` is the collection's artifact, if it is one."""
        if self.kind == FRAME:
            ref = stored if stored is not None else store.put_artifact(self.value, self.var)
            # The files as stored: dask may have fused partitions while writing them.
            count = store.get_artifact(ref, self.var).npartitions
            return [StoredPartition(self.var, ref, i, count) for i in range(count)]
        split = split_graph(self.value)
        shared = store.put_artifact(split.shared, f"{self.var} (shared tasks)") \
            if split.shared else None
        count = len(split.parts)
        return [GraphPartition(self.var, part, shared, count) for part in split.parts]


@dataclass(frozen=True)
class StoredPartition(ForeachPart):
    """Partition ``index`` of a dask DataFrame artifact: read from its Parquet file."""

    var: str
    ref: ArtifactRef
    index: int
    count: int

    def load(self, store: ArtifactStore) -> Any:
        frame = store.get_artifact(self.ref, self.var)  # lazy: reads the manifest only
        return frame.partitions[self.index].compute(scheduler="sync")

    def __str__(self) -> str:
        return f"{self.var} partition {self.index}"


@dataclass(frozen=True)
class GraphPartition(ForeachPart):
    """One partition of a bag, or one band of an array: its own tasks, computed here."""

    var: str
    part: GraphPart
    shared: ArtifactRef | None  # tasks that several partitions need, stored once
    count: int

    def load(self, store: ArtifactStore) -> Any:
        shared = store.get_artifact(self.shared, self.var) if self.shared is not None \
            else None
        return self.part.compute(shared)

    def __str__(self) -> str:
        what = "band" if self.part.kind == "array" else "partition"
        return f"{self.var} {what} {self.part.number}"
