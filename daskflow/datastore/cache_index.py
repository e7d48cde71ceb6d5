"""The cache index: which tasks of a step ran with which code, and what they made.

``@cache`` (``runtime/cache.py``) takes a finished task of an earlier run instead of
running one again when their keys match.  The keys of a step's tasks that ran with
one version of its code (its *code key*) are kept together, append-only::

    <Flow>/_cache/<step>/<code>/<stamp>-<uid>.json
        {"version": 1, "reads": [["a:x", "p:alpha"], ...],
         "entries": [{"key": "...", "reads": 0, "items": "...", "run": "17",
                      "task": "4", "attempt": 0, "own": {...}, ...}, ...]}

One object per task that ran alone, one per batch of splits (written with the
batch's records, after them): so looking up a foreach of 10,000 splits costs one
listing and one read per object, never one request per split.  An object is written
whole under a name no other writer uses and never changed, so concurrent runs of a
flow cannot corrupt each other's entries; two runs that key the same task both add
theirs, and either serves.  What an entry holds is the runtime's business; this layer
keeps the lists of names its entries read once per object (``reads``), as most of a
step's tasks read the same names.

>>> index = CacheIndex(files, layout)                          # doctest: +SKIP
>>> index.add("work", code, [{"key": k, "reads": ("a:x",), "run": "17", ...}])
>>> [e["run"] for e in index.entries("work", code)]
['17']
"""

from __future__ import annotations

import json
from typing import Any

from .files import FsspecFiles, LocalFiles
from .layout import Layout, cache_object, is_cache_object

VERSION = 1

Entry = dict[str, Any]


def encode(entries: list[Entry]) -> bytes:
    """An object's bytes: each entry's ``reads`` (a sequence of names) as its place in
    the object's table of them."""
    table: dict[tuple[str, ...], int] = {}
    rows = []
    for entry in entries:
        reads = tuple(entry["reads"])
        rows.append({**entry, "reads": table.setdefault(reads, len(table))})
    return json.dumps({"version": VERSION, "reads": [list(r) for r in table],
                       "entries": rows}, default=str).encode()


def decode(data: bytes) -> list[Entry]:
    """The entries of an object, each with its ``reads`` as a tuple of names (shared)."""
    raw = json.loads(data)
    if raw.get("version") != VERSION:
        return []  # written by another version of daskflow: not understood, not used
    table = [tuple(r) for r in raw.get("reads", [])]
    return [{**entry, "reads": table[entry["reads"]]} for entry in raw.get("entries", [])]


class CacheIndex:
    """The cache index of one flow: written by the tasks that ran, read by the driver."""

    defers = False

    def __init__(self, files: LocalFiles | FsspecFiles, layout: Layout) -> None:
        self.files = files
        self.layout = layout
        self._seen: dict[tuple[str, str], dict[str, list[Entry]]] = {}

    def add(self, step: str, code: str, entries: list[Entry]) -> None:
        """Keep ``entries`` (tasks of ``step`` that ran with code key ``code``) as one object."""
        if entries:
            self.files.write(self.layout.cache_object(step, code, cache_object()),
                             encode(entries))

    def entries(self, step: str, code: str) -> list[Entry]:
        """Every entry of ``step`` under ``code``: the folder is listed (one request) and
        each object not read yet is read, once for this index's life (they never change)."""
        folder = self.layout.cache_folder(step, code)
        read = self._seen.setdefault((step, code), {})
        self.files.refresh(folder)  # written by other processes
        new = [self.layout.cache_object(step, code, name)
               for name in sorted(self.files.listdir(folder))
               if is_cache_object(name) and name not in read]
        for path, data in self.files.read_many(new).items():
            try:
                read[path.rsplit("/", 1)[-1]] = decode(data)
            except (ValueError, KeyError, IndexError, TypeError):
                read[path.rsplit("/", 1)[-1]] = []  # unreadable: never serves a hit
        return [entry for name in sorted(read) for entry in read[name]]

    def held(self) -> HeldCacheIndex:
        """A view whose entries are held until :meth:`HeldCacheIndex.commit` (a batch's)."""
        return HeldCacheIndex(self)

    def commit(self) -> None:
        """Nothing held: entries are written as they come."""


class HeldCacheIndex:
    """The entries of a batch of splits, written as one object per code key at commit,
    after the batch's records (an entry never names a task that has no record)."""

    defers = True

    def __init__(self, index: CacheIndex) -> None:
        self._index = index
        self._held: dict[tuple[str, str], list[Entry]] = {}

    def add(self, step: str, code: str, entries: list[Entry]) -> None:
        self._held.setdefault((step, code), []).extend(entries)

    def entries(self, step: str, code: str) -> list[Entry]:
        return self._index.entries(step, code)

    def commit(self) -> None:
        held, self._held = self._held, {}
        for (step, code), entries in held.items():
            self._index.add(step, code, entries)
