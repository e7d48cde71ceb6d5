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
    <root>/<Flow>/<run_id>/<step>/_batches/<first>-<last>.<uid>.json
                                                  the same records of a batch of short
                                                  splits, all in one object (batches.py)

Every file is written atomically (a temporary name, then a rename; object
stores write whole objects), and a task counts as finished only once its
``done.json`` exists, so a killed task never leaves anything that looks complete.
A batch of splits that ran in one Dask task writes all its
records (claims, logs, done records) as one object once its splits have ended;
every reader here sees them exactly as the per-task files above, and artifacts
smaller than ``daskflow.datastore.inline-limit`` that such splits make travel
inside their records (:attr:`ArtifactRef.inline`) instead of as blobs.
Blobs are content-addressed: an artifact that a step leaves unchanged is
stored once however many tasks carry it.  A dask DataFrame is written by the
cluster's workers into a folder of its own (a temporary name renamed into
place on a local disk; on an object store the manifest is written last, and
a folder without one is never read), and loads back as a lazy dask DataFrame.
A dask DataFrame read from an artifact and stored again unchanged keeps its
folder.

The file operations belong to a strategy (``files.py``: a local folder or any
fsspec filesystem); names become paths only once ``names.py`` has checked them;
a write that fails (disk full) leaves no temporary file and raises
:class:`~daskflow.exceptions.DatastoreWriteError`; listings skip what is not
the datastore's (a stray ``.DS_Store``).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import struct
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, NamedTuple

import cloudpickle
from dask.utils import parse_timedelta

from ..exceptions import ArtifactError, ConfigurationError, DataNotFoundError, \
    DatastoreWriteError
from . import batches, dataframes, serializers
from .files import discard, files_for, is_disk_full, write_error, writing
from .names import check_flow_name, check_run_id, check_step_name, check_task_id, is_id, \
    is_step_name


class ArtifactRef(NamedTuple):
    """Where one artifact's value is stored, and what it is (for listings)."""

    sha: str
    fmt: str
    type_name: str
    size: int
    inline: str | None = None   # a small value's bytes (base64), kept in the record

    def as_record(self) -> list[Any]:
        """The ref as a task record keeps it (``[sha, fmt, type, size(, inline)]``)."""
        return list(self) if self.inline is not None else list(self[:4])


class ArtifactStore:
    """Reads and writes one flow's runs under a root folder or URL.

    The file operations are the strategy's (``self.files``, see ``files.py``): a
    local folder or any fsspec filesystem; nothing here asks which.

    >>> store = ArtifactStore(".daskflow", "HelloFlow")      # doctest: +SKIP
    >>> ref = store.put_artifact([1, 2, 3])
    >>> store.get_artifact(ref)
    [1, 2, 3]
    """

    def __init__(self, root: str, flow_name: str) -> None:
        self.root_url = root
        self.flow_name = check_flow_name(flow_name)
        self.files = files_for(root)
        self.fs = self.files.fs
        self.flow_root = f"{self.files.base.rstrip('/')}/{flow_name}"
        self._batches: dict[tuple[str, str], batches.StepBatches] = {}
        self._foreach_files: dict[str, bytes] = {}   # small foreach files, read whole

    @property
    def local(self) -> bool:
        """True when the datastore is a folder on this machine."""
        return self.files.local

    # -- paths ----------------------------------------------------------------------

    def run_path(self, run_id: str) -> str:
        return f"{self.flow_root}/{check_run_id(run_id)}"

    def step_path(self, run_id: str, step: str) -> str:
        return f"{self.run_path(run_id)}/{check_step_name(step)}"

    def task_path(self, run_id: str, step: str, task_id: str) -> str:
        return f"{self.step_path(run_id, step)}/{check_task_id(task_id)}"

    def blob_path(self, sha: str) -> str:
        """Where an artifact lives: a blob, or a folder for a key like ``dd/<uuid>``."""
        if "/" in sha:
            return f"{self.flow_root}/_data/{sha}"
        return f"{self.flow_root}/_data/{sha[:2]}/{sha}"

    def url(self, path: str) -> str:
        """``path`` as a URL that another process (a Dask worker) can open."""
        return self.files.url(path)

    def flow_exists(self) -> bool:
        """True once anything of this flow is stored."""
        return self.files.exists(self.flow_root)

    # -- records --------------------------------------------------------------------

    def _write_json(self, path: str, record: dict[str, Any], *, private: bool = False) -> None:
        self.files.write(path, json.dumps(record, default=str).encode(), private=private)

    def _read_json(self, path: str) -> dict[str, Any]:
        return json.loads(self.files.read(path))

    # Kept for runtime/resume.py, which is being rewritten: new callers use
    # read_task_file / write_task_file.
    def _read(self, path: str) -> bytes:
        return self.files.read(path)

    def _write(self, path: str, data: bytes) -> None:
        self.files.write(path, data)

    # -- artifacts ------------------------------------------------------------------

    def put_artifact(self, value: Any, name: str = "?", inline: bool = False) -> ArtifactRef:
        """Store ``value`` once (by content) and return its reference.

        A dask DataFrame or Series is written as Parquet by the cluster's workers
        into a folder of its own (see :meth:`_put_dask`).  With ``inline``, a value
        smaller than ``daskflow.datastore.inline-limit`` is not written at all: its
        bytes travel in the reference, which the task's record keeps.
        """
        if dataframes.is_dask_frame(value):
            return self._put_dask(value, name)
        if inline:
            ref = _inline_ref(value)
            if ref is not None:
                return ref
        try:
            with self._blob_writer(name) as blob:
                fmt = serializers.dump(value, blob)
        except (ArtifactError, DatastoreWriteError):
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
        if ref.inline is not None:
            try:
                return serializers.loads(ref.fmt, base64.b64decode(ref.inline))
            except Exception as exc:
                raise ArtifactError(
                    f"Artifact '{name}' (kept in its task's record) cannot be loaded as "
                    f"{ref.fmt}: {type(exc).__name__}: {exc}. The record is corrupt or was "
                    f"written by an incompatible version.") from exc
        path = self.blob_path(ref.sha)
        try:
            with self.files.source(path) as source:
                return serializers.load(ref.fmt, source)
        except Exception as exc:
            if isinstance(exc, FileNotFoundError) or not self.files.exists(path):
                raise ArtifactError(
                    f"Artifact '{name}' is missing from the datastore: {path} does not exist. "
                    f"It may have been deleted; rerun the step that made it.") from exc
            raise ArtifactError(
                f"Artifact '{name}' at {path} cannot be loaded as {ref.fmt}: "
                f"{type(exc).__name__}: {exc}. The file is corrupt or was written by an "
                f"incompatible version.") from exc

    @contextmanager
    def _blob_writer(self, name: str) -> Iterator[_HashingWriter]:
        """A file to serialize into; on success it becomes the blob named by its hash.

        A write that fails (disk full) leaves no temporary file and raises
        :class:`DatastoreWriteError`, whatever the serializer made of the error.
        """
        data_root = f"{self.flow_root}/_data"
        what = f"artifact '{name}' to"
        tmp = self.files.blob_temp(data_root)
        try:
            with writing(data_root, what=what):
                f = open(tmp, "w+b")
            blob = _HashingWriter(f)
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
                self.files.commit_blob(tmp, self.blob_path(blob.sha))
        finally:
            discard(tmp)  # still there unless it became the blob

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
            if self.files.exists(f"{self.blob_path(ref.sha)}/{dataframes.MANIFEST}"):
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
        target = self.files.folder_target(final)
        try:
            written = dataframes.write_dask(plan, self.url(target), self.fs.storage_options)
            files = [dataframes.partition_file_name(i) for i in range(len(written))]
            manifest = {**plan.manifest, "files": files,
                        "rows": [w["rows"] for w in written],
                        "bytes": sum(w["bytes"] for w in written)}
            self._write_json(f"{target}/{dataframes.MANIFEST}", manifest)
            self.files.publish_folder(target, final)
        except BaseException as exc:
            self._remove_tree(target)
            if isinstance(exc, (ArtifactError, DatastoreWriteError)) \
                    or not isinstance(exc, Exception):
                raise
            if is_disk_full(exc):  # raised by a worker writing a partition
                raise write_error(final, exc, f"artifact '{name}' ({kind}) to") from exc
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
        self.files.refresh(folder)  # written by other processes
        present = set(self.files.listdir(folder))
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

    def frame_files(self, ref: ArtifactRef, name: str = "?") -> tuple[list[str], Any]:
        """A DataFrame artifact's Parquet files, as URLs a worker can open, and its
        empty meta (a pandas DataFrame or Series with the stored dtypes).

        Reads the file's footer (a pandas artifact) or the folder's manifest (a dask
        one), never rows; used by :func:`~daskflow.datastore.concat.concat_frames`.
        """
        from .concat import read_footer_meta, read_manifest_meta

        if ref.fmt == serializers.DASK_PARQUET:
            folder = self.blob_path(ref.sha)
            try:
                manifest = self._read_json(f"{folder}/{dataframes.MANIFEST}")
                meta = read_manifest_meta(manifest)
            except FileNotFoundError as exc:
                raise ArtifactError(
                    f"Artifact '{name}' (dask {ref.type_name}) is missing or incomplete: "
                    f"{folder} has no manifest. Rerun the step that made it.") from exc
            except Exception as exc:
                raise ArtifactError(
                    f"Artifact '{name}' (dask {ref.type_name}): the manifest in {folder} is "
                    f"corrupt ({type(exc).__name__}: {exc}). Rerun the step that made it.") \
                    from exc
            return [self.url(f"{folder}/{f}") for f in manifest["files"]], meta
        path = self.blob_path(ref.sha)
        try:
            with self.files.source(path) as source:
                meta = read_footer_meta(source)
        except FileNotFoundError as exc:
            raise ArtifactError(
                f"Artifact '{name}' is missing from the datastore: {path} does not exist. "
                f"Rerun the step that made it.") from exc
        except Exception as exc:
            raise ArtifactError(
                f"Artifact '{name}' at {path} is not a readable Parquet file "
                f"({type(exc).__name__}: {exc}). Rerun the step that made it.") from exc
        return [self.url(path)], meta

    def _remove_tree(self, path: str) -> None:
        """Best-effort removal of a partial write (a straggling task may still add a file)."""
        try:
            self.files.remove_tree(path)
        except Exception:
            pass

    # -- runs -------------------------------------------------------------------------

    def new_run_id(self) -> str:
        """A fresh, time-ordered run id, unique even for runs started at the same moment."""
        while True:
            run_id = str(time.time_ns() // 1000)
            if self.files.create_exclusive(f"{self.run_path(run_id)}/_run.json", b"{}"):
                return run_id

    def write_run(self, run_id: str, record: dict[str, Any]) -> None:
        # private: it holds the run's scheduler and dashboard addresses
        self._write_json(f"{self.run_path(run_id)}/_run.json", record, private=True)

    def read_run(self, run_id: str) -> dict[str, Any]:
        path = f"{self.run_path(run_id)}/_run.json"
        try:
            return self._read_json(path)
        except FileNotFoundError as exc:
            raise DataNotFoundError(
                f"Run '{self.flow_name}/{run_id}' does not exist in {self.flow_root}.") from exc

    # Listings keep only what is theirs: a stray file (.DS_Store, a note, a copy)
    # in a flow, run or step folder is skipped, never taken for a run, step or task.

    def list_runs(self) -> list[str]:
        return [name for name in self.files.listdir(self.flow_root) if is_id(name)]

    def list_steps(self, run_id: str) -> list[str]:
        return [name for name in self.files.folders(self.run_path(run_id))
                if is_step_name(name) and not name.startswith("_")]

    def list_tasks(self, run_id: str, step: str) -> list[str]:
        folder = f"{self.run_path(run_id)}/{check_step_name(step)}"
        own = [name for name in self.files.folders(folder) if is_id(name)]
        index = self.step_batches(run_id, step)
        batched = index.task_ids() - set(own)
        index.folders = set(own)  # until the next look at the batches
        return own + sorted(batched, key=int)

    def step_batches(self, run_id: str, step: str) -> batches.StepBatches:
        """The index of a step's batch objects, kept for this store's life (they never
        change once written; new ones are found when a lookup misses)."""
        key = (run_id, step)
        found = self._batches.get(key)
        if found is None:
            folder = f"{self.step_path(run_id, step)}/{batches.FOLDER}"
            found = self._batches[key] = batches.StepBatches(self.files, folder)
        return found

    def write_batch(self, run_id: str, step: str, entries: list[dict[str, Any]]) -> None:
        """Commit the records of a batch of splits, all at once (one object, atomic)."""
        if not entries:
            return
        name = batches.object_name([e["task_id"] for e in entries])
        folder = f"{self.step_path(run_id, step)}/{batches.FOLDER}"
        self.files.write(f"{folder}/{name}", batches.encode(entries))

    def remove_orphaned_temp_files(self, older_than: float | str | None = None) -> list[str]:
        """Remove the temporary files that writers killed mid-write left in this flow's
        folder (``_data/.tmp-*``, ``*.tmp-*``); return their paths.

        Only what nobody has written to for ``older_than`` (seconds, or a duration
        such as ``"1 hour"``; default ``daskflow.datastore.orphan-age``) goes, so the
        writes of runs still going on are left alone.  Object stores write whole
        objects and hold no temporary files of ours: nothing to do there.

        >>> store.remove_orphaned_temp_files()                 # doctest: +SKIP
        ['.../HelloFlow/_data/.tmp-5f0c...']
        """
        from .. import config

        setting = config.get("datastore.orphan-age", override_with=older_than)
        if setting is None:
            return []
        try:
            seconds = parse_timedelta(setting, default="seconds")
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(
                f"daskflow.datastore.orphan-age is {setting!r}: give a duration such as "
                f"'1 hour' or a number of seconds (null: never remove).") from exc
        return self.files.remove_stale_temps(self.flow_root, seconds)

    # -- tasks ------------------------------------------------------------------------

    def claim_attempt(self, run_id: str, step: str, task_id: str,
                      record: dict[str, Any]) -> int:
        """Claim the next attempt number of a task (attempts that died keep theirs)."""
        base = self.task_path(run_id, step, task_id)
        attempt = max(self.step_batches(run_id, step).entries_of(task_id), default=-1) + 1
        while True:
            record["attempt"] = attempt
            if self.files.create_exclusive(f"{base}/{attempt}.start.json",
                                      json.dumps(record).encode()):
                folders = self.step_batches(run_id, step).folders
                if folders is not None:
                    folders.add(task_id)
                return attempt
            attempt += 1

    def write_done(self, run_id: str, step: str, task_id: str, attempt: int,
                   record: dict[str, Any]) -> None:
        self._write_json(f"{self.task_path(run_id, step, task_id)}/{attempt}.done.json", record)

    def list_attempts(self, run_id: str, step: str, task_id: str) -> list[int]:
        index = self.step_batches(run_id, step)
        batched = index.entries_of(task_id)
        if batched and index.folders is not None and task_id not in index.folders:
            return sorted(batched)  # a batched task with no folder of its own (listed)
        return sorted(self.file_attempts(run_id, step, task_id) | set(batched))

    def file_attempts(self, run_id: str, step: str, task_id: str) -> set[int]:
        """The attempts of a task claimed in its own folder (not in a batch object)."""
        names = self.files.listdir(self.task_path(run_id, step, task_id))
        return {int(n.split(".", 1)[0]) for n in names
                if n.endswith(".start.json") and n.split(".", 1)[0].isdigit()}

    def _batched(self, run_id: str, step: str, task_id: str,
                 attempt: int) -> dict[str, Any] | None:
        return self.step_batches(run_id, step).entries_of(task_id).get(attempt)

    def read_start(self, run_id: str, step: str, task_id: str, attempt: int) -> dict[str, Any]:
        entry = self._batched(run_id, step, task_id, attempt)
        if entry is not None:
            return entry["start"]
        return self._read_json(f"{self.task_path(run_id, step, task_id)}/{attempt}.start.json")

    def read_done(self, run_id: str, step: str, task_id: str,
                  attempt: int) -> dict[str, Any] | None:
        entry = self._batched(run_id, step, task_id, attempt)
        if entry is not None:
            return entry.get("done")
        try:
            return self._read_json(
                f"{self.task_path(run_id, step, task_id)}/{attempt}.done.json")
        except FileNotFoundError:
            return None

    def write_log(self, run_id: str, step: str, task_id: str, attempt: int,
                  stream: str, text: str) -> None:
        if text:
            self.files.write(f"{self.task_path(run_id, step, task_id)}/{attempt}.{stream}",
                             text.encode("utf-8", "replace"))

    def read_log(self, run_id: str, step: str, task_id: str, attempt: int, stream: str) -> str:
        entry = self._batched(run_id, step, task_id, attempt)
        if entry is not None:
            return entry.get(stream, "")
        try:
            data = self.files.read(
                f"{self.task_path(run_id, step, task_id)}/{attempt}.{stream}")
        except FileNotFoundError:
            return ""
        return data.decode("utf-8", "replace")

    def write_task_file(self, run_id: str, step: str, task_id: str, name: str,
                        data: bytes) -> None:
        """Keep a file with a task, e.g. ``0.performance.html`` (atomic, like every write)."""
        self.files.write(f"{self.task_path(run_id, step, task_id)}/{name}", data)

    def read_task_file(self, run_id: str, step: str, task_id: str, name: str) -> bytes:
        """A file kept with a task; ``FileNotFoundError`` if there is none."""
        return self.files.read(f"{self.task_path(run_id, step, task_id)}/{name}")

    # -- foreach items: one file, each split reads only its own slice ----------------

    def _read_small_foreach(self, path: str) -> bytes | None:
        """A foreach file of an object store, whole, when it is small (kept: written once,
        it never changes), so the splits of a batch cost one request, not two each."""
        with self.files.open(path) as f:
            (count,) = struct.unpack("<Q", f.read(8))
            f.seek(8 + 8 * count)
            (size,) = struct.unpack("<Q", f.read(8))
            if size + 8 * (count + 2) > FOREACH_CACHE_BYTES:
                return None
        whole = self.files.read(path)
        if len(self._foreach_files) >= 4:
            self._foreach_files.pop(next(iter(self._foreach_files)))
        self._foreach_files[path] = whole
        return whole

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
        self.files.write(f"{self.task_path(run_id, step, task_id)}/{attempt}.foreach",
                         header + b"".join(parts))

    def read_foreach_item(self, run_id: str, step: str, task_id: str, attempt: int,
                          index: int) -> Any:
        path = f"{self.task_path(run_id, step, task_id)}/{attempt}.foreach"
        whole = self._foreach_files.get(path)
        if whole is None and not self.files.local:
            whole = self._read_small_foreach(path)
        if whole is not None:  # a batch of splits reads its items from one read
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

    def iter_foreach_items(self, run_id: str, step: str, task_id: str,
                           attempt: int) -> Iterator[Any]:
        """Every item of a foreach list in order, from one read of its file (for a pass
        over all splits, such as their resources per split)."""
        data = memoryview(self.files.read(
            f"{self.task_path(run_id, step, task_id)}/{attempt}.foreach"))
        (count,) = struct.unpack_from("<Q", data)
        offsets = struct.unpack_from(f"<{count + 1}Q", data, 8)
        base = 8 + 8 * (count + 1)
        for start, end in zip(offsets, offsets[1:]):
            yield cloudpickle.loads(data[base + start:base + end])


_INLINE_TYPES = (type(None), bool, int, float, complex, str, bytes)
_INLINE_CONTAINERS = (list, tuple, dict, set, frozenset)


def _inline_ref(value: Any) -> ArtifactRef | None:
    """The reference of a value small enough to keep in its record, else None.

    Only values whose pickled size is cheap to find out are tried (scalars, short
    strings and containers, small numpy values): a big value is never pickled twice.
    """
    from .. import config

    limit = _byte_limit(config.get("datastore.inline-limit"))
    kind = type(value)
    if kind in (str, bytes):
        small = len(value) < limit
    elif kind in _INLINE_TYPES:
        small = True
    elif kind in _INLINE_CONTAINERS:
        small = len(value) <= 64
    else:
        nbytes = getattr(value, "nbytes", None)
        small = isinstance(nbytes, int) and nbytes < limit and not dataframes.pandas_kind(value)
    if not small or limit <= 0:
        return None
    try:
        fmt, data = serializers.dumps(value)
    except Exception:  # noqa: BLE001  put_artifact says what is wrong with it
        return None
    if len(data) >= limit:
        return None
    return ArtifactRef(hashlib.sha1(data).hexdigest(), fmt, kind.__name__, len(data),
                       base64.b64encode(data).decode("ascii"))


@functools.lru_cache(maxsize=8)
def _byte_limit(value: Any) -> int:
    """A size setting (``"1KiB"``, a number of bytes) in bytes."""
    from dask.utils import parse_bytes
    try:
        return parse_bytes(value) if isinstance(value, str) else int(value or 0)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"daskflow.datastore.inline-limit is {value!r}: give a size such as '1KiB' or a "
            f"number of bytes (0: keep every artifact as a blob).") from exc


FOREACH_CACHE_BYTES = 16 * 2**20  # an object store's foreach file up to this is read whole


class _HashingWriter:
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
