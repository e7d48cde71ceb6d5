"""Task records: what each attempt of a task wrote, behind one interface.

An attempt is claimed first (its start record: when, where, which process), its
captured output is kept, and its done record (status, error, artifact index) is
written last: a task counts as finished only once that record exists, so a killed
task never leaves anything that looks complete.

:class:`TaskRecords` is what the runtime and the client call; two kinds of
records implement it:

- :class:`StoredRecords`: one file per record in the task's folder, written as
  it comes.  Its reads also find the records that batches of splits committed
  (``batches.py``), so every reader sees a batched task exactly as a task of
  its own folder.
- :class:`~daskflow.datastore.batch_records.BatchRecords`: the records of a batch
  of short splits, held until the batch ends and committed as one object.

>>> records = StoredRecords(files, layout)                      # doctest: +SKIP
>>> attempt = records.claim_attempt("17", "start", "1", {"host": "h"})
>>> records.write_done("17", "start", "1", attempt, {"status": "ok"})
>>> records.read_done("17", "start", "1", attempt)["status"]
'ok'
"""

from __future__ import annotations

import json
import threading
import uuid
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from . import batches
from .files import FsspecFiles, LocalFiles
from .layout import BATCHES, Layout, attempt_of_start, batch_object, in_run
from .names import check_step_name, is_id, is_step_name

TASK_LISTINGS = 4096   # task folders of settled runs kept as listed (a few hundred KB)


class TaskRecords(ABC):
    """The records of task attempts (see the module's docstring)."""

    defers = False             # records are held until :meth:`commit`
    inline_artifacts = False   # small artifacts travel inside the records

    @abstractmethod
    def claim_attempt(self, run_id: str, step: str, task_id: str,
                      record: dict[str, Any]) -> int:
        """Claim the next attempt number of a task (attempts that died keep theirs);
        ``record`` (the start record) gets its ``attempt``."""

    def claim_first(self, run_id: str, step: str, task_id: str,
                    record: dict[str, Any]) -> bool:
        """Claim attempt 0 of a task whose attempts are all claimed in its own folder,
        without looking for others (``record`` gets its ``attempt``); False when it is
        claimed already (and by default: records that cannot tell take the listing way,
        :meth:`claim_attempt`)."""
        return False

    @abstractmethod
    def write_log(self, run_id: str, step: str, task_id: str, attempt: int,
                  stream: str, text: str) -> None:
        """Keep an attempt's captured ``stdout`` or ``stderr`` (nothing when empty)."""

    @abstractmethod
    def write_done(self, run_id: str, step: str, task_id: str, attempt: int,
                   record: dict[str, Any]) -> None:
        """The attempt's last record: once it is there, the attempt has ended."""

    @abstractmethod
    def list_attempts(self, run_id: str, step: str, task_id: str) -> list[int]:
        """The task's claimed attempts, in order."""

    @abstractmethod
    def read_start(self, run_id: str, step: str, task_id: str, attempt: int) -> dict[str, Any]:
        """An attempt's start record; ``FileNotFoundError`` for an unclaimed one."""

    @abstractmethod
    def read_done(self, run_id: str, step: str, task_id: str,
                  attempt: int) -> dict[str, Any] | None:
        """An attempt's done record, or None while it has none (running, or died)."""

    @abstractmethod
    def read_log(self, run_id: str, step: str, task_id: str, attempt: int, stream: str) -> str:
        """An attempt's captured output, ``""`` when there is none."""

    def commit(self) -> bytes | None:
        """Write what is held; return the done records written, packed
        (``batches.pack_results``).  Records written as they come hold nothing: None."""
        return None


class StoredRecords(TaskRecords):
    """Records as files in each task's folder, written as they come; reads find the
    records of batch objects too.  Also lists a run's steps and a step's tasks."""

    def __init__(self, files: LocalFiles | FsspecFiles, layout: Layout) -> None:
        self.files = files
        self.layout = layout
        self._batches: dict[tuple[str, str], batches.StepBatches] = {}
        self._settled: set[str] = set()
        #: the last task whose attempts were listed, with them (its claim starts there)
        self._listed: tuple[tuple[str, str, str], list[int]] | None = None
        #: task folders of settled runs, as listed (the last TASK_LISTINGS of them)
        self._task_listings: OrderedDict[tuple[str, str, str], list[str]] = OrderedDict()
        self._task_listings_lock = threading.Lock()

    # -- listings keep only what is theirs: a stray file (.DS_Store, a note, a copy)
    #    in a run or step folder is skipped, never taken for a step or task

    def list_steps(self, run_id: str) -> list[str]:
        return [name for name in self.files.folders(self.layout.run(run_id))
                if is_step_name(name) and not name.startswith("_")]

    def list_tasks(self, run_id: str, step: str) -> list[str]:
        own = self.task_folders(run_id, step)
        index = self.step_batches(run_id, step)
        batched = index.task_ids() - set(own)
        index.folders = set(own)  # until the next look at the batches
        return own + sorted(batched, key=int)

    def batched_tasks(self, run_id: str, step: str,
                      skip: set[str]) -> Iterator[tuple[str, dict[int, dict[str, Any]]]]:
        """Each task of ``step`` held in its batch objects, with its attempts' entries
        (``start``, ``done``, logs), read one object at a time and not kept; tasks in
        ``skip`` (those with a folder of their own) are left to the per-task reads."""
        for entries in self.step_batches(run_id, step).each_object():
            by_task: dict[str, dict[int, dict[str, Any]]] = {}
            for entry in entries:
                task_id = str(entry["task_id"])
                if task_id not in skip:
                    by_task.setdefault(task_id, {})[int(entry["attempt"])] = entry
            yield from by_task.items()

    def batch_objects(self, run_id: str, step: str
                      ) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Each batch object of ``step`` as stored, one at a time and not kept: what its
        entries share and its entries (``batches.whole`` makes a record whole)."""
        return self.step_batches(run_id, step).each_raw()

    def task_id_spans(self, run_id: str, step: str) -> list[tuple[int, int]]:
        """The step's task ids as sorted, merged spans ``(first, last)``, from the names
        of its batch objects (a batch's splits are consecutive tasks) and of its task
        folders: two listings, no record read, for a step of a million tasks too."""
        index = self.step_batches(run_id, step)
        index.refresh()
        spans = sorted([(first, last) for first, last, _ in index.starts]
                       + [(int(t), int(t)) for t in self.task_folders(run_id, step)
                          if t.isdigit()])
        merged: list[tuple[int, int]] = []
        for first, last in spans:
            if merged and first <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], last))
            else:
                merged.append((first, last))
        return merged

    def task_folders(self, run_id: str, step: str) -> list[str]:
        """The step's tasks that have a folder of their own (a task that ran alone)."""
        names = self.files.folders(self.layout.step(run_id, step))
        if run_id in self._settled and BATCHES not in names:
            self.step_batches(run_id, step).looked = True  # none: no look for them
        return [name for name in names if is_id(name)]

    def settle(self, run_id: str) -> None:
        """The run has ended, its records no longer change (the run report, a finished
        run's reader): each step's batch objects are looked for once, and not at all
        where the step's folder holds none (on an object store, requests saved)."""
        self._settled.add(run_id)
        for (run, _), index in self._batches.items():
            index.settled = index.settled or run == run_id

    # -- records --------------------------------------------------------------------------

    def claim_attempt(self, run_id: str, step: str, task_id: str,
                      record: dict[str, Any]) -> int:
        # the next after those the task's history just listed, where it did (a task runs
        # again: no second look, no try of each attempt it has), else after its batched
        listed, self._listed = self._listed, None
        known = listed[1] if listed is not None and listed[0] == (run_id, step, task_id) \
            else self.step_batches(run_id, step).attempts_of(task_id)
        attempt = max(known, default=-1) + 1
        while True:
            record["attempt"] = attempt
            if self.files.create_exclusive(self.layout.start(run_id, step, task_id, attempt),
                                           _claim(record)):
                self._has_folder(run_id, step, task_id)
                return attempt
            attempt += 1

    def claim_first(self, run_id: str, step: str, task_id: str,
                    record: dict[str, Any]) -> bool:
        record["attempt"] = 0
        if not self.files.create_exclusive(self.layout.start(run_id, step, task_id, 0),
                                           _claim(record)):
            return False
        self._has_folder(run_id, step, task_id)
        return True

    def _has_folder(self, run_id: str, step: str, task_id: str) -> None:
        """A claim made the task's folder: the step's index of folders, if it has one,
        learns of it."""
        folders = self.step_batches(run_id, step).folders
        if folders is not None:
            folders.add(task_id)

    def write_done(self, run_id: str, step: str, task_id: str, attempt: int,
                   record: dict[str, Any]) -> None:
        self.files.write_json(self.layout.done(run_id, step, task_id, attempt), record)

    def list_attempts(self, run_id: str, step: str, task_id: str) -> list[int]:
        index = self.step_batches(run_id, step)
        batched = index.attempts_of(task_id)
        if batched:
            if index.folders is None:  # one listing of the step, not one of each task
                index.folders = set(self.task_folders(run_id, step))
            if task_id not in index.folders:
                return sorted(batched)  # a batched task with no folder of its own
        found = sorted(self.file_attempts(run_id, step, task_id) | set(batched))
        self._listed = ((run_id, step, task_id), found)  # for a claim that follows
        return found

    def file_attempts(self, run_id: str, step: str, task_id: str) -> set[int]:
        """The attempts of a task claimed in its own folder (not in a batch object)."""
        found = (attempt_of_start(name) for name in self._task_listing(run_id, step, task_id))
        return {attempt for attempt in found if attempt is not None}

    def _task_listing(self, run_id: str, step: str, task_id: str) -> list[str]:
        """The names in a task's folder. A settled run's folder is listed once: the run
        report and a finished run's reader look in it for the attempts, then for their
        cards (on an object store, two requests fewer for each task read)."""
        key = (run_id, step, task_id)
        if run_id in self._settled:
            with self._task_listings_lock:
                names = self._task_listings.get(key)
                if names is not None:
                    self._task_listings.move_to_end(key)
                    return names
        names = self.files.listdir(self.layout.task(run_id, step, task_id))
        if run_id in self._settled:
            with self._task_listings_lock:
                self._task_listings[key] = names
                while len(self._task_listings) > TASK_LISTINGS:
                    self._task_listings.popitem(last=False)
        return names

    def _batched(self, run_id: str, step: str, task_id: str,
                 attempt: int) -> dict[str, Any] | None:
        return self.step_batches(run_id, step).entry(task_id, attempt)

    def read_start(self, run_id: str, step: str, task_id: str, attempt: int) -> dict[str, Any]:
        entry = self._batched(run_id, step, task_id, attempt)
        if entry is not None:
            return entry["start"]
        record = self.files.read_json(self.layout.start(run_id, step, task_id, attempt))
        record.pop("claim", None)  # its claim's token: the claim's business only
        return record

    def read_done(self, run_id: str, step: str, task_id: str,
                  attempt: int) -> dict[str, Any] | None:
        entry = self._batched(run_id, step, task_id, attempt)
        if entry is not None:
            return entry.get("done")
        try:
            return self.files.read_json(self.layout.done(run_id, step, task_id, attempt))
        except FileNotFoundError:
            return None

    def write_log(self, run_id: str, step: str, task_id: str, attempt: int,
                  stream: str, text: str) -> None:
        if text:
            self.files.write(self.layout.log(run_id, step, task_id, attempt, stream),
                             text.encode("utf-8", "replace"))

    def read_log(self, run_id: str, step: str, task_id: str, attempt: int, stream: str) -> str:
        entry = self._batched(run_id, step, task_id, attempt)
        if entry is not None:
            return entry.get(stream, "")
        try:
            data = self.files.read(self.layout.log(run_id, step, task_id, attempt, stream))
        except FileNotFoundError:
            return ""
        return data.decode("utf-8", "replace")

    # -- batch objects ----------------------------------------------------------------------

    def step_batches(self, run_id: str, step: str) -> batches.StepBatches:
        """The index of a step's batch objects, kept for this store's life (they never
        change once written; new ones are found when a lookup misses)."""
        key = (run_id, step)
        found = self._batches.get(key)
        if found is None:
            made = batches.StepBatches(self.files,
                                       self.layout.batches(run_id, check_step_name(step)))
            made.settled = run_id in self._settled
            found = self._batches.setdefault(key, made)  # one index, whichever thread made it
        return found

    def write_batch(self, run_id: str, step: str, entries: list[dict[str, Any]],
                    common: dict[str, Any] | None = None) -> None:
        """Commit the records of a batch of splits, all at once (one object, atomic);
        ``common``: what the ``entries`` were made without (``batches.encode``)."""
        if not entries:
            return
        name = batch_object([e["task_id"] for e in entries])
        self.files.write(self.layout.batch(run_id, step, name),
                         batches.encode(entries, common))

    # -- other files kept with a task (performance reports, cards) ----------------------------

    def write_task_file(self, run_id: str, step: str, task_id: str, name: str,
                        data: bytes) -> str:
        """Keep a file with a task (atomic, like every write); ``name`` is one of
        ``layout.py``'s names.  Returns the file relative to the run's folder, which
        is how a task's record names it."""
        self.files.write(self.layout.task_file(run_id, step, task_id, name), data)
        return in_run(step, task_id, name)

    def task_file_names(self, run_id: str, step: str, task_id: str) -> set[str]:
        """The names of the files in a task's folder (one listing; none for a task that
        ran in a batch and kept nothing of its own)."""
        return set(self._task_listing(run_id, step, task_id))

    def read_task_file(self, run_id: str, step: str, task_id: str, name: str) -> bytes:
        """A file kept with a task; ``FileNotFoundError`` if there is none."""
        return self.files.read(self.layout.task_file(run_id, step, task_id, name))

    def task_file_location(self, run_id: str, step: str, task_id: str, name: str) -> str:
        """Where a file kept with a task is: a local path, or a URL on an object store."""
        return self.files.url(self.layout.task_file(run_id, step, task_id, name))


def _claim(record: dict[str, Any]) -> bytes:
    """A start record as its claim writes it: with a token of this claim's own, so that a
    create-only write tried again after its answer was lost knows its own record from
    another claim's with the same fields (``files.create_exclusive``)."""
    return json.dumps({**record, "claim": uuid.uuid4().hex}).encode()
