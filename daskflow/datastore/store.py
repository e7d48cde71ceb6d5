"""fsspec storage of runs, tasks, artifacts and logs.

Layout under the root (a local folder by default, any fsspec URL by config)::

    <root>/<Flow>/_data/<sha[:2]>/<sha>               artifact blobs, content-addressed
    <root>/<Flow>/_data/dd/<uuid>/                    a dask DataFrame artifact: Parquet files
        part.000000.parquet, ...                      one per partition
        _daskflow.json                                written last: the manifest
    <root>/<Flow>/<run_id>/_run.json                  the run's record
    <root>/<Flow>/<run_id>/<step>/<task_id>/
        <attempt>.start.json                          claimed when the attempt starts
        <attempt>.stdout, <attempt>.stderr            captured output (when not empty)
        <attempt>.foreach                             a foreach step's items, one slice each
        <attempt>.done.json                           written last: status and artifact index

Every file is written atomically (a temporary name, then a rename; object
stores write whole objects), and a task counts as finished only once its
``done.json`` exists, so a killed task never leaves anything that looks complete.
Blobs are content-addressed: an artifact that a step leaves unchanged is
stored once however many tasks carry it.  A dask DataFrame is written by the
cluster's workers into a folder of its own (a temporary name renamed into
place on a local disk; on an object store the manifest is written last, and
a folder without one is never read), and loads back as a lazy dask DataFrame.
A dask DataFrame read from an artifact and stored again unchanged keeps its
folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import cloudpickle
import fsspec
from fsspec.implementations.local import LocalFileSystem

from ..exceptions import ArtifactError, DataNotFoundError
from . import dataframes, serializers


class ArtifactRef(NamedTuple):
    """Where one artifact's value is stored, and what it is (for listings)."""

    sha: str
    fmt: str
    type_name: str
    size: int


class ArtifactStore:
    """Reads and writes one flow's runs under a root folder or URL.

    >>> store = ArtifactStore(".daskflow", "HelloFlow")      # doctest: +SKIP
    >>> ref = store.put_artifact([1, 2, 3])
    >>> store.get_artifact(ref)
    [1, 2, 3]
    """

    def __init__(self, root: str, flow_name: str) -> None:
        self.root_url = root
        self.flow_name = flow_name
        self.fs, base = fsspec.core.url_to_fs(root)
        self.local = isinstance(self.fs, LocalFileSystem)
        if self.local:
            base = os.path.abspath(base)
        self.flow_root = f"{base.rstrip('/')}/{flow_name}"

    # -- paths ----------------------------------------------------------------------

    def run_path(self, run_id: str) -> str:
        return f"{self.flow_root}/{run_id}"

    def task_path(self, run_id: str, step: str, task_id: str) -> str:
        return f"{self.flow_root}/{run_id}/{step}/{task_id}"

    def blob_path(self, sha: str) -> str:
        """Where an artifact lives: a blob, or a folder for a key like ``dd/<uuid>``."""
        if "/" in sha:
            return f"{self.flow_root}/_data/{sha}"
        return f"{self.flow_root}/_data/{sha[:2]}/{sha}"

    def artifact_path(self, ref: ArtifactRef) -> str:
        """Where ``ref``'s value is stored: a file, or a folder of Parquet files."""
        return self.blob_path(ref.sha)

    def url(self, path: str) -> str:
        """``path`` as a URL that another process (a Dask worker) can open."""
        return path if self.local else self.fs.unstrip_protocol(path)

    # -- primitive I/O (local folders get the fast, exclusive, atomic path) ---------

    def _write(self, path: str, data: bytes) -> None:
        if self.local:
            folder = os.path.dirname(path)
            os.makedirs(folder, exist_ok=True)
            tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        else:
            self.fs.pipe_file(path, data)  # object stores write whole objects

    def _create_exclusive(self, path: str, data: bytes) -> bool:
        """Create ``path`` unless it exists; True if this call created it."""
        if self.local:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            return True
        if self.fs.exists(path):
            return False
        self.fs.pipe_file(path, data)
        return True

    def _read(self, path: str) -> bytes:
        if self.local:
            with open(path, "rb") as f:
                return f.read()
        return self.fs.cat_file(path)

    def _exists(self, path: str) -> bool:
        return os.path.exists(path) if self.local else self.fs.exists(path)

    def _listdir(self, path: str) -> list[str]:
        if self.local:
            try:
                return os.listdir(path)
            except FileNotFoundError:
                return []
        try:
            return [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(path, detail=False)]
        except FileNotFoundError:
            return []

    def _write_json(self, path: str, record: dict[str, Any]) -> None:
        self._write(path, json.dumps(record, default=str).encode())

    def _read_json(self, path: str) -> dict[str, Any]:
        return json.loads(self._read(path))

    # -- artifacts ------------------------------------------------------------------

    def put_artifact(self, value: Any, name: str = "?") -> ArtifactRef:
        """Store ``value`` once (by content) and return its reference.

        A dask DataFrame or Series is written as Parquet by the cluster's workers
        into a folder of its own (see :meth:`_put_dask`).
        """
        if dataframes.is_dask_frame(value):
            return self._put_dask(value, name)
        try:
            with self._blob_writer() as blob:
                fmt = serializers.dump(value, blob)
        except ArtifactError:
            raise
        except Exception as exc:
            raise ArtifactError(
                f"Artifact '{name}' ({type(value).__name__}) cannot be stored: "
                f"{type(exc).__name__}: {exc}. Keep only picklable values on self "
                f"(open files, locks, sockets and clients are not).") from exc
        return ArtifactRef(blob.sha, fmt, type(value).__name__, blob.size)

    def get_artifact(self, ref: ArtifactRef, name: str = "?") -> Any:
        """Load an artifact: a dask DataFrame comes back lazy, everything else whole."""
        if ref.fmt == serializers.DASK_PARQUET:
            return self._get_dask(ref, name)
        path = self.blob_path(ref.sha)
        try:
            if self.local:
                return serializers.load(ref.fmt, path)
            with self.fs.open(path, "rb") as f:
                return serializers.load(ref.fmt, f)
        except Exception as exc:
            if isinstance(exc, FileNotFoundError) or not self._exists(path):
                raise ArtifactError(
                    f"Artifact '{name}' is missing from the datastore: {path} does not exist. "
                    f"It may have been deleted; rerun the step that made it.") from exc
            raise ArtifactError(
                f"Artifact '{name}' at {path} cannot be loaded as {ref.fmt}: "
                f"{type(exc).__name__}: {exc}. The file is corrupt or was written by an "
                f"incompatible version.") from exc

    @contextmanager
    def _blob_writer(self) -> Iterator[_HashingWriter]:
        """A file to serialize into; on success it becomes the blob named by its hash."""
        if self.local:
            folder = f"{self.flow_root}/_data"
            os.makedirs(folder, exist_ok=True)
            tmp = f"{folder}/.tmp-{uuid.uuid4().hex}"
        else:
            fd, tmp = tempfile.mkstemp(prefix="daskflow-artifact-")
            os.close(fd)
        try:
            with open(tmp, "w+b") as f:
                blob = _HashingWriter(f)
                yield blob
            path = self.blob_path(blob.sha)
            if self.local:
                # Stored already (same hash, same bytes, written whole by a rename):
                # keep it; replacing an existing file costs several times a new one.
                if not os.path.exists(path):
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    os.replace(tmp, path)
            elif not self.fs.exists(path):
                self.fs.put_file(tmp, path)  # object stores write whole objects
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _put_dask(self, value: Any, name: str) -> ArtifactRef:
        """Write a dask collection as a folder of Parquet files, one per partition.

        The partitions are computed and written by the workers of the cluster
        this runs on, straight into the datastore; the manifest is written
        last, and on a local disk the folder gets its real name only then.
        On any failure what was written is removed and nothing is referenced.
        """
        loaded = dataframes.loaded_from(value)
        if loaded is not None and loaded[0] == self.flow_root:
            ref = loaded[1]
            if self._exists(f"{self.blob_path(ref.sha)}/{dataframes.MANIFEST}"):
                return ref  # read from this datastore and unchanged: nothing to write
        kind = f"dask {type(value).__name__}"
        try:
            plan = dataframes.plan_dask(value, name)
        except dataframes.NotParquetable as exc:
            raise ArtifactError(
                f"Artifact '{name}' ({kind}) cannot be stored as Parquet: {exc}. Convert "
                f"those columns (ddf.astype(...)) or keep them out of self.") from exc
        key = f"dd/{uuid.uuid4().hex}"
        final = self.blob_path(key)
        target = f"{os.path.dirname(final)}/.tmp-{os.path.basename(final)}" \
            if self.local else final
        try:
            if self.local:
                os.makedirs(target)
            written = dataframes.write_dask(plan, self.url(target), self.fs.storage_options)
            files = [dataframes.partition_file_name(i) for i in range(len(written))]
            manifest = {**plan.manifest, "files": files,
                        "rows": [w["rows"] for w in written],
                        "bytes": sum(w["bytes"] for w in written)}
            self._write_json(f"{target}/{dataframes.MANIFEST}", manifest)
            if self.local:
                os.rename(target, final)
        except BaseException as exc:
            self._remove_tree(target)
            if isinstance(exc, ArtifactError) or not isinstance(exc, Exception):
                raise
            hint = ""
            if isinstance(exc, dataframes.NotParquetable):
                hint = (" Parquet holds one type per column: convert that column first "
                        "(ddf.astype({...})).")
            raise ArtifactError(
                f"Artifact '{name}' ({kind}) could not be written as Parquet to {final}: "
                f"{type(exc).__name__}: {exc}. Nothing was stored.{hint}") from exc
        return ArtifactRef(key, serializers.DASK_PARQUET, type(value).__name__,
                           manifest["bytes"])

    def _get_dask(self, ref: ArtifactRef, name: str) -> Any:
        folder = self.blob_path(ref.sha)
        marker = f"{folder}/{dataframes.MANIFEST}"
        try:
            manifest = self._read_json(marker)
        except FileNotFoundError as exc:
            raise ArtifactError(
                f"Artifact '{name}' (dask {ref.type_name}) is missing or incomplete: {marker} "
                f"does not exist. It may have been deleted; rerun the step that made it.") \
                from exc
        except ValueError as exc:
            raise ArtifactError(
                f"Artifact '{name}' (dask {ref.type_name}): its manifest {marker} is corrupt "
                f"({exc}). Rerun the step that made it.") from exc
        if not self.local:
            self.fs.invalidate_cache(folder)  # written by other processes
        present = set(self._listdir(folder))
        missing = [f"{folder}/{f}" for f in manifest["files"] if f not in present]
        if missing:
            raise ArtifactError(
                f"Artifact '{name}' (dask {ref.type_name}) is missing {len(missing)} of its "
                f"{len(manifest['files'])} Parquet files, e.g. {missing[0]}. Rerun the step "
                f"that made it.")
        urls = [self.url(f"{folder}/{f}") for f in manifest["files"]]
        try:
            ddf = dataframes.open_dask(urls, self.fs.storage_options, manifest, name)
        except Exception as exc:
            raise ArtifactError(
                f"Artifact '{name}' (dask {ref.type_name}) at {folder} cannot be opened: "
                f"{type(exc).__name__}: {exc}. Its manifest is corrupt or was written by an "
                f"incompatible version.") from exc
        dataframes.remember_loaded(ddf, (self.flow_root, ref, urls,
                                         dict(self.fs.storage_options), manifest))
        return ddf

    def _remove_tree(self, path: str) -> None:
        """Best-effort removal of a partial write (a straggling task may still add a file)."""
        try:
            if self.local:
                shutil.rmtree(path, ignore_errors=True)
            elif self.fs.exists(path):
                self.fs.rm(path, recursive=True)
        except Exception:
            pass

    # -- runs -------------------------------------------------------------------------

    def new_run_id(self) -> str:
        """A fresh, time-ordered run id, unique even for runs started at the same moment."""
        while True:
            run_id = str(time.time_ns() // 1000)
            if self._create_exclusive(f"{self.run_path(run_id)}/_run.json", b"{}"):
                return run_id

    def write_run(self, run_id: str, record: dict[str, Any]) -> None:
        self._write_json(f"{self.run_path(run_id)}/_run.json", record)

    def read_run(self, run_id: str) -> dict[str, Any]:
        path = f"{self.run_path(run_id)}/_run.json"
        try:
            return self._read_json(path)
        except FileNotFoundError as exc:
            raise DataNotFoundError(
                f"Run '{self.flow_name}/{run_id}' does not exist in {self.flow_root}.") from exc

    def list_runs(self) -> list[str]:
        return [name for name in self._listdir(self.flow_root) if name.isdigit()]

    def list_steps(self, run_id: str) -> list[str]:
        return [n for n in self._listdir(self.run_path(run_id)) if not n.startswith("_")]

    def list_tasks(self, run_id: str, step: str) -> list[str]:
        return self._listdir(f"{self.run_path(run_id)}/{step}")

    # -- tasks ------------------------------------------------------------------------

    def claim_attempt(self, run_id: str, step: str, task_id: str,
                      record: dict[str, Any]) -> int:
        """Claim the next attempt number of a task (attempts that died keep theirs)."""
        base = self.task_path(run_id, step, task_id)
        attempt = 0
        while True:
            record["attempt"] = attempt
            if self._create_exclusive(f"{base}/{attempt}.start.json",
                                      json.dumps(record).encode()):
                return attempt
            attempt += 1

    def write_done(self, run_id: str, step: str, task_id: str, attempt: int,
                   record: dict[str, Any]) -> None:
        self._write_json(f"{self.task_path(run_id, step, task_id)}/{attempt}.done.json", record)

    def list_attempts(self, run_id: str, step: str, task_id: str) -> list[int]:
        names = self._listdir(self.task_path(run_id, step, task_id))
        return sorted({int(n.split(".", 1)[0]) for n in names
                       if n.endswith(".start.json") and n.split(".", 1)[0].isdigit()})

    def read_start(self, run_id: str, step: str, task_id: str, attempt: int) -> dict[str, Any]:
        return self._read_json(f"{self.task_path(run_id, step, task_id)}/{attempt}.start.json")

    def read_done(self, run_id: str, step: str, task_id: str,
                  attempt: int) -> dict[str, Any] | None:
        try:
            return self._read_json(
                f"{self.task_path(run_id, step, task_id)}/{attempt}.done.json")
        except FileNotFoundError:
            return None

    def write_log(self, run_id: str, step: str, task_id: str, attempt: int,
                  stream: str, text: str) -> None:
        if text:
            self._write(f"{self.task_path(run_id, step, task_id)}/{attempt}.{stream}",
                        text.encode("utf-8", "replace"))

    def read_log(self, run_id: str, step: str, task_id: str, attempt: int, stream: str) -> str:
        try:
            data = self._read(f"{self.task_path(run_id, step, task_id)}/{attempt}.{stream}")
        except FileNotFoundError:
            return ""
        return data.decode("utf-8", "replace")

    # -- foreach items: one file, each split reads only its own slice ----------------

    def write_foreach_items(self, run_id: str, step: str, task_id: str, attempt: int,
                            items: list[Any], var: str) -> None:
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
        self._write(f"{self.task_path(run_id, step, task_id)}/{attempt}.foreach",
                    header + b"".join(parts))

    def read_foreach_item(self, run_id: str, step: str, task_id: str, attempt: int,
                          index: int) -> Any:
        path = f"{self.task_path(run_id, step, task_id)}/{attempt}.foreach"
        with self.fs.open(path, "rb") as f:
            (count,) = struct.unpack("<Q", f.read(8))
            if not 0 <= index < count:
                raise IndexError(f"foreach index {index} out of range 0..{count - 1}")
            f.seek(8 + 8 * index)
            start, end = struct.unpack("<QQ", f.read(16))
            f.seek(8 + 8 * (count + 1) + start)
            return cloudpickle.loads(f.read(end - start))


class _HashingWriter:
    """A binary file that hashes what is written to it (sha1, the blob's name)."""

    mode = "wb"

    def __init__(self, f: Any) -> None:
        self._f = f
        self._hash = hashlib.sha1()
        self.size = 0

    @property
    def sha(self) -> str:
        return self._hash.hexdigest()

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._hash.update(view)
        self.size += len(view)
        return self._f.write(view)

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
        self._f.flush()

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


def resolve_root(root: str | None = None) -> str:
    """The datastore root to use: ``root``, else ``daskflow.datastore.root``.

    A relative folder is looked up in the working directory and its parents (as
    Metaflow finds ``.metaflow``), and created in the working directory when
    none exists.  URLs and absolute paths are used as they are.
    """
    from .. import config

    chosen = str(config.get("datastore.root", override_with=root))
    if "://" in chosen or os.path.isabs(chosen):
        return chosen
    here = os.getcwd()
    while True:
        candidate = os.path.join(here, chosen)
        if os.path.isdir(candidate):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            return os.path.join(os.getcwd(), chosen)
        here = parent
