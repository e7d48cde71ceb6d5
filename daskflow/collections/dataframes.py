"""Helpers for flows over tables too big for one process.

- :func:`read_dataset` opens Parquet, CSV or JSON-lines files (a folder, a glob,
  a URL) as a lazy dask DataFrame; computing it runs on the Dask cluster the
  step runs on.
- :func:`partitions` lists the pieces of a dataset (files, or row groups of
  Parquet files) as small :class:`Partition` descriptors, without reading
  any rows, ready for ``self.next(self.work, foreach="parts")``; each foreach
  task reads its own piece with :func:`load_partition`.
- :func:`cluster_client` gives a step the ``distributed.Client`` of its cluster.

>>> from daskflow import FlowSpec, step                            # doctest: +SKIP
>>> from daskflow.collections.dataframes import load_partition, partitions
>>> class CountFlow(FlowSpec):
...     @step
...     def start(self):
...         self.parts = partitions("s3://bucket/events/", max_parts=50)
...         self.next(self.count, foreach="parts")
...     @step
...     def count(self):
...         self.rows = len(load_partition(self.input))
...         self.next(self.join)
...     @step
...     def join(self, inputs):
...         self.total = sum(i.rows for i in inputs)
...         self.next(self.end)
...     @step
...     def end(self):
...         print(self.total)
"""

from __future__ import annotations

import json
import posixpath
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

from .. import dask_client
from ..datastore import dataframes as _stored
from ..exceptions import DatasetError

__all__ = ["DatasetError", "Partition", "cluster_client", "load_partition", "partitions",
           "read_dataset"]

FORMATS = ("parquet", "csv", "json")
_SUFFIXES = {".parquet": "parquet", ".parq": "parquet", ".pq": "parquet", ".csv": "csv",
             ".tsv": "csv", ".txt": "csv", ".json": "json", ".jsonl": "json", ".ndjson": "json"}
_COMPRESSION = (".gz", ".bz2", ".xz", ".zst", ".zip", ".snappy", ".lz4")


class Partition(NamedTuple):
    """One piece of a dataset, small enough to be a foreach item.

    ``paths`` are URLs (or local paths); ``row_groups`` has one entry per path:
    the Parquet row groups to read, or None for the whole file.  ``rows`` is
    the row count when the Parquet footers were read to split the files, else
    None.  ``artifact`` is the manifest of the dask DataFrame artifact the
    files belong to, whose dtypes :func:`load_partition` restores.
    """

    paths: tuple[str, ...]
    row_groups: tuple[tuple[int, ...] | None, ...]
    format: str
    storage_options: dict[str, Any] = {}
    read_kwargs: dict[str, Any] = {}
    rows: int | None = None
    artifact: str | None = None

    def __repr__(self) -> str:
        first = self.paths[0] if self.paths else "-"
        more = f" +{len(self.paths) - 1} files" if len(self.paths) > 1 else ""
        groups = sum(len(g) for g in self.row_groups if g is not None)
        where = f", {groups} row groups" if groups else ""
        rows = f", {self.rows} rows" if self.rows is not None else ""
        return f"Partition({self.format}: {first}{more}{where}{rows})"


class _Source(NamedTuple):
    paths: tuple[str, ...]
    format: str
    storage_options: dict[str, Any]
    read_kwargs: dict[str, Any]


# What read_dataset opened, by the collection's graph name, so partitions() can split it.
_OPENED: OrderedDict[str, _Source] = OrderedDict()
_OPENED_LOCK = threading.Lock()


# -- reading -------------------------------------------------------------------------------

def read_dataset(path_or_url: str | Sequence[str], format: str | None = None, *,
                 storage_options: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """Open files as a lazy dask DataFrame that computes on the step's cluster.

    Parameters
    ----------
    path_or_url : str or list of str
        A file, a folder, a glob (``data/*.csv``) or a URL (``s3://bucket/x/``).
    format : {"parquet", "csv", "json"}, optional
        Guessed from the file names when left out (a folder of unknown files
        is read as Parquet).
    storage_options : dict, optional
        For fsspec (credentials, endpoint, ...).
    **kwargs
        Passed to ``dd.read_parquet``, ``dd.read_csv`` or ``dd.read_json``.

    Nothing is read but metadata (and, for CSV, a sample to infer dtypes) until
    the result is computed.  Inside a step, which runs on a Dask worker,
    ``.compute()`` and ``.persist()`` go to that worker's cluster; wrap big
    computations in :func:`cluster_client` so the step's own thread is freed.

    >>> events = read_dataset("s3://bucket/events/")          # doctest: +SKIP
    >>> events.groupby("user").size().compute()               # doctest: +SKIP
    """
    import dask.dataframe as dd

    fmt = _format_of(path_or_url, format, storage_options)
    options = storage_options or None
    if fmt == "parquet":
        ddf = dd.read_parquet(path_or_url, storage_options=options, **kwargs)
    elif fmt == "csv":
        if "sep" not in kwargs and "delimiter" not in kwargs and _first(path_or_url).endswith(
                (".tsv",) + tuple(".tsv" + c for c in _COMPRESSION)):
            kwargs["sep"] = "\t"
        ddf = dd.read_csv(path_or_url, storage_options=options, **kwargs)
    else:
        kwargs.setdefault("lines", True)
        ddf = dd.read_json(path_or_url, storage_options=options, **kwargs)
    paths = tuple([path_or_url] if isinstance(path_or_url, str) else path_or_url)
    with _OPENED_LOCK:
        _OPENED[ddf._name] = _Source(paths, fmt, dict(storage_options or {}), dict(kwargs))
        while len(_OPENED) > 256:
            _OPENED.popitem(last=False)
    return ddf


@contextmanager
def cluster_client() -> Iterator[Any]:
    """The ``distributed.Client`` of the cluster this step runs on, for big computations.

    On a worker (where steps run) this is ``distributed.worker_client()``: the
    step's thread leaves the worker's pool while the block runs, so the
    computation can use every thread of the cluster.  Elsewhere it is the
    current client (``client.as_current()``, else the default one); without
    one, a ``DatasetError`` says so.

    >>> with cluster_client() as client:                                # doctest: +SKIP
    ...     totals = client.compute(ddf.groupby("k").x.sum()).result()
    """
    with dask_client.cluster_client() as client:
        if client is None:
            raise DatasetError(
                "cluster_client() found no Dask cluster: it is meant for code inside a step "
                "(which runs on a Dask worker), or after distributed.Client(...) was made.")
        yield client


# -- splitting -------------------------------------------------------------------------------

def partitions(source: Any, *, format: str | None = None, max_parts: int | None = None,
               split_row_groups: bool = False,
               storage_options: dict[str, Any] | None = None,
               **read_kwargs: Any) -> list[Partition]:
    """Split a dataset into :class:`Partition` descriptors without reading its rows.

    Parameters
    ----------
    source : str, list of str, or dask DataFrame
        Files as for :func:`read_dataset`; or a dask DataFrame that is stored
        data as it stands: a DataFrame artifact (``self.df`` in a later step,
        ``task.data.df``) or the result of :func:`read_dataset`.
    max_parts : int, optional
        At most this many descriptors: neighbouring pieces are grouped so a
        foreach over them stays within ``--max-num-splits``.
    split_row_groups : bool
        One piece per Parquet row group instead of per file (reads footers).
    **read_kwargs
        Kept in each descriptor and passed to the pandas reader by
        :func:`load_partition` (e.g. ``columns=``, ``sep=``).

    >>> parts = partitions("data/*.parquet", max_parts=8)              # doctest: +SKIP
    >>> parts[0]
    Partition(parquet: data/part.0.parquet +3 files)
    """
    if max_parts is not None and max_parts < 1:
        raise DatasetError(f"max_parts must be at least 1, got {max_parts}.")
    artifact = None
    if hasattr(source, "npartitions") and hasattr(source, "_name"):
        stored = _stored.loaded_from(source)
        opened = _OPENED.get(source._name)
        if stored is not None:
            files, fmt = list(stored.urls), "parquet"  # its manifest's list, in order
            storage_options = stored.storage_options
            artifact = stored.manifest_url if stored.urls else None
        elif opened is not None:
            fmt = opened.format
            storage_options = opened.storage_options
            read_kwargs = {**_pandas_kwargs(opened.format, opened.read_kwargs), **read_kwargs}
            files = _expand(list(opened.paths), fmt, storage_options)
        else:
            raise DatasetError(
                "partitions() needs data that is on storage: a path or URL, a DataFrame "
                "artifact (self.df in a later step) or the result of read_dataset(), used as "
                "it is. This dask DataFrame was computed in memory or changed since it was "
                "read; store it first (self.df = ddf), then call partitions(self.df) in the "
                "next step.")
    else:
        fmt = _format_of(source, format, storage_options)
        files = _expand([source] if isinstance(source, str) else list(source), fmt,
                        storage_options)
    if not files:
        raise DatasetError(f"partitions(): no {fmt} files found in {source!r}.")
    units: list[tuple[str, tuple[int, ...] | None, int | None]]
    if split_row_groups and fmt == "parquet":
        units = [(f, (rg,), rows) for f in files
                 for rg, rows in enumerate(_row_group_rows(f, storage_options))]
    else:
        units = [(f, None, None) for f in files]
    options = dict(storage_options or {})
    return [_descriptor(group, fmt, options, dict(read_kwargs), artifact)
            for group in _balance(units, max_parts)]


def load_partition(part: Partition, columns: Sequence[str] | None = None) -> Any:
    """Read one :class:`Partition` as a pandas DataFrame (index and dtypes as stored).

    >>> df = load_partition(self.input)                               # doctest: +SKIP
    """
    import fsspec
    import pandas as pd

    kwargs = dict(part.read_kwargs)
    if columns is not None:
        kwargs["columns"] = list(columns)
    frames = []
    if part.format == "parquet":
        for path, groups in zip(part.paths, part.row_groups):
            frames.append(_stored.read_pandas_file(
                path, columns=kwargs.get("columns"),
                row_groups=None if groups is None else list(groups),
                storage_options=part.storage_options))
        frame = frames[0] if len(frames) == 1 else pd.concat(frames)
        return _with_artifact_dtypes(frame, part)
    for path in part.paths:
        with fsspec.open(path, "rb", compression="infer", **part.storage_options) as f:
            if part.format == "csv":
                if "columns" in kwargs:
                    kwargs["usecols"] = kwargs.pop("columns")
                frames.append(pd.read_csv(f, **kwargs))
            else:
                kwargs.setdefault("lines", True)
                frames.append(pd.read_json(f, **kwargs))
    if len(frames) == 1:
        return frames[0]
    return pd.concat(frames, ignore_index=part.format != "parquet")


# -- internals -------------------------------------------------------------------------------

def _first(path_or_url: str | Sequence[str]) -> str:
    return path_or_url if isinstance(path_or_url, str) else (list(path_or_url) or [""])[0]


def _suffix_format(name: str) -> str | None:
    name = name.lower()
    for c in _COMPRESSION:
        if name.endswith(c):
            name = name[: -len(c)]
    for suffix, fmt in _SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
    return None


def _format_of(path_or_url: Any, format: str | None,
               storage_options: dict[str, Any] | None) -> str:
    if format is not None:
        if format not in FORMATS:
            raise DatasetError(f"Unknown dataset format {format!r}; use one of {FORMATS}.")
        return format
    first = _first(path_or_url)
    if not isinstance(first, str):
        raise DatasetError(f"Expected a path or URL, got {type(first).__name__}.")
    fmt = _suffix_format(first.rstrip("/*"))
    if fmt is not None:
        return fmt
    import fsspec
    fs, path = fsspec.core.url_to_fs(first, **(storage_options or {}))
    if fs.isdir(path):
        found = {f for f in (_suffix_format(p) for p in fs.find(path)) if f is not None}
        if len(found) == 1:
            return found.pop()
        if len(found) > 1:
            raise DatasetError(f"{first} holds files of several formats {sorted(found)}; "
                               f"pass format=... or a glob.")
        return "parquet"  # folders of Parquet often have files without a suffix
    raise DatasetError(f"Cannot tell the format of {first!r} from its name; pass "
                       f"format='parquet', 'csv' or 'json'.")


def _natural(path: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def _expand(paths: list[str], fmt: str, storage_options: dict[str, Any] | None) -> list[str]:
    """The data files under ``paths`` (folders walked, globs expanded), as URLs, in order."""
    import fsspec
    out: list[str] = []
    for given in paths:
        fs, path = fsspec.core.url_to_fs(given, **(storage_options or {}))
        if fs.isdir(path):
            found = _stored.folder_files(fs, path)  # a dask artifact's folder: in order
            if found is None:
                found = sorted((p for p in fs.find(path) if _is_data_file(p, fmt)), key=_natural)
        elif fs.exists(path):
            found = [path]
        else:
            found = sorted((p for p in fs.glob(path) if _is_data_file(p, fmt)), key=_natural)
        out.extend(fs.unstrip_protocol(p) if "://" in given else p for p in found)
    return out


def _is_data_file(path: str, fmt: str) -> bool:
    name = posixpath.basename(path)
    if name.startswith(("_", ".")):  # _SUCCESS, _metadata, _daskflow.json, .tmp-*
        return False
    found = _suffix_format(name)
    return found == fmt or (found is None and fmt == "parquet")


def _row_group_rows(url: str, storage_options: dict[str, Any] | None) -> list[int]:
    import fsspec
    import pyarrow.parquet as pq
    with fsspec.open(url, "rb", **(storage_options or {})) as f:
        meta = pq.ParquetFile(f).metadata
        return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


def _balance(units: list[Any], max_parts: int | None) -> list[list[Any]]:
    """Neighbouring units in at most ``max_parts`` groups of nearly equal size."""
    if max_parts is None or len(units) <= max_parts:
        return [[u] for u in units]
    size, extra = divmod(len(units), max_parts)
    groups, start = [], 0
    for i in range(max_parts):
        end = start + size + (1 if i < extra else 0)
        groups.append(units[start:end])
        start = end
    return groups


def _descriptor(group: list[tuple[str, tuple[int, ...] | None, int | None]], fmt: str,
                storage_options: dict[str, Any], read_kwargs: dict[str, Any],
                artifact: str | None) -> Partition:
    paths: list[str] = []
    row_groups: list[tuple[int, ...] | None] = []
    for path, groups, _rows in group:
        if paths and paths[-1] == path and groups is not None and row_groups[-1] is not None:
            row_groups[-1] = row_groups[-1] + groups
        else:
            paths.append(path)
            row_groups.append(groups)
    counts = [rows for _p, _g, rows in group if rows is not None]
    rows = sum(counts) if len(counts) == len(group) else None
    return Partition(tuple(paths), tuple(row_groups), fmt, storage_options, read_kwargs,
                     rows, artifact)


def _pandas_kwargs(fmt: str, dask_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The read_dataset keyword arguments that the pandas reader understands too."""
    keep = {"parquet": ("columns",),
            "csv": ("sep", "delimiter", "header", "names", "usecols", "dtype", "parse_dates",
                    "na_values", "encoding", "skiprows", "comment"),
            "json": ("lines", "orient", "dtype", "encoding")}[fmt]  # fsspec decompresses
    return {k: v for k, v in dask_kwargs.items() if k in keep}


def _with_artifact_dtypes(frame: Any, part: Partition) -> Any:
    """A piece of a dask Series artifact is a Series, named as the artifact was."""
    if part.artifact is None:
        return frame
    import fsspec
    with fsspec.open(part.artifact, "rb", **part.storage_options) as f:
        manifest = json.load(f)
    if manifest.get("kind") == "series" and len(frame.columns) == 1:
        series = frame.iloc[:, 0]
        series.name = _stored._decode_label(manifest.get("name"))
        return series
    return frame
