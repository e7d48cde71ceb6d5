"""Pickling what travels: the function, items going out, results coming back.

Items and results travel as one ``bytes`` per partition, opaque to the
scheduler: plain pickle where it can, cloudpickle (lambdas, local classes)
where it must.  A value that cannot travel is named in the error.
"""

from __future__ import annotations

import pickle
import reprlib
from collections.abc import Callable
from typing import Any

import cloudpickle

from .errors import ParallelMapInputError

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6


def short_repr(value: Any) -> str:
    """A ``repr`` short enough for an error message; never raises."""
    try:
        return _REPR.repr(value)
    except Exception:
        return f"<{type(value).__name__}>"


class Unpicklable(Exception):
    """Neither pickle nor cloudpickle can dump a list; ``offset`` names the first value
    that fails alone (None when each one pickles by itself)."""

    def __init__(self, offset: int | None, value: Any, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.offset, self.value, self.cause = offset, value, cause


def dumps(values: Any) -> bytes:
    """``values`` (items going out, results coming back) as bytes: plain pickle, else
    cloudpickle (lambdas, local classes, ...), else :class:`Unpicklable`."""
    try:
        return pickle.dumps(values, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        pass
    try:
        return cloudpickle.dumps(values, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        for offset, value in enumerate(values):
            try:
                cloudpickle.dumps(value)
            except Exception as value_exc:
                raise Unpicklable(offset, value, value_exc) from None
        raise Unpicklable(None, None, exc) from None


def pickle_items(chunk: Any, start: int) -> bytes:
    """One partition's items (the first is item ``start``) as bytes, or a clear error."""
    try:
        return dumps(chunk)
    except Unpicklable as bad:
        cause = bad.cause
        if bad.offset is None:
            raise ParallelMapInputError(
                f"parallel_map cannot pickle items {start}..{start + len(chunk) - 1}: "
                f"{type(cause).__name__}: {cause}") from cause
        raise ParallelMapInputError(
            f"parallel_map cannot send item {start + bad.offset} "
            f"({short_repr(bad.value)}) to the Dask workers: it cannot be pickled "
            f"({type(cause).__name__}: {cause}). Pass data (or a path, a "
            f"key) instead of objects tied to this process.") from cause


def pickle_func(func: Callable[[Any], Any]) -> bytes:
    """The map's function as bytes (cloudpickle), or a clear error."""
    try:
        return cloudpickle.dumps(func, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise ParallelMapInputError(
            f"parallel_map cannot send {short_repr(func)} to the Dask workers: it cannot "
            f"be pickled ({type(exc).__name__}: {exc}). A function that captures a lock, "
            f"an open file, a client or a generator cannot travel; capture plain data "
            f"instead.") from exc
