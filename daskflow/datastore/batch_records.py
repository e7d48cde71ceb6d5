"""The records of a batch of short splits: held while the batch runs, committed as one object.

A batch of splits (``runtime/batch.py``) runs several tasks of one step in one
Dask task.  Writing each split's claim, logs and done record as files of their
own would cost more than the splits; :class:`BatchRecords` holds them instead and
:meth:`~BatchRecords.commit` writes them all as one batch object (``batches.py``),
which every reader then sees exactly as per-task files.  Small artifacts of such
splits travel inside their records (``inline_artifacts``).  Records of any other
step, or of the same step's tasks outside the batch, go to the stored records as
usual.

A batch that dies before its commit leaves no record here; a ``journal`` (given by
the runtime) hears of each attempt as it starts and ends, so that someone else can
write what the batch could not (``runtime/fanout.py``).  A batch looks once for batch
objects holding its tasks (Dask computes a committed batch again when its result was
lost with its worker: its splits' stored results stand); only a batch that finds some
also lists the step's task folders, a second request on an object store that a
batch sent for the first time does not need.

>>> records = BatchRecords(store.stored, "17", "work", ["4", "5"])  # doctest: +SKIP
>>> attempt = records.claim_attempt("17", "work", "4", {})        # held
>>> records.commit()                                               # one object
"""

from __future__ import annotations

from typing import Any

from . import batches
from .tasks import StoredRecords, TaskRecords


class BatchRecords(TaskRecords):
    """The records of the tasks ``task_ids`` of ``step``, held until :meth:`commit`."""

    defers = True
    inline_artifacts = True

    def __init__(self, stored: StoredRecords, run_id: str, step: str,
                 task_ids: list[str], journal: Any = None) -> None:
        self._stored = stored
        self._journal = journal  # .started({task_id, attempt, start}), .ended(entry)
        self._run_id = run_id
        self._step = step
        self._index = stored.step_batches(run_id, step)
        self._index.prefetch(task_ids)  # one look for what earlier runs of it stored
        # attempts that ran alone have a folder of files: one look for which do, where
        # this batch ran before
        ran_before = any(self._index.by_task.get(t) for t in task_ids)
        self._folders = set(stored.task_folders(run_id, step)) if ran_before else set()
        self._entries: dict[tuple[str, int], dict[str, Any]] = {}
        self._pending: dict[str, set[int]] = {}

    def commit(self) -> bytes | None:
        """Write the batch object; return its splits' done records packed for the join
        (``batches.pack_results``), None when there were none."""
        entries = list(self._entries.values())
        self._stored.write_batch(self._run_id, self._step, entries)
        self._entries.clear()
        self._pending.clear()
        return batches.pack_results(entries) if entries else None

    def _mine(self, run_id: str, step: str) -> bool:
        return run_id == self._run_id and step == self._step

    def _held(self, run_id: str, step: str, task_id: str,
              attempt: int) -> dict[str, Any] | None:
        return self._entries.get((task_id, attempt)) if self._mine(run_id, step) else None

    def _stored_attempts(self, task_id: str) -> set[int]:
        found = set(self._index.attempts_of(task_id, fresh=False))
        if task_id in self._folders:
            found |= self._stored.file_attempts(self._run_id, self._step, task_id)
        return found

    def list_attempts(self, run_id: str, step: str, task_id: str) -> list[int]:
        if not self._mine(run_id, step):
            return self._stored.list_attempts(run_id, step, task_id)
        return sorted(self._stored_attempts(task_id) | self._pending.get(task_id, set()))

    def claim_attempt(self, run_id: str, step: str, task_id: str,
                      record: dict[str, Any]) -> int:
        if not self._mine(run_id, step):
            return self._stored.claim_attempt(run_id, step, task_id, record)
        attempt = max(self.list_attempts(run_id, step, task_id), default=-1) + 1
        record["attempt"] = attempt
        self._pending.setdefault(task_id, set()).add(attempt)
        entry = self._entries[(task_id, attempt)] = {"task_id": task_id, "attempt": attempt,
                                                     "start": dict(record)}
        if self._journal is not None:
            self._journal.started(entry)
        return attempt

    def write_log(self, run_id: str, step: str, task_id: str, attempt: int,
                  stream: str, text: str) -> None:
        entry = self._held(run_id, step, task_id, attempt)
        if entry is None:
            self._stored.write_log(run_id, step, task_id, attempt, stream, text)
        elif text:
            entry[stream] = text

    def write_done(self, run_id: str, step: str, task_id: str, attempt: int,
                   record: dict[str, Any]) -> None:
        entry = self._held(run_id, step, task_id, attempt)
        if entry is None:
            self._stored.write_done(run_id, step, task_id, attempt, record)
        else:
            entry["done"] = record
            if self._journal is not None:
                self._journal.ended(entry)

    def read_done(self, run_id: str, step: str, task_id: str,
                  attempt: int) -> dict[str, Any] | None:
        entry = self._held(run_id, step, task_id, attempt)
        if entry is not None:
            return entry.get("done")
        if self._mine(run_id, step) and attempt not in self._stored_attempts(task_id):
            return None
        return self._stored.read_done(run_id, step, task_id, attempt)

    def read_start(self, run_id: str, step: str, task_id: str, attempt: int) -> dict[str, Any]:
        entry = self._held(run_id, step, task_id, attempt)
        if entry is not None:
            return entry["start"]
        return self._stored.read_start(run_id, step, task_id, attempt)

    def read_log(self, run_id: str, step: str, task_id: str, attempt: int, stream: str) -> str:
        entry = self._held(run_id, step, task_id, attempt)
        if entry is not None:
            return entry.get(stream, "")
        return self._stored.read_log(run_id, step, task_id, attempt, stream)
