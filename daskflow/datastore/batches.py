"""The records of many small tasks, written together: one object per batch of splits.

A foreach of short splits runs several splits in one Dask task (``runtime/batch.py``).
Their records (``batch_records.py``) go to the step's folder as one object, written
whole (atomically) once the batch ends::

    <run>/<step>/_batches/<first>-<last>.<uid>.json
        {"version": 1, "entries": [
            {"task_id": "7", "attempt": 0, "start": {...}, "done": {...},
             "stdout": "...", "stderr": "..."}, ...]}

``first`` and ``last`` are the lowest and highest task id in it
(``layout.batch_object``), so a reader that wants one task reads only the objects
whose range holds it.  An entry always has
its ``done`` record (the batch is written when its splits have ended), so "a task
counts as finished only when its record is complete" holds per split.  Objects
never change once written: a reader indexes each once and keeps it.

>>> index = StepBatches(files, "<run>/<step>/_batches")   # doctest: +SKIP
>>> index.entry("7", 0)["done"]["status"]
'ok'
"""

from __future__ import annotations

import bisect
import gc
import json
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgpack

from .layout import batch_range

try:  # batch objects are a resume's and a join's bulk: orjson codes them several times
    import orjson  # faster; a stock worker may not have it, and writes the same JSON
except ImportError:  # pragma: no cover - daskflow's own install declares it
    orjson = None

VERSION = 1
#: entries kept made (a reader asks for a task's start, done and logs in a row)
RECENT = 64
#: batch objects a reader of a whole step fetches at once (concurrent reads on an object
#: store; a million splits' objects are a few hundred kilobytes each)
READ_TOGETHER = 8

Entry = dict[str, Any]


def encode(entries: list[Entry], common: dict[str, Any] | None = None) -> bytes:
    """The object's bytes.  What every split of the batch has alike (its host, its
    parents, the artifacts it passes on) is written once, under ``common``: found here,
    or given by a writer that made the entries without it (resume's clones)."""
    if common is not None:
        return _dumps({"version": VERSION, "common": common, "entries": entries})
    common = {}
    if len(entries) > 1:
        for part in ("start", "done"):
            shared = _shared([e.get(part) or {} for e in entries])
            if shared:
                common[part] = shared
                entries = [{**e, part: _without(e.get(part) or {}, shared)} for e in entries]
    return _dumps({"version": VERSION, "common": common, "entries": entries})


def _dumps(obj: dict[str, Any]) -> bytes:
    """``obj`` as JSON, anything JSON has no type for as its ``str``."""
    if orjson is not None:
        try:
            return orjson.dumps(obj, default=str, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:  # what orjson refuses (an integer past 64 bits): json writes it
            pass
    return json.dumps(obj, default=str).encode()


def _loads(raw: bytes) -> Any:
    if orjson is not None:
        try:
            return orjson.loads(raw)
        except ValueError:  # what only json writes (NaN)
            pass
    return json.loads(raw)


def pack_results(entries: list[Entry]) -> bytes:
    """The done records of a batch's entries, as the batch hands them to its join with
    its result (so the join need not read the object back): JSON as :func:`encode`
    writes it, compressed."""
    return zlib.compress(encode([{"task_id": e["task_id"], "attempt": e["attempt"],
                                  "done": e["done"]} for e in entries if e.get("done")]), 1)


def unpack_results(data: bytes) -> dict[tuple[str, int], dict[str, Any]]:
    """What :func:`pack_results` packed: each split's done record by task id and attempt."""
    obj = _loads(zlib.decompress(data))
    shared = (obj.get("common") or {}).get("done")
    return {(str(e["task_id"]), int(e["attempt"])): whole(e["done"], shared)  # type: ignore[misc]
            for e in obj.get("entries", [])}


def _shared(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The keys (and artifacts) with one value in every record."""
    first, rest = records[0], records[1:]
    shared = {k: v for k, v in first.items() if k != "artifacts"
              and all(k in r and r[k] == v for r in rest)}
    artifacts = first.get("artifacts")
    if isinstance(artifacts, dict):
        same = {n: ref for n, ref in artifacts.items()
                if all((r.get("artifacts") or {}).get(n) == ref for r in rest)}
        if same:
            shared["artifacts"] = same
    return shared


def _without(record: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in record.items() if k not in shared or k == "artifacts"}
    if "artifacts" in shared and "artifacts" in kept:
        kept["artifacts"] = {n: ref for n, ref in kept["artifacts"].items()
                             if n not in shared["artifacts"]}
    return kept


def whole(record: dict[str, Any] | None, shared: dict[str, Any] | None) -> dict[str, Any] | None:
    """An entry's ``start`` or ``done`` record whole, with what its object's entries
    share of it (``common[part]``, :meth:`StepBatches.each_raw`)."""
    if not shared or record is None:
        return record
    whole = {**shared, **record}
    if "artifacts" in shared:
        whole["artifacts"] = {**shared["artifacts"], **record.get("artifacts", {})}
    return whole


_packers = threading.local()


def packed(value: Any) -> bytes:
    """``value`` as msgpack bytes, by this thread's own packer: ``msgpack.packb`` makes
    a packer each call, five times the cost of packing a split's entry (a million of
    them are packed where a join or a resume reads a million splits)."""
    packer = getattr(_packers, "packer", None)
    if packer is None:
        packer = _packers.packer = msgpack.Packer()
    return packer.pack(value)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a batch object is decoded.

    Decoding makes thousands of small dicts and lists, none in a cycle; each few hundred
    set the collector off, and its full passes walk every object the reader holds, the
    entries of a wide step's earlier objects included: reading back 100,000 splits spent
    four fifths of its time in it (13 s; 3 s paused).
    """
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


class _Entry(dict):
    """One split's entry of a batch object: its ``start`` and ``done`` records take what
    the batch's splits share (``common``) when they are read, so a step of 100,000
    splits holds one copy of the shared part per batch, not one per split."""

    __slots__ = ("common",)

    def __init__(self, raw: Entry, common: dict[str, Any]) -> None:
        super().__init__(raw)
        self.common = common

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        return whole(value, self.common.get(key)) if key in ("start", "done") else value

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default


class StepBatches:
    """The batch objects of one step, indexed by task id and attempt.

    ``refresh`` lists the folder (one request); objects are read only when a
    lookup needs them (:meth:`attempts_of`: those whose range holds the task) or all
    at once (:meth:`task_ids`), and each is read once.  Each entry is held packed
    (msgpack bytes), and made a record again when asked for (:meth:`entry`): bytes are
    one object the garbage collector never walks, where the decoded entry is about ten,
    so a reader holding every split of a wide step keeps about half the memory and
    none of the collector's time.
    """

    def __init__(self, files: Any, folder: str) -> None:
        self.files = files
        self.folder = folder
        self.ranges: dict[str, tuple[int, int]] = {}   # object name -> task id range
        self.starts: list[tuple[int, int, str]] = []   # (first, last, name), sorted
        self.widest = 0                                # the largest last - first
        self.read: set[str] = set()
        self.folders: set[str] | None = None   # the step's task folders, when last listed
        # task id -> attempt -> (its object's number in ``commons``, its entry), packed
        self.by_task: dict[str, dict[int, bytes]] = {}
        self.commons: list[dict[str, Any]] = []        # what each object's entries share
        self.recent: dict[tuple[str, int], _Entry] = {}  # entries made again lately
        self.missed: set[tuple[str, int]] = set()     # attempts looked for again, once
        self.settled = False   # its run has ended: one look finds every object
        self.looked = False
        # readers in threads (the run report's pool, resume's, the client's read-ahead)
        # share an index: what adds to it holds this
        self.lock = threading.RLock()

    def refresh(self) -> None:
        """Learn of objects written since the last look (by other processes); a settled
        step's objects are all there at the first look."""
        with self.lock:
            if self.settled and self.looked:
                return
            self.looked = True
            self.files.refresh(self.folder)
            self.folders = None  # tasks may have folders of their own by now
            for name in self.files.listdir(self.folder):
                if name not in self.ranges:
                    found = batch_range(name)
                    if found is not None:
                        self.ranges[name] = found
                        bisect.insort(self.starts, (*found, name))
                        self.widest = max(self.widest, found[1] - found[0])

    def _decoded(self, name: str, raw: bytes | None = None) -> dict[str, Any] | None:
        """Batch object ``name`` decoded (None: gone), from ``raw`` where it was read."""
        if raw is None:
            try:
                raw = self.files.read(f"{self.folder}/{name}")
            except FileNotFoundError:
                return None
        with collector_paused():  # thousands of small acyclic objects: nothing to collect
            return _loads(raw)

    def _load(self, name: str) -> None:
        data = self._decoded(name)
        if data is None:
            return
        self.read.add(name)
        number = len(self.commons)
        self.commons.append(data.get("common") or {})
        with collector_paused():
            for raw in data.get("entries", []):
                held = packed((number, raw))  # bytes: a dict of them is not tracked
                self.by_task.setdefault(str(raw["task_id"]), {})[int(raw["attempt"])] = held

    def each_object(self) -> Iterator[list[Entry]]:
        """The entries of every batch object, one object at a time and none kept: a
        reader of a whole step (the run report of a million splits) never holds it all."""
        for common, entries in self.each_raw():
            yield [_Entry(raw, common) for raw in entries]

    def each_raw(self) -> Iterator[tuple[dict[str, Any], list[Entry]]]:
        """Each batch object as stored: what its entries share (``common``) and its
        entries without it (:func:`whole` makes a record whole), one object at a time."""
        self.refresh()
        ranges = set()   # a batch Dask ran twice wrote its range twice: the first is read
        starts = list(self.starts)
        for at in range(0, len(starts), READ_TOGETHER):
            chunk = starts[at:at + READ_TOGETHER]
            raw = self.files.read_many([f"{self.folder}/{name}" for _, _, name in chunk])
            for first, last, name in chunk:
                if (first, last) in ranges:
                    continue
                # one the read left out is read again alone, retried as every read is
                data = self._decoded(name, raw.pop(f"{self.folder}/{name}", None))
                if data is not None:
                    ranges.add((first, last))
                    yield data.get("common") or {}, data.get("entries", [])

    def _load_overlapping(self, low: int, high: int) -> None:
        # objects starting after ``high`` cannot hold it; those starting before
        # ``low - widest`` cannot reach it
        with self.lock:
            position = bisect.bisect_right(self.starts, (high, float("inf"), ""))
            while position > 0:
                position -= 1
                first, last, name = self.starts[position]
                if first < low - self.widest:
                    break
                if last >= low and name not in self.read:
                    self._load(name)

    def prefetch(self, task_ids: list[str]) -> None:
        """Read, in one look, what is stored of these tasks (a batch about to run them)."""
        numbers = [int(t) for t in task_ids if t.isdigit()]
        if numbers:
            self.refresh()
            self._load_overlapping(min(numbers), max(numbers))

    def attempts_of(self, task_id: str, fresh: bool = True) -> dict[int, bytes]:
        """The attempts of ``task_id`` stored in batch objects, as held (``{}`` if none;
        :meth:`entry` gives one as a record).

        An unknown task looks at the folder again (``fresh``): another process may
        have written its batch since.
        """
        found = self.by_task.get(task_id)
        if found is None and task_id.isdigit():
            number = int(task_id)
            self._load_overlapping(number, number)
            found = self.by_task.get(task_id)
            if found is None and fresh:
                self.refresh()
                self._load_overlapping(number, number)
                found = self.by_task.get(task_id)
        return found or {}

    def entry(self, task_id: str, attempt: int) -> Entry | None:
        """The entry of one attempt.  A task known with other attempts but not this one
        looks at the folder again, once: the attempt may have come in an object written
        since (a split that ran again after its batch's worker died)."""
        made = self.recent.get((task_id, attempt))
        if made is not None:
            return made
        held = self.attempts_of(task_id).get(attempt)
        if held is None and task_id in self.by_task and task_id.isdigit() and \
                (task_id, attempt) not in self.missed:
            with self.lock:
                self.missed.add((task_id, attempt))
                self.refresh()
                self._load_overlapping(int(task_id), int(task_id))
                held = self.by_task.get(task_id, {}).get(attempt)
        if held is None:
            return None
        number, raw = msgpack.unpackb(held)
        if len(self.recent) >= RECENT:
            self.recent.clear()
        made = self.recent[(task_id, attempt)] = _Entry(raw, self.commons[number])
        return made

    def task_ids(self) -> set[str]:
        """Every task id held by a batch object (reads them all, once)."""
        with self.lock:
            self.refresh()
            for name in list(self.ranges):
                if name not in self.read:
                    self._load(name)
            return set(self.by_task)
