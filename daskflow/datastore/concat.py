"""Many tasks' DataFrame artifacts as one lazy dask DataFrame, reading no rows.

A join of a wide foreach, or a client looking at all the tasks of a step, often
wants every task's ``result`` table as one table.  Loading them one by one puts
them all in one process; :func:`concat_frames` instead builds a ``dd.from_map``
over their stored Parquet files (one file of a pandas artifact, each partition
file of a dask artifact), one partition per file, and reads only the footers
(pandas) or manifests (dask) to check that every input has the same columns and
dtypes.  Rows are read by the workers that compute the result.

>>> frame = concat_frames(store.artifacts, [("train/3", ref3), ("train/4", ref4)], "result")
... # doctest: +SKIP
>>> frame.groupby("k").x.sum().compute()                           # doctest: +SKIP
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from ..exceptions import ArtifactError
from . import dataframes
from .artifacts import ArtifactRef, Artifacts
from .serializers import DASK_PARQUET, PARQUET, PARQUET_SERIES

FRAME_FORMATS = (PARQUET, PARQUET_SERIES, DASK_PARQUET)


def concat_frames(artifacts: Artifacts, sources: Sequence[tuple[str, ArtifactRef]],
                  name: str, *, where: str = "frame") -> Any:
    """One lazy dask DataFrame (or Series) over the artifacts ``sources`` point to.

    Parameters
    ----------
    artifacts : Artifacts
        Where the artifacts are (``ArtifactStore.artifacts``).
    sources : list of (label, ArtifactRef)
        One per task, in order; the label (``"train/12"``) names the task in errors.
    name : str
        The artifact's name, for messages.
    where : str
        What the user called (``"inputs.frame"``), for messages.

    Raises :class:`ArtifactError` naming the task whose artifact is not a pandas or
    dask DataFrame (or Series), or whose columns or dtypes differ from the first's.
    """
    import dask
    import dask.dataframe as dd
    from dask.dataframe.utils import clear_known_categories

    if not sources:
        raise ArtifactError(f"{where}('{name}'): there are no tasks to read '{name}' from.")
    pieces: list[str] = []
    labels: list[str] = []
    first: tuple[str, Any] | None = None
    for label, ref in sources:
        if ref.fmt not in FRAME_FORMATS:
            pickled = " that Parquet could not hold, so it was pickled" \
                if ref.type_name in ("DataFrame", "Series") else ""
            raise ArtifactError(
                f"{where}('{name}'): the artifact '{name}' of {label} is a {ref.type_name}"
                f"{pickled}, not a pandas or dask DataFrame stored as Parquet; "
                f"{where}() combines DataFrame artifacts only.")
        try:
            urls, meta = frame_files(artifacts, ref, name)
        except ArtifactError as exc:
            raise ArtifactError(f"{where}('{name}'), {label}: {exc}") from exc
        if first is None:
            first, described = (label, meta), _describe(meta)
        elif meta is not first[1]:  # the same footer schema gives the very same meta
            _refuse_other_schema(where, name, first, described, (label, meta))
        pieces.extend(urls)
        labels.extend([label] * len(urls))
    assert first is not None
    # Categories live in each file's data: declare them unknown, as dd.read_parquet does.
    meta = clear_known_categories(first[1])
    reader = PieceReader(name, dict(artifacts.files.storage_options), series=meta.ndim == 1,
                         series_name=meta.name if meta.ndim == 1 else None)
    # dask's string conversion would turn object columns (Decimals, bytes) into strings;
    # each file already holds the dtypes its task stored.
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_map(reader, list(zip(pieces, labels)), meta=meta,
                           label=f"read-{name}", enforce_metadata=False)


def frame_files(artifacts: Artifacts, ref: ArtifactRef, name: str = "?") -> tuple[list[str], Any]:
    """A DataFrame artifact's Parquet files, as URLs a worker can open, and its
    empty meta (a pandas DataFrame or Series with the stored dtypes).

    Reads the file's footer (a pandas artifact) or the folder's manifest (a dask
    one), never rows.
    """
    blobs = artifacts.blobs
    if ref.fmt == DASK_PARQUET:
        folder = blobs.path(ref.sha)
        try:
            manifest = artifacts.read_manifest(ref)
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
        return artifacts.frame_urls(ref, manifest), meta
    path = blobs.path(ref.sha)
    try:
        with blobs.source(ref.sha, ref.size) as source:
            meta = read_footer_meta(source)
    except FileNotFoundError as exc:
        raise ArtifactError(
            f"Artifact '{name}' is missing from the datastore: {path} does not exist. "
            f"Rerun the step that made it.") from exc
    except Exception as exc:
        raise ArtifactError(
            f"Artifact '{name}' at {path} is not a readable Parquet file "
            f"({type(exc).__name__}: {exc}). Rerun the step that made it.") from exc
    return [blobs.url(ref.sha)], meta


class PieceReader:
    """Reads one file of one task's artifact; a bad or missing file names the task.

    Has a ``columns=`` keyword, so dask pushes column selections down into it.
    """

    def __init__(self, name: str, storage_options: dict[str, Any], *, series: bool = False,
                 series_name: Any = None) -> None:
        self.name = name
        self.storage_options = storage_options
        self.series = series
        self.series_name = series_name

    def __call__(self, piece: tuple[str, str], columns: list[str] | None = None) -> Any:
        url, label = piece
        try:
            part = dataframes.read_pandas_file(url, columns=columns,
                                               storage_options=self.storage_options)
        except Exception as exc:
            what = "is missing" if isinstance(exc, FileNotFoundError) else "cannot be read"
            raise ArtifactError(
                f"Artifact '{self.name}' of {label}: Parquet file {url} {what} "
                f"({type(exc).__name__}: {exc}). Rerun the step that made it.") from exc
        if self.series:  # a dask Series' files hold it as a one-column frame
            part = part.iloc[:, 0] if part.ndim == 2 else part
            part = part.rename(self.series_name)
        return part

    def __dask_tokenize__(self) -> Any:
        return (type(self).__name__, self.name, sorted(self.storage_options.items()),
                self.series, self.series_name)


def _describe(meta: Any) -> dict[str, str]:
    """Columns (or the Series' name), index and dtypes as text, for comparing and telling."""
    described = {"(index)": f"{list(meta.index.names)} {_dtype_text(meta.index.dtype)}"}
    if meta.ndim == 1:
        described[f"(series {meta.name!r})"] = _dtype_text(meta.dtype)
        return described
    for label, dtype in meta.dtypes.items():
        described[repr(label)] = _dtype_text(dtype)
    return described


def _dtype_text(dtype: Any) -> str:
    # A categorical's categories are in its data; only being one, and ordered, count.
    if str(dtype) == "category":
        return "category (ordered)" if dtype.ordered else "category"
    return str(dtype)


def _refuse_other_schema(where: str, name: str, first: tuple[str, Any],
                         want: dict[str, str], other: tuple[str, Any]) -> None:
    label0, (label, meta) = first[0], other
    got = _describe(meta)
    if want == got:
        return
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    changed = [f"{k} is {got[k]} there but {want[k]} in {label0}"
               for k in want if k in got and want[k] != got[k]]
    what = "; ".join(
        ([f"lacks {', '.join(missing)}"] if missing else [])
        + ([f"has {', '.join(extra)} that {label0} lacks"] if extra else []) + changed)
    raise ArtifactError(
        f"{where}('{name}'): the artifact '{name}' of {label} does not match that of "
        f"{label0}: it {what}. Store the same columns and dtypes in every task "
        f"(df.astype(...)).")


def read_manifest_meta(manifest: dict[str, Any]) -> Any:
    """The empty DataFrame or Series a dask artifact's manifest describes."""
    import base64
    import io

    meta = dataframes.read_pandas(io.BytesIO(base64.b64decode(manifest["meta"]))).iloc[:0]
    if manifest.get("kind") == "series":
        return meta.iloc[:, 0].rename(dataframes._decode_label(manifest.get("name")))
    return meta


# Empty metas by footer schema: the tasks of a foreach mostly store the same one, and
# rebuilding it costs milliseconds, a second for a thousand inputs.
_METAS: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_METAS_MAX = 64
_METAS_LOCK = threading.Lock()


def read_footer_meta(source: Any) -> Any:
    """The empty DataFrame or Series a pandas artifact's file holds, from its footer.

    Files whose schemas differ only in their row count give the same (shared) object.
    """
    import pyarrow.parquet as pq

    schema = pq.read_schema(source)
    metadata = schema.metadata or {}
    key = (schema.remove_metadata(), metadata.get(dataframes.METADATA_KEY),
           _without_row_count(metadata.get(b"pandas")))
    with _METAS_LOCK:
        if key in _METAS:
            _METAS.move_to_end(key)
            return _METAS[key]
    info = json.loads(metadata[dataframes.METADATA_KEY]) \
        if dataframes.METADATA_KEY in metadata else {}
    meta = dataframes._restore(schema.empty_table(), info)
    with _METAS_LOCK:
        _METAS[key] = meta
        while len(_METAS) > _METAS_MAX:
            _METAS.popitem(last=False)
    return meta


def _without_row_count(pandas_metadata: bytes | None) -> str | None:
    """pandas' schema metadata less a RangeIndex's bounds, which vary with the rows."""
    if pandas_metadata is None:
        return None
    info = json.loads(pandas_metadata)
    for index in info.get("index_columns") or []:
        if isinstance(index, dict):
            index.pop("start", None)
            index.pop("stop", None)
    return json.dumps(info, sort_keys=True)
