"""pandas and dask DataFrames as Parquet artifacts.

pandas
    A ``DataFrame`` or ``Series`` becomes one Parquet file written with pyarrow,
    in row groups of about 64 MiB, so storing a big frame never holds a second
    full copy of it in memory.  Index, column labels and dtypes come back as
    they were: pyarrow's pandas metadata covers most of them, and what it does
    not (object columns of strings, ``string[python]``, a Series' name,
    ``attrs``) is recorded as JSON under the ``daskflow`` key of the file's
    metadata.  Before writing, the planned schema is read back empty and
    compared with the frame; a frame that would not come back the same raises
    :class:`NotParquetable`, and the caller pickles it instead.

dask
    A dask ``DataFrame`` or ``Series`` becomes a folder of Parquet files, one
    per partition, each written like a pandas artifact by the workers of the
    cluster the code runs on (:func:`compute_on_cluster`), never gathered into
    one process.  A JSON manifest (:data:`MANIFEST`: files, rows, divisions and
    the exact meta) is written last and marks the folder complete.  Loading
    reads only the manifest and returns a lazy ``dd.from_map`` over the files,
    one task per file, reading only the columns used when it is computed.

    dask's own ``to_parquet``/``read_parquet`` are not used for artifacts: with
    pandas 3 they lose dtypes (object columns of Decimals or bytes become
    strings, known categories become unknown), cannot write object columns
    without an explicit schema, and read footers when loading.  The files are
    plain Parquet all the same, which ``dd.read_parquet``, pandas, pyarrow,
    duckdb or Spark read as they are.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import sys
import threading
from collections import OrderedDict
from typing import Any, NamedTuple

from .layout import MANIFEST, partition_file

logger = logging.getLogger(__name__)

PARQUET = "parquet"                 # a pandas DataFrame, one Parquet file
PARQUET_SERIES = "parquet-series"   # a pandas Series, one Parquet file of one column
DASK_PARQUET = "dask-parquet"       # a dask DataFrame or Series, a folder of Parquet files

METADATA_KEY = b"daskflow"
SERIES_COLUMN = "__daskflow_series__"
CHUNK_BYTES = 64 * 2**20

# Label types that Parquet's pandas metadata restores exactly (as pandas.infer_dtype names them).
_LABEL_KINDS = {"string", "empty", "integer", "floating", "boolean", "datetime", "datetime64",
                "timedelta", "timedelta64"}


class NotParquetable(Exception):
    """The value would not come back the same from Parquet; the message says why."""


# -- what is what (never imports pandas or dask for a plain value) --------------------

def pandas_kind(value: Any) -> str | None:
    """``"frame"`` or ``"series"`` for a plain pandas DataFrame or Series, else None.

    Subclasses (a GeoDataFrame, say) are not plain: Parquet would lose what
    they add, so they are pickled.
    """
    pd = sys.modules.get("pandas")
    if pd is None:
        return None
    if type(value) is pd.DataFrame:
        return "frame"
    if type(value) is pd.Series:
        return "series"
    return None


def is_dask_frame(value: Any) -> bool:
    """Whether ``value`` is a dask DataFrame or Series (the collections, not subclasses)."""
    dd = sys.modules.get("dask.dataframe")
    if dd is None:
        return False
    return type(value) in (getattr(dd, "DataFrame", None), getattr(dd, "Series", None))


# -- labels, attrs and dtypes as JSON --------------------------------------------------

def _encode_label(label: Any) -> Any:
    if label is None or type(label) in (str, bool, int, float):
        return label
    if type(label) is tuple:
        return {"tuple": [_encode_label(part) for part in label]}
    raise NotParquetable(f"the name {label!r} ({type(label).__name__}) cannot be recorded")


def _decode_label(data: Any) -> Any:
    if isinstance(data, dict):
        return tuple(_decode_label(part) for part in data["tuple"])
    return data


def _json_exact(value: Any, what: str) -> Any:
    try:
        if json.loads(json.dumps(value)) == value:
            return value
    except (TypeError, ValueError):
        pass
    raise NotParquetable(f"{what} {value!r} is not plain JSON")


def _dtype_spec(dtype: Any) -> dict[str, str] | None:
    """A JSON description of the dtypes pyarrow's metadata does not restore, else None."""
    import numpy as np
    import pandas as pd
    if isinstance(dtype, np.dtype) and dtype == np.dtype(object):
        return {"dtype": "object"}
    if isinstance(dtype, pd.StringDtype):
        na = "NA" if dtype.na_value is pd.NA else "nan"
        return {"dtype": "string", "storage": str(dtype.storage), "na": na}
    if isinstance(dtype, pd.CategoricalDtype) and dtype.categories.dtype.kind in "iufb":
        # Parquet keeps only string dictionaries; integer categories are set again.
        return {"dtype": "category", "categories": dtype.categories.tolist(),
                "categories_dtype": str(dtype.categories.dtype), "ordered": bool(dtype.ordered)}
    return None


def _dtype_from_spec(spec: dict[str, str]) -> Any:
    import numpy as np
    import pandas as pd
    if spec["dtype"] == "object":
        return np.dtype(object)
    if spec["dtype"] == "category":
        categories = pd.Index(spec["categories"], dtype=spec["categories_dtype"])
        return pd.CategoricalDtype(categories, ordered=spec["ordered"])
    return pd.StringDtype(spec["storage"], na_value=pd.NA if spec["na"] == "NA" else np.nan)


def _same_dtype(want: Any, got: Any) -> bool:
    import pandas as pd
    if isinstance(want, pd.CategoricalDtype) and _dtype_spec(want) is not None:
        return bool(want == got) and list(want.categories) == list(got.categories) \
            and want.categories.dtype == got.categories.dtype
    if isinstance(want, pd.CategoricalDtype):
        # Categories live in the data (the Parquet dictionary), not in the schema.
        return isinstance(got, pd.CategoricalDtype) and want.ordered == got.ordered
    return bool(want == got) and type(want) is type(got)


def _levels(index: Any) -> list[Any]:
    import pandas as pd
    if isinstance(index, pd.MultiIndex):
        return [index.levels[i] for i in range(index.nlevels)]
    return [index]


def _level_dtypes(index: Any) -> list[Any]:
    return [level.dtype for level in _levels(index)]


def _set_level_dtypes(index: Any, casts: dict[str, Any]) -> Any:
    import pandas as pd
    if not casts:
        return index
    if isinstance(index, pd.MultiIndex):
        for level, spec in casts.items():
            lvl = int(level)
            index = index.set_levels(index.levels[lvl].astype(_dtype_from_spec(spec)), level=lvl)
        return index
    return index.astype(_dtype_from_spec(casts["0"]))


def _freqs(index: Any) -> dict[str, str]:
    """The ``freq`` of each DatetimeIndex/TimedeltaIndex level (Parquet does not keep it)."""
    found = {}
    for i, level in enumerate(_levels(index)):
        freq = getattr(level, "freq", None)
        if freq is not None:
            found[str(i)] = freq.freqstr
    return found


def _set_freqs(index: Any, freqs: dict[str, str]) -> Any:
    import pandas as pd
    for level, freqstr in freqs.items():
        lvl = int(level)
        if isinstance(index, pd.MultiIndex):
            old = index.levels[lvl]
            index = index.set_levels(type(old)(old, freq=freqstr), level=lvl)
        else:
            index = type(index)(index, freq=freqstr)
    return index


# -- pandas: write -----------------------------------------------------------------------

class _Plan(NamedTuple):
    frame: Any
    schema: Any
    info: dict[str, Any]


def write_pandas(value: Any, sink: Any, preserve_index: bool | None = None) -> str:
    """Write a pandas DataFrame or Series to the binary file ``sink`` as Parquet.

    Returns the format (:data:`PARQUET` or :data:`PARQUET_SERIES`).  Raises
    :class:`NotParquetable` when the value would not come back the same; then
    ``sink`` may hold a partial file, which the caller discards.  With
    ``preserve_index=True`` a RangeIndex is stored as a column, not as metadata,
    so that the files of a partitioned dataset each carry their row labels.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    plan = plan_pandas(value, preserve_index)
    frame = plan.frame
    rows = _chunk_rows(frame)
    try:
        with pq.ParquetWriter(sink, plan.schema, compression="snappy") as writer:
            for start in range(0, len(frame), rows):
                # Converted on its own, then cast: pyarrow cannot look up stringified
                # MultiIndex column labels when given the schema.
                chunk = pa.Table.from_pandas(frame.iloc[start:start + rows],
                                             preserve_index=preserve_index)
                if not chunk.schema.equals(plan.schema, check_metadata=False):
                    chunk = chunk.cast(plan.schema)
                writer.write_table(chunk)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        if isinstance(exc, OSError):  # a full disk is not a schema problem
            raise
        raise NotParquetable(_column_error(frame, exc)) from exc
    return PARQUET_SERIES if plan.info["kind"] == "series" else PARQUET


def plan_pandas(value: Any, preserve_index: bool | None = None) -> _Plan:
    """The Arrow schema that stores ``value`` exactly; raises :class:`NotParquetable`."""
    import pandas as pd
    import pyarrow as pa

    info: dict[str, Any] = {"version": 1, "kind": "frame"}
    if isinstance(value, pd.Series):
        label = value.name
        info.update(kind="series", name=_encode_label(label))
        frame = value.to_frame(name=label if isinstance(label, str) else SERIES_COLUMN)
    else:
        frame = value
    if value.attrs:
        info["attrs"] = _json_exact(value.attrs, "attrs")
    if frame.columns.has_duplicates:
        dupes = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise NotParquetable(f"duplicate column labels {dupes}")
    for level in _levels(frame.columns):
        kind = pd.api.types.infer_dtype(level, skipna=True)
        if kind not in _LABEL_KINDS:  # pyarrow would turn them into strings, with a warning
            raise NotParquetable(f"column labels of type '{kind}' ({list(level[:5])}) would "
                                 f"come back as strings")
    try:
        schema = pa.Schema.from_pandas(frame, preserve_index=preserve_index)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        if isinstance(exc, OSError):
            raise
        raise NotParquetable(_column_error(frame, exc)) from exc
    for i, dtype in enumerate(frame.dtypes):
        is_object = _dtype_spec(dtype) == {"dtype": "object"}
        if is_object and not _plain_object_type(schema.field(i).type):
            raise NotParquetable(
                f"column {frame.columns[i]!r} holds Python objects stored as Arrow "
                f"{schema.field(i).type}, which would not come back as the same objects")
    info["casts"] = _casts(frame, schema)
    if isinstance(frame.columns, pd.RangeIndex):  # Parquet keeps the labels, not the range
        info["label_range"] = [frame.columns.start, frame.columns.stop, frame.columns.step]
    freqs = {key: _freqs(index) for key, index in (("index", frame.index),
                                                   ("labels", frame.columns))}
    if any(freqs.values()):
        info["freqs"] = {key: value for key, value in freqs.items() if value}
    schema = schema.with_metadata({**(schema.metadata or {}),
                                   METADATA_KEY: json.dumps(info).encode()})
    _check_round_trip(frame, schema)
    return _Plan(frame, schema, info)


def _plain_object_type(arrow_type: Any) -> bool:
    """Arrow types whose values come back as the Python objects they were made from."""
    import pyarrow.types as t
    return any(check(arrow_type) for check in (
        t.is_string, t.is_large_string, t.is_binary, t.is_large_binary, t.is_null,
        t.is_boolean, t.is_decimal, t.is_date, t.is_time,
        getattr(t, "is_string_view", t.is_string), getattr(t, "is_binary_view", t.is_binary)))


def _empty_through_parquet(schema: Any) -> Any:
    """An empty table of ``schema`` after a trip through Parquet (which changes some types)."""
    import pyarrow.parquet as pq
    buf = io.BytesIO()
    pq.write_table(schema.empty_table(), buf)
    return pq.read_table(io.BytesIO(buf.getvalue()))


def _casts(frame: Any, schema: Any) -> dict[str, dict[str, Any]]:
    """Dtypes that pyarrow's metadata does not restore, by position, to set after reading."""
    empty = _empty_through_parquet(schema).to_pandas()
    casts: dict[str, dict[str, Any]] = {"columns": {}, "index": {}, "labels": {}}
    pairs = [("columns", list(frame.dtypes), list(empty.dtypes)),
             ("index", _level_dtypes(frame.index), _level_dtypes(empty.index)),
             ("labels", _level_dtypes(frame.columns), _level_dtypes(empty.columns))]
    for key, wants, gots in pairs:
        for i, (want, got) in enumerate(zip(wants, gots)):
            if not _same_dtype(want, got):
                spec = _dtype_spec(want)
                if spec is not None:
                    casts[key][str(i)] = spec
    return {key: value for key, value in casts.items() if value}


def _check_round_trip(frame: Any, schema: Any) -> None:
    """Raise NotParquetable unless an empty read of ``schema`` has ``frame``'s structure."""
    import pandas as pd
    back = _restore(_empty_through_parquet(schema), json.loads(schema.metadata[METADATA_KEY]))
    if not isinstance(back, type(frame)):  # a Series plan is checked as its one-column frame
        back = back.to_frame(name=frame.columns[0])
    for label, want, got in zip(frame.columns, frame.dtypes, back.dtypes):
        if not _same_dtype(want, got):
            raise NotParquetable(f"column {label!r} of dtype {want} would come back as {got}")
    if len(back.columns) != len(frame.columns):
        raise NotParquetable("the columns would not come back the same")
    checks = [("column labels", frame.columns, back.columns)]
    if not isinstance(frame.index, pd.RangeIndex):
        # A RangeIndex is kept as metadata (start, stop, step, name), which pyarrow
        # applies only when the row count matches: never for this empty table.
        checks.append(("index", frame.index, back.index))
    for what, a, b in checks:
        if what == "column labels" and not a.equals(b):
            raise NotParquetable(f"column labels {list(a)} would come back as {list(b)}")
        if type(a) is not type(b) or list(a.names) != list(b.names):
            raise NotParquetable(f"the {what} ({type(a).__name__}, names {list(a.names)}) would "
                                 f"come back as {type(b).__name__}, names {list(b.names)}")
        for want, got in zip(_level_dtypes(a), _level_dtypes(b)):
            if not _same_dtype(want, got):
                raise NotParquetable(f"the {what} of dtype {want} would come back as {got}")


def _chunk_rows(frame: Any) -> int:
    """Rows per row group: about CHUNK_BYTES of the frame's memory."""
    rows = len(frame)
    if rows == 0:
        return 1
    shallow = int(frame.memory_usage(index=True, deep=False).sum())
    objects = sum(1 for d in frame.dtypes if _dtype_spec(d) == {"dtype": "object"})
    per_row = max(1, shallow // rows + 48 * objects)  # object cells: guess the string behind
    return max(1024, CHUNK_BYTES // per_row)


def _column_error(frame: Any, exc: BaseException) -> str:
    """Name the first column that Arrow cannot hold, for the message."""
    import pyarrow as pa
    for i, label in enumerate(frame.columns):
        try:
            pa.Schema.from_pandas(frame.iloc[:, [i]], preserve_index=False)
        except Exception as column_exc:
            return (f"column {label!r} of dtype {frame.dtypes.iloc[i]} cannot be stored as "
                    f"Parquet ({type(column_exc).__name__}: {column_exc})")
    return f"{type(exc).__name__}: {exc}"


# -- pandas: read ------------------------------------------------------------------------

def read_pandas(source: Any) -> Any:
    """Read a DataFrame or Series written by :func:`write_pandas` (``source``: path or file).

    Files written by plain ``DataFrame.to_parquet`` load too, as a DataFrame.
    """
    import pyarrow.parquet as pq
    table = pq.read_table(source)
    metadata = table.schema.metadata or {}
    info = json.loads(metadata[METADATA_KEY]) if METADATA_KEY in metadata else {}
    return _restore(table, info)


def _restore(table: Any, info: dict[str, Any]) -> Any:
    import pandas as pd
    casts = info.get("casts", {})
    # Object columns are rebuilt from Arrow directly: through pandas they would become
    # `str` and their None would become NaN.
    objects = {int(i): table.column(int(i)).to_numpy(zero_copy_only=False)
               for i, spec in casts.get("columns", {}).items() if spec["dtype"] == "object"}
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    for i, spec in casts.get("columns", {}).items():
        pos = int(i)
        if pos in objects:
            column = pd.Series(objects.pop(pos), index=frame.index, dtype=object, copy=False)
        else:
            column = frame.iloc[:, pos].astype(_dtype_from_spec(spec))
        frame.isetitem(pos, column)
    if "label_range" in info:
        frame.columns = pd.RangeIndex(*info["label_range"], name=frame.columns.name)
    freqs = info.get("freqs", {})
    frame.index = _set_freqs(_set_level_dtypes(frame.index, casts.get("index", {})),
                             freqs.get("index", {}))
    frame.columns = _set_freqs(_set_level_dtypes(frame.columns, casts.get("labels", {})),
                               freqs.get("labels", {}))
    if info.get("kind") == "series":
        series = frame.iloc[:, 0]
        series.name = _decode_label(info.get("name"))
        series.attrs = info.get("attrs", {})
        return series
    frame.attrs = info.get("attrs", {})
    return frame


def pandas_to_bytes(value: Any) -> bytes:
    buf = io.BytesIO()
    write_pandas(value, buf)
    return buf.getvalue()


# -- dask: compute where the code runs ---------------------------------------------------

def compute_on_cluster(collection: Any) -> Any:
    """Compute a dask collection on the Dask cluster this code runs on.

    Inside a task on a worker (as every step runs) it uses ``worker_client()``,
    which secedes from the worker's thread pool so the computation can use all
    the cluster's threads, this one's included.  Elsewhere it uses the default
    ``distributed`` client if there is one, else dask's local scheduler.  An
    explicit ``dask.config.set(scheduler=...)`` wins over both.  On failure the
    computation is cancelled before the error is raised.
    """
    import dask

    chosen = dask.config.get("scheduler", None)
    # A distributed Client sets "dask.distributed" (in a worker too, once get_client
    # ran there): that means the cluster, handled below, not a choice to respect.
    if chosen is not None and chosen not in ("dask.distributed", "distributed"):
        return collection.compute()
    try:
        from distributed import default_client, get_worker, worker_client
    except ImportError:
        return collection.compute()
    try:
        get_worker()
    except ValueError:
        try:
            client = default_client()
        except ValueError:
            return collection.compute()
        return _compute_with(client, collection)
    with worker_client() as client:
        return _compute_with(client, collection)


def _compute_with(client: Any, collection: Any) -> Any:
    future = client.compute(collection)
    try:
        return future.result()
    except BaseException:
        client.cancel(future)
        raise


# -- dask: write -------------------------------------------------------------------------

class DaskWrite(NamedTuple):
    """A dask collection ready to be written, with what the manifest needs to rebuild it."""

    frame: Any               # the collection as a DataFrame (a Series becomes one column)
    manifest: dict[str, Any]


def plan_dask(value: Any, name: str) -> DaskWrite:
    """Check that ``value`` can be written as Parquet; raises NotParquetable naming columns.

    Only the meta is looked at: nothing is computed.  Object columns hold
    placeholders in the meta, so a bad one is found (and named) while writing.
    """
    import pandas as pd
    import pyarrow as pa

    manifest: dict[str, Any] = {"format": DASK_PARQUET, "version": 1, "kind": "frame"}
    if value.ndim == 1:
        label = value.name
        manifest.update(kind="series", name=_encode_label(label))
        frame = value.to_frame(name=label if isinstance(label, str) else SERIES_COLUMN)
    else:
        frame = value
    columns = list(frame.columns)
    if len(set(columns)) != len(columns):
        raise NotParquetable(f"duplicate column labels in {columns}")
    sample = frame._meta_nonempty.copy()
    failed = []
    for i, label in enumerate(columns):
        if _dtype_spec(sample.dtypes.iloc[i]) == {"dtype": "object"}:
            # Placeholders: the meta says nothing of the values, kept as None.
            sample.isetitem(i, pd.Series([None] * len(sample), index=sample.index, dtype=object))
            continue
        try:
            pa.Schema.from_pandas(sample.iloc[:, [i]], preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            failed.append(f"column {label!r} of dtype {sample.dtypes.iloc[i]} "
                          f"({type(exc).__name__}: {exc})")
    if failed:
        raise NotParquetable("; ".join(failed) + " cannot be stored as Parquet")
    # The meta goes in the manifest, non-empty: an empty categorical column would lose
    # its categories.  Loading needs nothing else, so it reads no Parquet file at all.
    try:
        manifest["meta"] = base64.b64encode(pandas_to_bytes(sample)).decode()
    except NotParquetable as exc:
        raise NotParquetable(f"its columns or index cannot be stored as Parquet: {exc}") from exc
    manifest["divisions"] = _encode_divisions(frame.divisions) if frame.known_divisions else None
    manifest["npartitions"] = int(frame.npartitions)
    return DaskWrite(frame, manifest)


def write_dask(plan: DaskWrite, url: str, storage_options: dict[str, Any]) -> list[dict[str, int]]:
    """Write each partition to ``url/part.NNNNNN.parquet`` on the cluster.

    One task per partition, run by the cluster's workers (:func:`compute_on_cluster`);
    each file is written like a pandas artifact (:func:`write_pandas`), so every
    dtype comes back.  Returns the rows and bytes of each file; raises what fails.
    """
    import dask

    writes = [dask.delayed(_write_partition, pure=False)(
        part, f"{url}/{partition_file(i)}", storage_options)
        for i, part in enumerate(plan.frame.to_delayed())]
    return list(compute_on_cluster(dask.delayed(list, pure=False)(writes)))


def _write_partition(part: Any, url: str, storage_options: dict[str, Any]) -> dict[str, int]:
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    # fs.open, not fsspec.open: an OpenFile whose flush fails (a full disk) is never
    # closed, and the removed file keeps its space until garbage collection.
    with fs.open(path, "wb") as f:
        try:
            write_pandas(part, f, preserve_index=True)
        except NotParquetable as exc:
            raise NotParquetable(f"partition {url}: {exc}") from None
        size = f.tell()
    return {"rows": len(part), "bytes": int(size)}


def folder_files(fs: Any, folder: str) -> list[str] | None:
    """The Parquet files of a dask artifact's folder, in partition order, as its
    manifest lists them; None when ``folder`` (on ``fs``) is no such folder."""
    manifest = f"{folder.rstrip('/')}/{MANIFEST}"
    if not fs.exists(manifest):
        return None
    with fs.open(manifest, "rb") as f:
        names = json.load(f)["files"]
    return [f"{folder.rstrip('/')}/{name}" for name in names]


def _encode_divisions(divisions: tuple[Any, ...]) -> str | None:
    import pandas as pd
    try:
        return base64.b64encode(pandas_to_bytes(
            pd.DataFrame({"divisions": pd.Series(list(divisions))}))).decode()
    except (NotParquetable, TypeError, ValueError):
        return None  # stored with unknown divisions


def _decode_divisions(data: str | None) -> tuple[Any, ...] | None:
    if data is None:
        return None
    frame = read_pandas(io.BytesIO(base64.b64decode(data)))
    return tuple(frame["divisions"].tolist())


# -- dask: read --------------------------------------------------------------------------

# Collections loaded from the datastore, by their graph name: storing one unchanged
# returns its existing reference instead of writing the data again, and
# ``daskflow.collections.dataframes.partitions`` finds its files.
class Loaded(NamedTuple):
    """Where a collection loaded from the datastore came from."""

    flow: str                        # its flow's folder, as the store's filesystem names it
    ref: Any                         # its ArtifactRef
    urls: list[str]                  # its Parquet files, in partition order
    storage_options: dict[str, Any]
    manifest: dict[str, Any]
    manifest_url: str


_LOADED: OrderedDict[str, Loaded] = OrderedDict()
_LOADED_MAX = 1024
_LOADED_LOCK = threading.Lock()


class PartitionReader:
    """Reads one file of a dask artifact; a bad or missing file names the artifact.

    Has a ``columns=`` keyword, so dask pushes column selections down into it.
    """

    def __init__(self, artifact: str, storage_options: dict[str, Any]) -> None:
        self.artifact = artifact
        self.storage_options = dict(storage_options or {})

    def __call__(self, url: str, columns: list[str] | None = None) -> Any:
        try:
            return read_pandas_file(url, columns=columns, storage_options=self.storage_options)
        except Exception as exc:
            from ..exceptions import ArtifactError
            what = "is missing" if isinstance(exc, FileNotFoundError) else "cannot be read"
            raise ArtifactError(
                f"Artifact '{self.artifact}': Parquet file {url} {what} "
                f"({type(exc).__name__}: {exc}). Rerun the step that made it.") from exc

    def __dask_tokenize__(self) -> Any:
        return (type(self).__name__, self.artifact, sorted(self.storage_options.items()))


def open_dask(urls: list[str], storage_options: dict[str, Any], manifest: dict[str, Any],
              name: str = "?") -> Any:
    """A lazy dask collection over the files of a dask artifact; reads no file.

    Meta and divisions come from the manifest; each partition is one file, read
    when computed (only the columns used).
    """
    import dask
    import dask.dataframe as dd

    meta = read_pandas(io.BytesIO(base64.b64decode(manifest["meta"]))).iloc[:0]
    divisions = _decode_divisions(manifest.get("divisions"))
    if divisions is not None and len(divisions) != len(urls) + 1:
        divisions = None
    # dask's string conversion would turn object columns (Decimals, bytes) into strings;
    # each file already holds the dtypes the partitions had.
    with dask.config.set({"dataframe.convert-string": False}):
        ddf = dd.from_map(PartitionReader(name, storage_options), urls, meta=meta,
                          divisions=divisions, label="read-artifact", enforce_metadata=False)
    if manifest.get("kind") == "series":
        series = ddf[ddf.columns[0]]
        return series.rename(_decode_label(manifest.get("name")))
    return ddf


def read_pandas_file(url: str, *, columns: list[str] | None = None,
                     row_groups: list[int] | None = None,
                     storage_options: dict[str, Any] | None = None) -> Any:
    """Read a Parquet file (or some row groups, or some columns) as daskflow wrote it.

    The index comes back too; a RangeIndex kept as metadata gets the labels of
    the rows read.
    """
    import fsspec
    import pandas as pd
    import pyarrow.parquet as pq

    if "://" in url:
        opened = fsspec.open(url, "rb", **(storage_options or {}))
    else:
        opened = open(url, "rb")
    with opened as f:
        pf = pq.ParquetFile(f)
        if row_groups is None:
            table = pf.read(columns=columns, use_pandas_metadata=True)
        else:
            table = pf.read_row_groups(row_groups, columns=columns, use_pandas_metadata=True)
        file_meta = pf.metadata
        full_names = pf.schema_arrow.names
    metadata = table.schema.metadata or {}
    info = json.loads(metadata[METADATA_KEY]) if METADATA_KEY in metadata else {}
    if columns is not None and "columns" in info.get("casts", {}):
        # Casts go by column position, which a subset of the columns shifts.
        where = {n: i for i, n in enumerate(table.schema.names)}
        info["casts"]["columns"] = {
            str(where[full_names[int(i)]]): spec
            for i, spec in info["casts"]["columns"].items() if full_names[int(i)] in where}
    if columns is not None and info.get("kind") == "series":
        info["kind"] = "frame"
    range_index = None
    if row_groups is not None and b"pandas" in metadata:
        index_columns = json.loads(metadata[b"pandas"]).get("index_columns") or []
        if len(index_columns) == 1 and isinstance(index_columns[0], dict):
            range_index = index_columns[0]  # a RangeIndex kept as metadata, not a column
    frame = _restore(table, info)
    if range_index is not None and row_groups is not None \
            and range_index.get("kind") == "range":
        import numpy as np
        # pyarrow numbers a subset of row groups from 0; give the rows their labels.
        offsets = [0]
        for i in range(file_meta.num_row_groups):
            offsets.append(offsets[-1] + file_meta.row_group(i).num_rows)
        start, step = range_index["start"], range_index.get("step", 1)
        labels = [np.arange(start + step * offsets[g], start + step * offsets[g + 1], step)
                  for g in row_groups]
        frame.index = pd.Index(np.concatenate(labels) if labels else np.array([], dtype="int64"),
                               name=range_index.get("name"))
    return frame


def remember_loaded(collection: Any, key: Loaded) -> None:
    with _LOADED_LOCK:  # a worker runs several tasks in threads
        _LOADED[collection._name] = key
        _LOADED.move_to_end(collection._name)
        while len(_LOADED) > _LOADED_MAX:
            _LOADED.popitem(last=False)


def loaded_from(collection: Any) -> Loaded | None:
    """What :func:`remember_loaded` recorded for this collection, if it is one loaded unchanged."""
    try:
        return _LOADED.get(collection._name)
    except Exception:
        return None
