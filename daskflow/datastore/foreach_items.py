"""A foreach step's items: one file per attempt, from which each split reads only its own.

The file (``<attempt>.foreach`` in the task's folder) is the count, the offsets of
the items and the items, each pickled on its own (cloudpickle)::

    <count: u64> <offset_0 .. offset_count: u64 each> <item 0><item 1>...
    [<digest 0> ... <digest count-1> "dfitems1"]

so split ``i`` reads 16 bytes of offsets and its item, never the whole list.  The
digests (blake2b, 16 bytes, of each item's pickled bytes, made as they are written)
are there when the splits are cached (``@cache``): a split's key takes its item's
digest, read without its item, and readers that know nothing of it never look.  On
an object store a small file is read whole once and kept (it never changes), so
the splits of a batch cost one request, not two each.

>>> items = ForeachItems(files, layout)                          # doctest: +SKIP
>>> items.write("17", "start", "1", 0, ["a", "b"], "letters")
>>> items.read("17", "start", "1", 0, index=1)
'b'
"""

from __future__ import annotations

import hashlib
import mmap
import struct
from collections.abc import Iterator
from typing import Any

import cloudpickle

from ..exceptions import ArtifactError
from .files import FsspecFiles, LocalFiles
from .layout import Layout

CACHE_BYTES = 16 * 2**20  # an object store's foreach file up to this is read whole
_CACHED_FILES = 4
DIGEST_BYTES = 16
_DIGESTS_MARK = b"dfitems1"


def item_digest(data: bytes) -> bytes:
    """The digest of one item's pickled bytes, as the file keeps it."""
    return hashlib.blake2b(data, digest_size=DIGEST_BYTES).digest()


def _parse_digests(trailer: bytes, count: int) -> list[str] | None:
    """The digests in what follows the items, or None when they were not written."""
    if len(trailer) != DIGEST_BYTES * count + len(_DIGESTS_MARK) \
            or not trailer.endswith(_DIGESTS_MARK):
        return None
    return [trailer[i:i + DIGEST_BYTES].hex()
            for i in range(0, DIGEST_BYTES * count, DIGEST_BYTES)]


class ForeachItems:
    """The foreach items of one flow's tasks."""

    def __init__(self, files: LocalFiles | FsspecFiles, layout: Layout) -> None:
        self.files = files
        self.layout = layout
        # small files of an object store, read whole; local files, mapped
        self._whole: dict[str, bytes | mmap.mmap] = {}

    def write(self, run_id: str, step: str, task_id: str, attempt: int,
              items: list[Any], var: str, digests: bool = False) -> None:
        """Keep the items; ``digests``: with each item's digest after them."""
        parts = []
        for i, item in enumerate(items):
            try:
                parts.append(cloudpickle.dumps(item, protocol=5))
            except Exception as exc:
                raise ArtifactError(
                    f"Item {i} of foreach list '{var}' ({type(item).__name__}) cannot be "
                    f"pickled: {exc}.") from exc
        offsets = [0]
        for part in parts:
            offsets.append(offsets[-1] + len(part))
        header = struct.pack(f"<Q{len(offsets)}Q", len(items), *offsets)
        trailer = b"".join(item_digest(p) for p in parts) + _DIGESTS_MARK if digests else b""
        self.files.write(self.layout.foreach(run_id, step, task_id, attempt),
                         header + b"".join(parts) + trailer)

    def digest(self, run_id: str, step: str, task_id: str, attempt: int,
               index: int) -> str | None:
        """Item ``index``'s digest (hex) alone, as a split reads its item alone; None when
        the file was written without digests (or is gone)."""
        path = self.layout.foreach(run_id, step, task_id, attempt)
        whole = self._whole.get(path)
        if whole is None and not self.files.local:
            try:
                whole = self._read_small(path)
            except FileNotFoundError:
                return None
        if whole is not None:
            found = self._digests_of(whole)
            return found[index] if found is not None and 0 <= index < len(found) else None
        try:
            with self.files.open(path) as f:
                (count,) = struct.unpack("<Q", f.read(8))
                f.seek(8 + 8 * count)
                (size,) = struct.unpack("<Q", f.read(8))
                trailer = 8 + 8 * (count + 1) + size
                f.seek(trailer + DIGEST_BYTES * count)
                if f.read() != _DIGESTS_MARK or not 0 <= index < count:
                    return None
                f.seek(trailer + DIGEST_BYTES * index)
                return f.read(DIGEST_BYTES).hex()
        except FileNotFoundError:
            return None

    def digests(self, run_id: str, step: str, task_id: str, attempt: int) -> list[str] | None:
        """Each item's digest (hex), in order, read without the items; None when the file
        was written without them (or is gone)."""
        path = self.layout.foreach(run_id, step, task_id, attempt)
        try:
            whole = self._whole.get(path)
            if whole is None and not self.files.local:
                whole = self._read_small(path)
            if whole is not None:
                return self._digests_of(whole)
            with self.files.open(path) as f:  # the offsets' end, then past the items
                (count,) = struct.unpack("<Q", f.read(8))
                f.seek(8 + 8 * count)
                (size,) = struct.unpack("<Q", f.read(8))
                f.seek(8 + 8 * (count + 1) + size)
                return _parse_digests(f.read(), count)
        except FileNotFoundError:
            return None

    @staticmethod
    def _digests_of(whole: bytes) -> list[str] | None:
        (count,) = struct.unpack_from("<Q", whole)
        (size,) = struct.unpack_from("<Q", whole, 8 + 8 * count)
        return _parse_digests(whole[8 + 8 * (count + 1) + size:], count)

    def read(self, run_id: str, step: str, task_id: str, attempt: int, index: int) -> Any:
        """Item ``index`` alone."""
        path = self.layout.foreach(run_id, step, task_id, attempt)
        whole = self._whole.get(path)
        if whole is None:
            whole = self._mapped(path) if self.files.local else self._read_small(path)
        if whole is not None:  # a batch of splits reads its items from one read (or map)
            (count,) = struct.unpack_from("<Q", whole)
            if not 0 <= index < count:
                raise IndexError(f"foreach index {index} out of range 0..{count - 1}")
            start, end = struct.unpack_from("<QQ", whole, 8 + 8 * index)
            base = 8 + 8 * (count + 1)
            return cloudpickle.loads(whole[base + start:base + end])
        with self.files.open(path) as f:
            (count,) = struct.unpack("<Q", f.read(8))
            if not 0 <= index < count:
                raise IndexError(f"foreach index {index} out of range 0..{count - 1}")
            f.seek(8 + 8 * index)
            start, end = struct.unpack("<QQ", f.read(16))
            f.seek(8 + 8 * (count + 1) + start)
            return cloudpickle.loads(f.read(end - start))

    def iterate(self, run_id: str, step: str, task_id: str, attempt: int) -> Iterator[Any]:
        """Every item in order, from one read of the file (for a pass over all splits,
        such as their resources per split)."""
        data = memoryview(self.files.read(self.layout.foreach(run_id, step, task_id, attempt)))
        (count,) = struct.unpack_from("<Q", data)
        offsets = struct.unpack_from(f"<{count + 1}Q", data, 8)
        base = 8 + 8 * (count + 1)
        for start, end in zip(offsets, offsets[1:]):
            yield cloudpickle.loads(data[base + start:base + end])

    def copy(self, run_id: str, step: str, task_id: str, attempt: int,
             to_run_id: str, to_task_id: str, to_attempt: int) -> bool:
        """Copy an attempt's items to another task of the same step (a clone on resume);
        False when that attempt stored none (its step is no foreach)."""
        try:
            data = self.files.read(self.layout.foreach(run_id, step, task_id, attempt))
        except FileNotFoundError:
            return False
        self.files.write(self.layout.foreach(to_run_id, step, to_task_id, to_attempt), data)
        return True

    def _read_small(self, path: str) -> bytes | None:
        """The file whole, when it is small (kept: written once, it never changes)."""
        with self.files.open(path) as f:
            if getattr(f, "size", CACHE_BYTES + 1) <= CACHE_BYTES:
                whole = f.read()  # its first read (one request) brought it all
            else:
                (count,) = struct.unpack("<Q", f.read(8))
                f.seek(8 + 8 * count)
                (size,) = struct.unpack("<Q", f.read(8))
                if size + 8 * (count + 2) > CACHE_BYTES:
                    return None
                whole = None
        if whole is None:
            whole = self.files.read(path)
        self._keep(path, whole)
        return whole

    def _mapped(self, path: str) -> mmap.mmap | None:
        """A local file mapped into memory, once: the splits of a batch each read their
        item without opening the file (a tenth of a trivial split's time on its worker);
        None when it cannot be mapped (empty)."""
        with self.files.open(path) as f:
            try:
                whole = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except (ValueError, OSError):
                return None
        self._keep(path, whole)
        return whole

    def _keep(self, path: str, whole: bytes | mmap.mmap) -> None:
        if len(self._whole) >= _CACHED_FILES:
            self._whole.pop(next(iter(self._whole)))
        self._whole[path] = whole
