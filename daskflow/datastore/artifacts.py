"""Artifacts: a task's values stored and loaded back as what they were.

A value is serialized (``serializers.py``: Parquet for pandas frames, ``.npy``
for plain arrays, cloudpickle for the rest) into a content-addressed blob
(``blobs.py``) and named by an :class:`ArtifactRef`, which the task's record
keeps.  Two kinds skip the blob:

- a value smaller than ``daskflow.datastore.inline-limit`` made where the records
  ask for it (a batch of splits, ``BatchRecords``) travels inside the reference
  itself (:attr:`ArtifactRef.inline`), so a batch writes one object, not one per value;
- a dask DataFrame or Series is written by the cluster's workers into a folder of
  Parquet files of its own (``dataframes.py``), its manifest last, and loads back
  as a lazy dask DataFrame; one read from this datastore and stored again
  unchanged keeps its folder.

>>> artifacts = Artifacts(files, layout, blobs)                # doctest: +SKIP
>>> ref = artifacts.put([1, 2, 3], "x")
>>> artifacts.get(ref, "x")
[1, 2, 3]
"""

from __future__ import annotations

import base64
import functools
import hashlib
from typing import Any, NamedTuple

from ..exceptions import ArtifactError, ConfigurationError, DatastoreUnavailable, \
    DatastoreWriteError
from . import dataframes, serializers
from .blobs import BlobStore
from .files import FsspecFiles, LocalFiles, is_disk_full, write_error
from .layout import MANIFEST, Layout, new_dask_key, partition_file


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


class Artifacts:
    """Stores and loads one flow's artifacts (see the module's docstring)."""

    def __init__(self, files: LocalFiles | FsspecFiles, layout: Layout,
                 blobs: BlobStore) -> None:
        self.files = files
        self.layout = layout
        self.blobs = blobs

    def put(self, value: Any, name: str = "?", inline: bool = False) -> ArtifactRef:
        """Store ``value`` once (by content) and return its reference.

        With ``inline``, a value smaller than ``daskflow.datastore.inline-limit`` is
        not written at all: its bytes travel in the reference.
        """
        if dataframes.is_dask_frame(value):
            return self._put_dask(value, name)
        if inline:
            ref = inline_ref(value)
            if ref is not None:
                return ref
        try:
            with self.blobs.writer(f"artifact '{name}' to") as blob:
                fmt = serializers.dump(value, blob)
        except (ArtifactError, DatastoreWriteError, DatastoreUnavailable):
            raise
        except Exception as exc:
            raise ArtifactError(
                f"Artifact '{name}' ({type(value).__name__}) cannot be stored: "
                f"{type(exc).__name__}: {exc}. Keep only picklable values on self "
                f"(open files, locks, sockets and clients are not).") from exc
        return ArtifactRef(blob.sha, fmt, type(value).__name__, blob.size)

    def get(self, ref: ArtifactRef, name: str = "?") -> Any:
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
        path = self.blobs.path(ref.sha)
        try:
            with self.blobs.source(ref.sha, ref.size) as source:
                return serializers.load(ref.fmt, source)
        except DatastoreUnavailable:
            raise
        except Exception as exc:
            if isinstance(exc, FileNotFoundError) or not self.files.exists(path):
                raise ArtifactError(
                    f"Artifact '{name}' is missing from the datastore: {path} does not exist. "
                    f"It may have been deleted; rerun the step that made it.") from exc
            raise ArtifactError(
                f"Artifact '{name}' at {path} cannot be loaded as {ref.fmt}: "
                f"{type(exc).__name__}: {exc}. The file is corrupt or was written by an "
                f"incompatible version.") from exc

    def missing(self, refs: list[ArtifactRef]) -> list[ArtifactRef]:
        """Those of ``refs`` whose value is gone from the store (a blob, or a dask
        artifact's manifest), found without reading any of them: one listing per folder
        holding several (see the files layer); a value kept in its reference never is."""
        paths = {}
        for ref in refs:
            if ref.inline is not None:
                continue
            if ref.fmt == serializers.DASK_PARQUET:
                paths[self.layout.frame_file(ref.sha, MANIFEST)] = ref
            else:
                paths[self.layout.blob(ref.sha)] = ref
        there = self.files.existing(list(paths))
        return [ref for path, ref in paths.items() if path not in there]

    # -- dask DataFrames: a folder of Parquet files ---------------------------------------

    def read_manifest(self, ref: ArtifactRef) -> dict[str, Any]:
        """A dask artifact's manifest (``FileNotFoundError``/``ValueError`` as they come)."""
        return self.files.read_json(self.layout.frame_file(ref.sha, MANIFEST))

    def frame_urls(self, ref: ArtifactRef, manifest: dict[str, Any]) -> list[str]:
        """A dask artifact's Parquet files, in partition order, as URLs a worker opens."""
        return [self.files.url(self.layout.frame_file(ref.sha, f)) for f in manifest["files"]]

    def _put_dask(self, value: Any, name: str) -> ArtifactRef:
        """Write a dask collection as a folder of Parquet files, one per partition.

        The partitions are computed and written by the workers of the cluster
        this runs on, straight into the datastore; the manifest is written
        last, and on a local disk the folder gets its real name only then.
        On any failure what was written is removed and nothing is referenced.
        """
        loaded = dataframes.loaded_from(value)
        if loaded is not None and loaded.flow == self.layout.flow:
            if self.files.exists(self.layout.frame_file(loaded.ref.sha, MANIFEST)):
                return loaded.ref  # read from this datastore and unchanged: nothing to write
        kind = f"dask {type(value).__name__}"
        try:
            plan = dataframes.plan_dask(value, name)
        except dataframes.NotParquetable as exc:
            raise ArtifactError(
                f"Artifact '{name}' ({kind}) cannot be stored as Parquet: {exc}. Convert "
                f"those columns (ddf.astype(...)) or keep them out of self.") from exc
        key = new_dask_key()
        final = self.layout.blob(key)
        target = self.files.folder_target(final)
        try:
            written = dataframes.write_dask(plan, self.files.url(target),
                                            self.files.storage_options)
            files = [partition_file(i) for i in range(len(written))]
            manifest = {**plan.manifest, "files": files,
                        "rows": [w["rows"] for w in written],
                        "bytes": sum(w["bytes"] for w in written)}
            self.files.write_json(f"{target}/{MANIFEST}", manifest)
            self.files.publish_folder(target, final)
        except BaseException as exc:
            self._remove_tree(target)
            if isinstance(exc, (ArtifactError, DatastoreWriteError, DatastoreUnavailable)) \
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
        folder = self.layout.blob(ref.sha)
        marker = self.layout.frame_file(ref.sha, MANIFEST)
        try:
            manifest = self.read_manifest(ref)
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
        missing = [self.layout.frame_file(ref.sha, f) for f in manifest["files"]
                   if f not in present]
        if missing:
            raise ArtifactError(
                f"Artifact '{name}' (dask {ref.type_name}) is missing {len(missing)} of its "
                f"{len(manifest['files'])} Parquet files, e.g. {missing[0]}. Rerun the step "
                f"that made it.")
        urls = self.frame_urls(ref, manifest)
        options = dict(self.files.storage_options)
        try:
            ddf = dataframes.open_dask(urls, options, manifest, name)
        except Exception as exc:
            raise ArtifactError(
                f"Artifact '{name}' (dask {ref.type_name}) at {folder} cannot be opened: "
                f"{type(exc).__name__}: {exc}. Its manifest is corrupt or was written by an "
                f"incompatible version.") from exc
        dataframes.remember_loaded(ddf, dataframes.Loaded(
            self.layout.flow, ref, urls, options, manifest,
            self.files.url(self.layout.frame_file(ref.sha, MANIFEST))))
        return ddf

    def _remove_tree(self, path: str) -> None:
        """Best-effort removal of a partial write (a straggling task may still add a file)."""
        try:
            self.files.remove_tree(path)
        except Exception:
            pass


# -- small values, kept in their task's record ---------------------------------------------

_INLINE_TYPES = (type(None), bool, int, float, complex, str, bytes)
_INLINE_CONTAINERS = (list, tuple, dict, set, frozenset)


def inline_ref(value: Any) -> ArtifactRef | None:
    """The reference of a value small enough to keep in its record, else None.

    Only values whose pickled size is cheap to find out are tried (scalars, short
    strings and containers, small numpy values): a big value is never pickled twice.
    """
    from .. import config

    limit = byte_limit(config.get("datastore.inline-limit"))
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
    except Exception:  # noqa: BLE001  put() says what is wrong with it
        return None
    if len(data) >= limit:
        return None
    return ArtifactRef(hashlib.sha1(data).hexdigest(), fmt, kind.__name__, len(data),
                       base64.b64encode(data).decode("ascii"))


@functools.lru_cache(maxsize=8)
def byte_limit(value: Any) -> int:
    """A size setting (``"1KiB"``, a number of bytes) in bytes."""
    from dask.utils import parse_bytes
    try:
        return parse_bytes(value) if isinstance(value, str) else int(value or 0)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"daskflow.datastore.inline-limit is {value!r}: give a size such as '1KiB' or a "
            f"number of bytes (0: keep every artifact as a blob).") from exc
