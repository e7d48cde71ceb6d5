"""Bytes in and out of storage: a local folder, or any other fsspec filesystem.

The bottom layer of the datastore.  ``layout.py`` decides *what* goes where and
the layers above (blobs, artifacts, run and task records) decide what to write;
one of these two strategies does the file operations, so no layer asks which
kind of storage it has.

- :class:`LocalFiles`: a folder on this machine.  Every write goes to a
  temporary name beside its target and is renamed into place, so a reader
  never sees half a file; exclusive creation is ``O_EXCL``.
- :class:`FsspecFiles`: object stores and other fsspec filesystems, which
  write whole objects, so there is no temporary name in the store.  Each of its
  operations is tried again after an error that may pass (``retries.py`` states the
  policy), and an artifact's bytes are checked against the hash they are named by.

Either way a failed write removes what it left and raises
:class:`~daskflow.exceptions.DatastoreWriteError` naming the path and the cause.

>>> files = files_for(".daskflow")                               # doctest: +SKIP
>>> files.write(Layout(files.base, "Flow").run_record("1"), b"{}")
"""

from __future__ import annotations

import errno
import hashlib
import inspect
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, BinaryIO

import fsspec
import fsspec.asyn
from fsspec.implementations.local import LocalFileSystem
from fsspec.registry import known_implementations

from .. import config
from ..exceptions import ConfigurationError, DatastoreUnavailable, DatastoreWriteError
from ..scratch import owned_prefix
from .layout import TEMP_MARK, probe_file
from .retries import ContentMismatch, RetryPolicy, s3_options

#: an artifact serialized in the temporary folder before its upload to an object store
ARTIFACT_TEMP = "daskflow-artifact-"
_FULL = {errno.ENOSPC, errno.EDQUOT}
_READ_ONLY = {errno.EACCES, errno.EPERM, errno.EROFS}


def is_disk_full(exc: BaseException) -> bool:
    """True for "No space left on device" or a full quota, also as it comes back from a
    worker or through pyarrow (which may keep only the message)."""
    return getattr(exc, "errno", None) in _FULL or "No space left on device" in str(exc)


def write_error(path: str, exc: BaseException, what: str = "") -> DatastoreWriteError:
    """One clear error for a write to ``path`` (of ``what``, e.g. "artifact 'x' to")
    that failed with ``exc``."""
    code = getattr(exc, "errno", None)
    cause = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    if is_disk_full(exc):
        code = code if code in _FULL else errno.ENOSPC
        cause = os.strerror(code)  # pyarrow's own wording buries it
        fix = "free some space there, or set daskflow.datastore.root to a store with room"
    elif code in _READ_ONLY:
        fix = "make it writable, or set daskflow.datastore.root to a folder you can write"
    else:
        fix = "check the datastore (daskflow.datastore.root)"
    return DatastoreWriteError(
        f"{cause} while writing {what + ' ' if what else ''}{path}: {fix}. Nothing partial "
        f"was left behind.", path, code)


def discard(path: str) -> None:
    """Remove a local file or folder left by a failed write, if it is there."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except OSError:
        pass  # gone already; or a second failure, which must not hide the first


@contextmanager
def writing(path: str, *leftovers: str, what: str = "") -> Iterator[None]:
    """Turn an ``OSError`` of a write to ``path`` into one clear error, removing ``leftovers``."""
    try:
        yield
    except BaseException as exc:
        for leftover in leftovers:
            discard(leftover)
        if isinstance(exc, OSError) and \
                not isinstance(exc, (DatastoreWriteError, DatastoreUnavailable)):
            raise write_error(path, exc, what) from exc
        raise


@contextmanager
def probe(root: str) -> Iterator[str]:
    """A file in the local datastore folder ``root`` while the block runs (its path):
    a worker that sees it shares this machine's disk."""
    os.makedirs(root, exist_ok=True)
    marker = os.path.join(root, probe_file())
    with open(marker, "w") as f:
        f.write("daskflow")
    try:
        yield marker
    finally:
        os.remove(marker)


class _Files:
    """What both strategies do alike: JSON records, and facts about the filesystem."""

    fs: Any
    local: bool

    def write(self, path: str, data: bytes, *, private: bool = False) -> None:
        raise NotImplementedError

    def read(self, path: str) -> bytes:
        raise NotImplementedError

    def write_json(self, path: str, record: dict[str, Any], *, private: bool = False) -> None:
        self.write(path, json.dumps(record, default=str).encode(), private=private)

    def read_json(self, path: str) -> dict[str, Any]:
        return json.loads(self.read(path))

    @property
    def kind(self) -> str:
        """``local``, or the filesystem's protocol (``s3``, ``gs``, ``memory``...)."""
        if self.local:
            return "local"
        protocol = self.fs.protocol  # a name, or a tuple of its aliases
        return protocol if isinstance(protocol, str) else protocol[0]

    @property
    def storage_options(self) -> dict[str, Any]:
        """What another process needs to open this filesystem's URLs (credentials...)."""
        return self.fs.storage_options


class LocalFiles(_Files):
    """A datastore in a local folder: temporary name, then rename."""

    local = True

    def __init__(self, fs: LocalFileSystem, base: str) -> None:
        self.fs = fs
        self.base = os.path.abspath(base)

    def url(self, path: str) -> str:
        return path

    def write(self, path: str, data: bytes, *, private: bool = False) -> None:
        """``private``: readable by the owner only (0600), from its first byte."""
        tmp = f"{path}{TEMP_MARK}{uuid.uuid4().hex[:8]}"
        with writing(path, tmp):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
            with os.fdopen(os.open(tmp, flags, 0o600 if private else 0o666), "wb") as f:
                f.write(data)
            os.replace(tmp, path)

    def create_exclusive(self, path: str, data: bytes) -> bool:
        """Create ``path`` unless it exists; True if this call created it."""
        with writing(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
        with writing(path, path):  # half a claim is no claim
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        return True

    def read(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    @contextmanager
    def source(self, path: str) -> Iterator[Any]:
        """What a serializer loads from: the path itself (pyarrow maps it)."""
        yield path

    def open(self, path: str) -> BinaryIO:
        return open(path, "rb")

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    object_exists = exists  # a file: the same look

    def existing(self, paths: list[str]) -> set[str]:
        """Those of ``paths`` that exist."""
        return {path for path in paths if os.path.exists(path)}

    def read_many(self, paths: list[str]) -> dict[str, bytes]:
        """Each of ``paths`` that can be read, by path (one gone meanwhile is left out)."""
        found = {}
        for path in paths:
            try:
                found[path] = self.read(path)
            except FileNotFoundError:
                continue
        return found

    def listdir(self, path: str) -> list[str]:
        try:
            return os.listdir(path)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def folders(self, path: str) -> list[str]:
        """Names of the folders in ``path`` (stray files left by others are skipped)."""
        try:
            with os.scandir(path) as entries:
                return [e.name for e in entries if e.is_dir()]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def refresh(self, path: str) -> None:
        """Forget cached listings of ``path`` (a local folder caches nothing)."""

    # -- blobs: serialized into a temporary file beside the blobs, then renamed --------

    def blob_temp(self, data_root: str) -> str:
        with writing(data_root):
            os.makedirs(data_root, exist_ok=True)
        return f"{data_root}/{TEMP_MARK}{uuid.uuid4().hex}"

    def commit_blob(self, tmp: str, path: str) -> None:
        # Stored already (same hash, same bytes, written whole by a rename): keep it;
        # replacing an existing file costs several times a new one.
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.replace(tmp, path)

    # -- folders written by many processes (a dask DataFrame's Parquet files) ---------

    def folder_target(self, final: str) -> str:
        """Where to write a folder that becomes ``final``: a temporary name beside it."""
        target = f"{os.path.dirname(final)}/{TEMP_MARK}{os.path.basename(final)}"
        with writing(target, target):
            os.makedirs(target)
        return target

    def publish_folder(self, target: str, final: str) -> None:
        os.rename(target, final)

    def remove_tree(self, path: str) -> None:
        shutil.rmtree(path, ignore_errors=True)

    # -- orphans ------------------------------------------------------------------------

    def remove_stale_temps(self, root: str, older_than: float) -> list[str]:
        """Remove temporary files and folders under ``root`` not touched for ``older_than``
        seconds (a writer killed mid-write leaves them); return what was removed."""
        cutoff = time.time() - older_than
        removed = []
        for folder, dirs, files in os.walk(root):
            for name in [d for d in dirs if TEMP_MARK in d]:
                dirs.remove(name)  # not into it: it goes whole or not at all
                path = os.path.join(folder, name)
                if _newest_change(path) < cutoff:
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
            for name in files:
                path = os.path.join(folder, name)
                if TEMP_MARK in name and _changed(path) < cutoff:
                    discard(path)
                    removed.append(path)
        return removed


def _changed(path: str) -> float:
    try:
        return os.lstat(path).st_mtime
    except FileNotFoundError:
        return float("inf")  # gone already: nothing to do


def _newest_change(folder: str) -> float:
    """The latest change in a folder: a straggling writer may still be adding to it."""
    newest = _changed(folder)
    for inner, _, files in os.walk(folder):
        newest = max([newest, _changed(inner), *(_changed(os.path.join(inner, f))
                                                 for f in files)])
    return newest


class FsspecFiles(_Files):
    """A datastore on any fsspec filesystem (s3://, gs://, memory://): whole objects,
    each operation tried again per :class:`~.retries.RetryPolicy`."""

    local = False

    def __init__(self, fs: Any, base: str) -> None:
        self.fs = fs
        self.base = base
        self.store = fs.unstrip_protocol(base)  # what messages call it: s3://bucket/prefix
        self.retry = RetryPolicy.configured()
        self.exclusive = exclusive_create_setting()
        self.down = False  # an operation's tries were all spent: the next try only once
        # s3fs asks an object's size (a HEAD) before each whole read, to read a big one
        # in parallel chunks; it is told not to where the object is known to be small
        cat = getattr(fs, "_cat_file", None)  # an async filesystem's (s3fs)
        self.chunk = int(getattr(fs, "default_block_size", 0) or 0) if cat is not None \
            and "max_concurrency" in inspect.signature(cat).parameters else 0

    def _try(self, what: str, fn: Any, *args: Any) -> Any:
        # Once the store has not answered one operation through all its tries, the next
        # ones (the failure's record, the run's last one) get one try each until one
        # succeeds: a run on a store that is gone ends in one spell of waiting, not many.
        policy = replace(self.retry, attempts=1) if self.down else self.retry
        try:
            result = policy.call(fn, *args, store=self.store, what=what)
        except DatastoreUnavailable:
            self.down = True
            raise
        self.down = False
        return result

    def url(self, path: str) -> str:
        """``path`` as a URL that another process (a Dask worker) can open."""
        return self.fs.unstrip_protocol(path)

    def write(self, path: str, data: bytes, *, private: bool = False) -> None:
        # private: an object store's access is its bucket's policy, not a file mode
        with writing(path):
            self._try(f"writing {path}", self.fs.pipe_file, path, data)  # a whole object

    def create_exclusive(self, path: str, data: bytes) -> bool:
        """Create ``path`` unless it exists; True if this call created it.  One create-only
        write where the store keeps the condition (``datastore.exclusive-create``: S3's
        ``If-None-Match: *``, through fsspec's ``mode="create"``), else a look and a write,
        which another writer could come between.  ``data`` must be this caller's own
        (a claim's record names its process): a write retried after its answer was lost
        finds its own object there, and that is its claim."""
        if not self.exclusive:
            if self.object_exists(path):
                return False
            self.write(path, data)
            return True
        try:
            self._try(f"writing {path}", self._create, path, data)
        except FileExistsError:
            return self._holds(path, data)
        except OSError as exc:
            if "NotImplemented" in str(exc):
                raise DatastoreWriteError(
                    f"{self.store} refused a create-only write of {path} ({exc}): set "
                    f"daskflow.datastore.exclusive-create to false for a store that "
                    f"cannot keep one.", path, None) from exc
            raise write_error(path, exc) from exc
        return True

    def _create(self, path: str, data: bytes) -> None:
        self.fs.pipe_file(path, data, mode="create")

    def _holds(self, path: str, data: bytes) -> bool:
        """Whether the object ``path`` holds ``data``: a create-only write tried again
        after its answer was lost finds what its first try wrote."""
        try:
            return self.read(path) == data
        except FileNotFoundError:
            return False

    def read(self, path: str) -> bytes:
        return self._try(f"reading {path}", self._cat, path, None)

    def _cat(self, path: str, size: int | None) -> bytes:
        """The object ``path`` whole: in one request unless it is known to be bigger
        than s3fs's chunk (a record, or a blob of ``size`` bytes)."""
        if self.chunk and (size is None or size <= self.chunk):
            return self.fs.cat_file(path, max_concurrency=1)
        return self.fs.cat_file(path)

    def read_checked(self, path: str, sha1: str, size: int | None = None) -> bytes:
        """The bytes of the blob ``path`` (``size`` of them, where known), which are
        checked to hash (sha1) to ``sha1``: read again while they do not (an answer cut
        short or garbled on the way)."""
        def checked() -> bytes:
            data = self._cat(path, size)
            if hashlib.sha1(data).hexdigest() != sha1:
                raise ContentMismatch(f"{path}: {len(data)} bytes read do not hash to its "
                                      f"name")
            return data
        return self._try(f"reading {path}", checked)

    @contextmanager
    def source(self, path: str) -> Iterator[Any]:
        with self.open(path) as f:
            yield f

    def open(self, path: str) -> BinaryIO:
        return self._try(f"opening {path}", self.fs.open, path, "rb")

    def exists(self, path: str) -> bool:
        return self._try(f"looking for {path}", self.fs.exists, path)

    def object_exists(self, path: str) -> bool:
        """Whether the object ``path`` exists: one HEAD on s3fs (its ``exists`` also
        lists the prefix, for a folder of that name, when there is no such object)."""
        if not hasattr(self.fs, "_call_s3"):
            return self.exists(path)
        bucket, key, _ = self.fs.split_path(path)

        def head() -> bool:
            try:
                fsspec.asyn.sync(self.fs.loop, self.fs._call_s3, "head_object",
                                 Bucket=bucket, Key=key)
            except FileNotFoundError:
                return False
            return True
        return self._try(f"looking for {path}", head)

    def existing(self, paths: list[str]) -> set[str]:
        """Those of ``paths`` that exist: one listing per folder holding several of them,
        one request for a path alone in its folder (never one request per path of a
        wide step)."""
        by_folder: dict[str, list[str]] = {}
        for path in paths:
            by_folder.setdefault(path.rsplit("/", 1)[0], []).append(path)
        found = set()
        for folder, inside in by_folder.items():
            if len(inside) == 1:
                found.update(p for p in inside if self.object_exists(p))
                continue
            self.fs.invalidate_cache(folder)
            names = set(self.listdir(folder))
            found.update(p for p in inside if _name(p) in names)
        return found

    def read_many(self, paths: list[str]) -> dict[str, bytes]:
        """Each of ``paths`` that can be read, by path, fetched concurrently (fsspec's
        ``cat`` of many paths)."""
        if not paths:
            return {}
        data = self.fs.cat(list(paths), on_error="omit")
        return {path: data[path] for path in paths if path in data}

    def listdir(self, path: str) -> list[str]:
        return [_name(e["name"]) for e in self._entries(path)]

    def folders(self, path: str) -> list[str]:
        return [_name(e["name"]) for e in self._entries(path) if e.get("type") == "directory"]

    def _entries(self, path: str) -> list[dict[str, Any]]:
        try:
            return self._try(f"listing {path}", self._list, path)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def _list(self, path: str) -> list[dict[str, Any]]:
        # s3fs's ls of a folder with nothing in it lists the parent too, looking for an
        # object of that name: two requests for each folder not written yet (a step
        # with no batch objects, a task's first attempt).  Our folders are never
        # objects, so its one listing of the prefix answers (cached as ls caches it).
        lsdir = getattr(self.fs, "_lsdir", None)
        if lsdir is None or not getattr(self.fs, "async_impl", False):
            return self.fs.ls(path, True)
        return fsspec.asyn.sync(self.fs.loop, lsdir, self.fs._strip_protocol(path).rstrip("/"))

    def refresh(self, path: str) -> None:
        self.fs.invalidate_cache(path)  # written by other processes

    def blob_temp(self, data_root: str) -> str:
        with writing(tempfile.gettempdir()):  # serialized locally, then uploaded whole
            fd, tmp = tempfile.mkstemp(prefix=owned_prefix(ARTIFACT_TEMP))
        os.close(fd)
        return tmp

    def commit_blob(self, tmp: str, path: str) -> None:
        if not self.object_exists(path):
            self._try(f"writing {path}", self.fs.put_file, tmp, path)  # a whole object

    def folder_target(self, final: str) -> str:
        return final  # the manifest, written last, is what makes the folder count

    def publish_folder(self, target: str, final: str) -> None:
        pass

    def remove_tree(self, path: str) -> None:
        if self.exists(path):
            self._try(f"removing {path}", lambda: self.fs.rm(path, recursive=True))

    def remove_stale_temps(self, root: str, older_than: float) -> list[str]:
        """Nothing to do: object stores never hold a temporary name of ours."""
        return []


def _name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def exclusive_create_setting() -> bool:
    """``daskflow.datastore.exclusive-create``: whether a claim on an object store is one
    create-only write (true), or a look and a write for a store that cannot keep one."""
    setting = config.get("datastore.exclusive-create")
    if not isinstance(setting, bool):
        raise ConfigurationError(
            f"daskflow.datastore.exclusive-create is {setting!r}: give true (a claim is one "
            f"create-only write, as S3 keeps it) or false (a look and a write, for a store "
            f"that ignores the condition).")
    return setting


def filesystem_modules(root: str) -> list[str]:
    """The package that opens ``root``'s filesystem (``["s3fs"]`` for an s3:// root; none
    for a local folder), named from fsspec's registry without importing it: processes
    started ahead of the run's tasks (the local fork server) import it there first.

    >>> filesystem_modules("s3://bucket/prefix"), filesystem_modules("/tmp/runs")
    (['s3fs'], [])
    """
    protocol, _ = fsspec.core.split_protocol(root)
    if protocol in (None, "file", "local"):
        return []
    known = known_implementations.get(protocol)
    if known is not None:
        return [known["class"].rsplit(".", 1)[0]]
    return []  # registered by the caller (imported already) or unknown: files_for says

def connect(root: str) -> None:
    """Open ``root``'s filesystem, its client and its connection now, which its first
    request would otherwise do: a worker does it before its first task asks.

    s3fs's ``connect`` makes the client (botocore loads S3's model); its HTTP session
    (the TLS context, with the CA bundle loaded) and its first connection come with its
    first request, so one is made here too: a look for the bucket (one HEAD where it is
    there and may be looked at; s3fs asks for its location besides where it is not).
    Before, the run's first task waited 0.07-0.1 s for them in its first write (on moto,
    at load 1). Nothing here fails: the run's own requests say what is wrong.
    """
    files = files_for(root)
    fs = getattr(files, "fs", None)
    opening = getattr(fs, "connect", None)
    if callable(opening):
        opening()
        try:
            fs.exists(files.base.split("/", 1)[0])
        except Exception:  # noqa: BLE001  no right to look: the session is made all the same
            pass


def files_for(root: str) -> LocalFiles | FsspecFiles:
    """The strategy for a datastore root: a local folder or an fsspec URL."""
    if root.startswith(("s3://", "s3a://")):
        options, retries = s3_options()
        fs, base = fsspec.core.url_to_fs(root, **options)
        fs.retries = retries
        return FsspecFiles(fs, base)
    fs, base = fsspec.core.url_to_fs(root)
    if isinstance(fs, LocalFileSystem):
        return LocalFiles(fs, base)
    return FsspecFiles(fs, base)
