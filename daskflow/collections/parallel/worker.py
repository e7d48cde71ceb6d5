"""On the workers: run one partition, and say exactly which item failed and how."""

from __future__ import annotations

import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import cloudpickle

from ...tracebacks import format_user_traceback
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


def run_partition(start: int, payload: Any, *, token: str, pickled_func: bytes) -> bytes:
    """Apply the function to one partition's items (a range, or their pickle).

    The results go back pickled as one ``bytes``: distributed may serialize a
    returned list element by element, which for a million ints takes minutes.
    """
    func = load_func(token, pickled_func)
    payload = read_payload(payload)
    items = pickle.loads(payload) if isinstance(payload, bytes) else payload
    out: list[Any] = []
    append = out.append
    failure = None
    try:
        for item in items:
            append(func(item))
    except (Exception, SystemExit) as exc:
        failure = _item_failure(start + len(out), item, exc)
    if failure is not None:
        # Raised outside the except block: distributed pickles the whole chain of
        # an exception (tblib), and the user's exception may not pickle.
        raise failure
    try:
        return dumps(out)
    except Unpicklable as bad:
        failure = _result_failure(start, bad)
    raise failure  # outside the except block, as above


def _item_failure(index: int, item: Any, exc: BaseException) -> ParallelMapError:
    # The traceback starts at the user's function: this module's frame is dropped.
    text = format_user_traceback(exc, skip=__file__)
    try:
        original: bytes | None = cloudpickle.dumps(exc.with_traceback(None))
    except Exception:
        original = None
    return ParallelMapError(index, type(exc).__name__, str(exc), text, short_repr(item),
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
