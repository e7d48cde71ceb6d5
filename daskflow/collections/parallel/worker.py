"""On the workers: run one partition, and say exactly which item failed and how."""

from __future__ import annotations

import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import cloudpickle

from ...tracebacks import format_user_traceback
from .dask_input import DaskPiece
from .errors import ParallelMapError
from .pickling import Unpicklable, dumps, short_repr
from .transport import read_payload

_FUNCS_KEPT = 8  # functions of recent maps kept unpickled in each worker process
_FUNCS: OrderedDict[str, Callable[[Any], Any]] = OrderedDict()
_FUNCS_LOCK = threading.Lock()


def load_func(token: str, pickled: bytes) -> Callable[[Any], Any]:
    """The map's function, unpickled once per worker process (a closure may be big)."""
    with _FUNCS_LOCK:
        func = _FUNCS.get(token)
        if func is not None:
            _FUNCS.move_to_end(token)
            return func
    func = cloudpickle.loads(pickled)
    with _FUNCS_LOCK:
        _FUNCS[token] = func
        while len(_FUNCS) > _FUNCS_KEPT:
            _FUNCS.popitem(last=False)
    return func


def run_partition(start: int | None, payload: Any, *, token: str, pickled_func: bytes,
                  shared: bytes | None = None, as_bytes: bool = True) -> Any:
    """Apply the function to one partition's items (a range, their pickle, or a Dask
    collection's partition, computed here first).

    The results go back pickled as one ``bytes``: distributed may serialize a
    returned list element by element, which for a million ints takes minutes.
    ``as_bytes=False`` returns the list itself (a partition of a lazy bag).
    """
    func = load_func(token, pickled_func)
    payload = read_payload(payload)
    items = pickle.loads(payload) if isinstance(payload, bytes) else payload
    number = None
    if isinstance(items, DaskPiece):
        number = items.part.number
        value = items.part.compute(load_shared(token, shared))
        items = [value] if items.whole else value
    out = _apply(func, items, start, number)
    if not as_bytes:
        return out
    try:
        return dumps(out)
    except Unpicklable as bad:
        failure = _result_failure(start if start is not None else 0, bad)
    raise failure  # outside the except block, as in _apply


def run_lazy_partition(number: int, start: int | None, value: Any, whole: bool, *,
                       token: str, pickled_func: bytes) -> list[Any]:
    """A partition of a lazy map's bag: ``value`` is a collection's partition, computed by
    Dask as this task's input (``whole``: ``func`` takes it as one item)."""
    func = load_func(token, pickled_func)
    return _apply(func, [value] if whole else value, start, number)


def _apply(func: Callable[[Any], Any], items: Any, start: int | None,
           number: int | None) -> list[Any]:
    out: list[Any] = []
    append = out.append
    failure = None
    try:
        for item in items:
            append(func(item))
    except (Exception, SystemExit) as exc:
        failure = _item_failure(start, number, len(out), item, exc)
    if failure is not None:
        # Raised outside the except block: distributed pickles the whole chain of
        # an exception (tblib), and the user's exception may not pickle.
        raise failure
    return out


def load_shared(token: str, pickled: bytes | None) -> dict[Any, Any] | None:
    """The tasks a collection's partitions share, unpickled once per worker process."""
    if pickled is None:
        return None
    return load_func(f"{token}-shared", pickled)  # type: ignore[return-value]


def _item_failure(start: int | None, number: int | None, offset: int, item: Any,
                  exc: BaseException) -> ParallelMapError:
    """``start``: the partition's first item's index; None for a bag's partition
    ``number``, whose items' indices are not known (the message names the partition)."""
    # The traceback starts at the user's function: this module's frame is dropped.
    text = format_user_traceback(exc, skip=__file__)
    try:
        original: bytes | None = cloudpickle.dumps(exc.with_traceback(None))
    except Exception:
        original = None
    detail = None
    if start is None:
        detail = (f"func raised {type(exc).__name__} on item {offset} of bag partition "
                  f"{number} = {short_repr(item)}: {exc}")
    return ParallelMapError(None if start is None else start + offset, type(exc).__name__,
                            str(exc), text, short_repr(item), detail=detail,
                            original=original)


def _result_failure(start: int, bad: Unpicklable) -> ParallelMapError:
    cause = bad.cause
    if bad.offset is None:
        return ParallelMapError(start, type(cause).__name__, str(cause))
    index = start + bad.offset
    return ParallelMapError(
        index, type(cause).__name__, str(cause),
        detail=f"func's result for item {index} cannot be pickled to travel back "
               f"({short_repr(bad.value)}): {type(cause).__name__}: {cause}")
