"""How an artifact value becomes bytes and back.

pandas DataFrames become Parquet (pyarrow, index and dtypes kept) so they can
be opened outside daskflow; everything else is cloudpickled.  A DataFrame that
Parquet cannot hold falls back to cloudpickle.
"""

from __future__ import annotations

import io
from typing import Any

import cloudpickle

PICKLE = "pickle"
PARQUET = "parquet"


def dumps(value: Any) -> tuple[str, bytes]:
    """Return ``(format, bytes)`` for ``value``; raises whatever pickling raises."""
    if _is_pandas_frame(value):
        data = _frame_to_parquet(value)
        if data is not None:
            return PARQUET, data
    return PICKLE, cloudpickle.dumps(value, protocol=5)


def loads(fmt: str, data: bytes) -> Any:
    """Rebuild a value stored by :func:`dumps`."""
    if fmt == PARQUET:
        import pandas as pd
        return pd.read_parquet(io.BytesIO(data), engine="pyarrow")
    if fmt == PICKLE:
        return cloudpickle.loads(data)
    raise ValueError(f"unknown artifact format {fmt!r}")


def _is_pandas_frame(value: Any) -> bool:
    # Checked by name so that storing a plain value never imports pandas.
    return type(value).__module__.startswith("pandas") and type(value).__name__ == "DataFrame"


def _frame_to_parquet(frame: Any) -> bytes | None:
    import pyarrow as pa
    buf = io.BytesIO()
    try:
        frame.to_parquet(buf, engine="pyarrow")
    except (ValueError, TypeError, pa.ArrowException):
        return None  # e.g. non-string column names or mixed object columns
    return buf.getvalue()
