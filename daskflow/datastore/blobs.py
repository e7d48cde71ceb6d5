"""Content-addressed blobs: bytes stored once under the hash of what they are.

An artifact's serialized value is written through :meth:`BlobStore.writer`, which
hashes it as it goes (sha1) and gives the blob its hash as its name once it is
whole, so a value that many tasks carry unchanged is stored once.  A code package
is content-addressed by its builder (sha256 of the archive) and stored here too,
once per content.  Both sit in a flow's folder (``layout.py``); nothing is ever
rewritten in place.

>>> blobs = BlobStore(files_for(".daskflow"), Layout(base, "HelloFlow"))  # doctest: +SKIP
>>> with blobs.writer("artifact 'x' to") as blob:
...     blob.write(b"...")
>>> blobs.path(blob.sha)
'.../HelloFlow/_data/5a/5a...'
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, BinaryIO

from .files import FsspecFiles, LocalFiles, discard, write_error, writing
from .layout import Layout, code_key


_SHA1 = re.compile(r"[0-9a-f]{40}")


class BlobStore:
    """The blobs of one flow: artifacts' values by sha1, code packages by sha256."""

    def __init__(self, files: LocalFiles | FsspecFiles, layout: Layout) -> None:
        self.files = files
        self.layout = layout

    def path(self, key: str) -> str:
        """Where a blob is, as the store's filesystem names it (no protocol)."""
        return self.layout.blob(key)

    def url(self, key: str) -> str:
        """Where a blob is, as a URL another process (a Dask worker) can open."""
        return self.files.url(self.layout.blob(key))

    def exists(self, key: str) -> bool:
        return self.files.object_exists(self.layout.blob(key))

    @contextmanager
    def source(self, key: str, size: int | None = None) -> Iterator[Any]:
        """What a serializer loads the blob from: a local path (pyarrow maps it), or from
        an object store its bytes (``size`` of them, where known: a small blob is read
        in one request), read whole and checked against the hash they are named by (an
        artifact's sha1), so a value cut short on the way is never loaded."""
        path = self.layout.blob(key)
        if isinstance(self.files, FsspecFiles) and _SHA1.fullmatch(key):
            yield io.BytesIO(self.files.read_checked(path, key, size))
            return
        with self.files.source(path) as source:
            yield source

    def open(self, key: str) -> BinaryIO:
        """The blob, open for reading (a Parquet footer is read without the rest)."""
        return self.files.open(self.layout.blob(key))

    @contextmanager
    def writer(self, what: str) -> Iterator[HashingWriter]:
        """A file to serialize into; on success it becomes the blob named by its hash.

        ``what`` says what is written, for errors ("artifact 'x' to").  A write that
        fails (disk full) leaves no temporary file and raises
        :class:`~daskflow.exceptions.DatastoreWriteError`, whatever the serializer
        made of the error.
        """
        data_root = self.layout.data
        tmp = self.files.blob_temp(data_root)
        try:
            with writing(data_root, what=what):
                f = open(tmp, "w+b")
            blob = HashingWriter(f)
            try:
                yield blob
            except BaseException as exc:
                with suppress(OSError):
                    f.close()
                if blob.write_error is not None:
                    raise write_error(data_root, blob.write_error, what) from exc
                raise
            with writing(data_root, what=what):
                f.close()  # flushes: the disk may fill here too
                self.files.commit_blob(tmp, self.layout.blob(blob.sha))
        finally:
            discard(tmp)  # still there unless it became the blob

    # -- code packages -------------------------------------------------------------------

    def put_code(self, sha: str, data: bytes) -> str:
        """Store a code package (``sha``: its sha256) unless stored; return its key."""
        key = code_key(sha)
        path = self.layout.code(key)
        if not self.files.object_exists(path):
            self.files.write(path, data)
        return key

    def read_code(self, key: str) -> bytes:
        """A code package's bytes; ``FileNotFoundError`` if it is not there."""
        return self.files.read(self.layout.code(key))

    def code_url(self, key: str) -> str:
        """Where a code package is, as a URL a worker can open with fsspec."""
        return self.files.url(self.layout.code(key))


class HashingWriter:
    """A binary file that hashes what is written to it (sha1, the blob's name).

    It keeps the ``OSError`` of a failed write (``write_error``): serializers such as
    pyarrow wrap it in their own errors, and the store must still say "disk full".
    """

    mode = "wb"

    def __init__(self, f: Any) -> None:
        self._f = f
        self._hash = hashlib.sha1()
        self.size = 0
        self.write_error: OSError | None = None

    @property
    def sha(self) -> str:
        return self._hash.hexdigest()

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._hash.update(view)
        self.size += len(view)
        try:
            return self._f.write(view)
        except OSError as exc:
            self.write_error = exc
            raise

    def tell(self) -> int:
        return self.size

    def seek(self, offset: int, whence: int = 0) -> int:
        if (offset, whence) not in ((0, 0), (self.size, 0), (0, 2)):
            raise OSError("an artifact file can only be rewound to its start")
        if offset == 0 and whence == 0 and self.size:
            self._f.seek(0)
            self._hash = hashlib.sha1()
            self.size = 0
        return self.size

    def truncate(self, size: int | None = None) -> int:
        return self._f.truncate(self.size if size is None else size)

    def flush(self) -> None:
        try:
            self._f.flush()
        except OSError as exc:
            self.write_error = exc
            raise

    def close(self) -> None:  # the store closes the real file
        pass

    @property
    def closed(self) -> bool:
        return self._f.closed

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False
