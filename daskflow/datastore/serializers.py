"""How an artifact value becomes a file and back.

====================  ===========================================================
format                what and how
====================  ===========================================================
``parquet``           a pandas DataFrame: one Parquet file (pyarrow), index and
                      dtypes kept (see :mod:`.dataframes`)
``parquet-series``    a pandas Series: a one-column Parquet file
``npy``               a numpy array without Python objects: ``numpy.save`` with
                      ``allow_pickle=False``, so loading runs no pickle
``pickle``            everything else, and any of the above that the format
                      cannot hold exactly (cloudpickle, protocol 5)
``dask-parquet``      a dask DataFrame or Series: a folder, written by the store
                      itself (:meth:`ArtifactStore.put_artifact`), not here
====================  ===========================================================

Values are written to a file object as they are serialized (:func:`dump`),
so a big value is never held twice in memory as bytes.  Nothing here imports
pandas or numpy unless the value is one of theirs.
"""

from __future__ import annotations

import io
import logging
import sys
from typing import Any, BinaryIO

import cloudpickle

from . import dataframes
from .dataframes import DASK_PARQUET, PARQUET, PARQUET_SERIES

logger = logging.getLogger(__name__)

PICKLE = "pickle"
NPY = "npy"

__all__ = ["DASK_PARQUET", "NPY", "PARQUET", "PARQUET_SERIES", "PICKLE",
           "dump", "dumps", "load", "loads"]


def dump(value: Any, sink: Any) -> str:
    """Write ``value`` to the binary file ``sink`` and return its format.

    ``sink`` needs ``write`` and, for the fallback from Parquet to pickle,
    ``seek`` and ``truncate`` (a partial Parquet file is discarded first).
    Raises whatever pickling raises.
    """
    if dataframes.pandas_kind(value) is not None:
        start = sink.tell()
        try:
            return dataframes.write_pandas(value, sink)
        except dataframes.NotParquetable as why:
            logger.debug("%s stored with pickle, not Parquet: %s", type(value).__name__, why)
            sink.seek(start)
            sink.truncate()
    elif _is_plain_array(value):
        import numpy as np
        np.save(sink, value, allow_pickle=False)
        return NPY
    cloudpickle.dump(value, sink, protocol=5)
    return PICKLE


def load(fmt: str, source: str | BinaryIO) -> Any:
    """Rebuild a value stored by :func:`dump`; ``source`` is a local path or a binary file."""
    if fmt in (PARQUET, PARQUET_SERIES):
        return dataframes.read_pandas(source)
    if fmt == NPY:
        import numpy as np
        return np.load(source, allow_pickle=False)
    if fmt == PICKLE:
        if isinstance(source, str):
            with open(source, "rb") as f:
                return cloudpickle.load(f)
        return cloudpickle.load(source)
    raise ValueError(f"unknown artifact format {fmt!r}")


def dumps(value: Any) -> tuple[str, bytes]:
    """Return ``(format, bytes)`` for ``value``; raises whatever pickling raises."""
    buf = io.BytesIO()
    fmt = dump(value, buf)
    return fmt, buf.getvalue()


def loads(fmt: str, data: bytes) -> Any:
    """Rebuild a value from the bytes :func:`dumps` returned."""
    return load(fmt, io.BytesIO(data))


def _is_plain_array(value: Any) -> bool:
    # Exactly ndarray: subclasses (np.matrix, masked arrays) would lose what they add.
    np = sys.modules.get("numpy")
    return np is not None and type(value) is np.ndarray and not value.dtype.hasobject
