"""What ``parallel_map`` raises: a failure on the workers, or a wrong call."""

from __future__ import annotations

from typing import Any

import cloudpickle

from ... import config
from ...exceptions import DaskflowException

__all__ = ["ParallelMapError", "ParallelMapInputError"]


class ParallelMapError(DaskflowException, RuntimeError):
    """``func`` raised on one item (or the worker running it died); the map was cancelled.

    Attributes
    ----------
    index : int or None
        Position of the failing item in the input (None: not known, e.g. a
        worker died; the message then gives the range of items it held).
    type_name, message, traceback_text : str
        The original exception's type name, message and traceback on the worker.
    item_repr : str or None
        A shortened ``repr`` of the item.

    The original exception is the ``__cause__`` when it could be unpickled
    here, with the worker's traceback attached as a note.

    >>> try:                                                        # doctest: +SKIP
    ...     parallel_map(lambda x: 1 / x, [1, 0])
    ... except ParallelMapError as exc:
    ...     print(exc.index, exc.type_name)
    1 ZeroDivisionError
    """

    headline = "parallel_map failed"

    def __init__(self, index: int | None, type_name: str, message: str,
                 traceback_text: str = "", item_repr: str | None = None,
                 detail: str | None = None, original: bytes | None = None) -> None:
        self.index = index
        self.type_name = type_name
        self.message = message
        self.traceback_text = traceback_text
        self.item_repr = item_repr
        self.detail = detail
        self._original = original
        limit = int(config.get("parallel-map.message-limit"))
        if len(message) > limit:
            message = self.message = message[:limit] + "..."
        if detail is not None:
            text = detail
        else:
            what = f" = {item_repr}" if item_repr is not None else ""
            text = f"func raised {type_name} on items[{index}]{what}: {message}"
        super().__init__(f"parallel_map: {text} (the other items were cancelled)")

    @property
    def original(self) -> BaseException | None:
        """The exception ``func`` raised, unpickled here; None if it cannot be."""
        if self._original is None:
            return None
        try:
            exc = cloudpickle.loads(self._original)
        except Exception:
            return None
        return exc if isinstance(exc, BaseException) else None

    def __reduce__(self) -> Any:  # picklable whatever the original was
        return (type(self), (self.index, self.type_name, self.message, self.traceback_text,
                             self.item_repr, self.detail, self._original))


class ParallelMapInputError(DaskflowException, ValueError):
    """``parallel_map`` was called wrongly, or its function or an item cannot be pickled."""

    headline = "parallel_map input error"
