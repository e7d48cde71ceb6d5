"""A join's inputs, read lazily and in bulk.

The parents of a join are :class:`TaskRef` values (one per input task) and, for a
batched foreach, :class:`SplitBatch` values naming many splits at once.  An input
of a batch is built only when the join reaches it, from the split's done record:
the one the batch handed over with its result (``SplitBatch.results``, unpacked once
per batch), or else the one in its batch object, which the store reads once.  So
``sum(i.x for i in inputs)`` over 100,000 splits reads no object at all, or a few
hundred, never 100,000 files, and small artifacts come inline with the records.
On an object store, the artifacts read from one input are read ahead for the next
(``read_ahead.py``).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from typing import Any

from ..datastore import ArtifactRef, ArtifactStore, unpack_results
from ..exceptions import DataNotFoundError
from ..inputs import InputView
from .context import SplitBatch, TaskRef
from .read_ahead import reading_ahead


class JoinInputs(Sequence[InputView]):
    """The input views of a join, in order, built when read."""

    def __init__(self, store: ArtifactStore, run_id: str, params: dict[str, ArtifactRef],
                 parents: tuple[Any, ...] | list[Any], reads: set[str] | None = None) -> None:
        self._reads = reads   # a cached join's names read (``daskflow.inputs``)
        self._store = store
        self._run_id = run_id
        self._params = params
        self._parents = list(parents)
        self._starts: list[int] = []
        self._unpacked: tuple[int, dict[tuple[str, int], dict[str, Any]]] | None = None
        total = 0
        for parent in self._parents:
            self._starts.append(total)
            total += len(parent.task_ids) if isinstance(parent, SplitBatch) else 1
        self._len = total

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._len))]
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError(f"input {index} out of range: the join has {self._len} inputs")
        slot = bisect.bisect_right(self._starts, index) - 1
        return self._view(self._parents[slot], index - self._starts[slot])

    def __iter__(self) -> Iterator[InputView]:
        """The inputs in order; on an object store, what the join read from an input is
        read ahead for the next ones (``read_ahead.py``)."""
        return reading_ahead(self._views(), self._store.read_ahead)

    def _views(self) -> Iterator[InputView]:
        for parent in self._parents:
            if isinstance(parent, SplitBatch):
                for position in range(len(parent.task_ids)):
                    yield self._view(parent, position)
            else:
                yield self._view(parent, 0)

    def _view(self, parent: Any, position: int) -> InputView:
        if isinstance(parent, SplitBatch):
            parent = self._split_ref(parent, position)
        return InputView(self._store, self._run_id, parent.step, parent.task_id,
                         parent.artifacts, parent.frames, self._reads)

    def refs(self) -> Iterator[tuple[dict[str, ArtifactRef], tuple[Any, ...]]]:
        """Each input's artifact refs and foreach frames, in order, without a view (a
        batch's splits from their records, each batch object read once)."""
        for parent in self._parents:
            if isinstance(parent, SplitBatch):
                for position in range(len(parent.task_ids)):
                    ref = self._split_ref(parent, position)
                    yield ref.artifacts, ref.frames
            else:
                yield parent.artifacts, parent.frames

    def _split_ref(self, batch: SplitBatch, position: int) -> TaskRef:
        task_id, attempt = batch.task_ids[position], batch.attempts[position]
        record = self._carried(batch).get((task_id, attempt))
        if record is None:
            record = self._store.read_done(self._run_id, batch.step, task_id, attempt)
        if record is None:
            raise DataNotFoundError(
                f"The record of input {batch.step}/{task_id} (attempt {attempt}) is missing "
                f"from run {self._run_id}: its batch object was removed. Rerun the run.")
        return TaskRef.from_record(batch.step, task_id, record, self._params)

    def _carried(self, batch: SplitBatch) -> dict[tuple[str, int], dict[str, Any]]:
        """The done records ``batch`` brought with it, unpacked once (the last batch's
        are kept: inputs are read in order)."""
        if batch.results is None:
            return {}
        if self._unpacked is None or self._unpacked[0] != id(batch):
            self._unpacked = (id(batch), unpack_results(batch.results))
        return self._unpacked[1]
