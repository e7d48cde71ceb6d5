"""Reading a join's next inputs while it works on this one, on an object store.

A join over a wide foreach reads its inputs one after another
(``sum(i.frame.x.sum() for i in inputs)``): on a local folder each read takes
microseconds, on an object store tens of milliseconds, and more when the store
answers ``503 SlowDown`` and the read backs off.  So once the join has gone past an
input, the names it read there (``frame``, ``value``) are loaded for the next
``depth`` inputs by a few threads, and the join finds them loaded when it gets there.
What a join reads seldom changes from one input to the next; when it does, an input
loads the other names itself, as without read-ahead.  At most ``depth`` inputs are
held loaded ahead of the join, and none stored bigger than 32 MiB, so its memory stays
bounded.

A read that fails ahead is not an error: the join's own read of that name tries
again, with the datastore's retry policy, and fails as it would have.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from ..datastore.store import worth_reading_ahead
from ..inputs import InputView


def names_read(view: InputView) -> list[str]:
    """The artifacts the join has read from ``view`` (loaded into it)."""
    return [name for name in view._df_refs if name in view.__dict__]


def reading_ahead(views: Iterable[InputView], depth: int) -> Iterator[InputView]:
    """``views`` in order; past each one, what was read from it is loaded for the next
    ``depth`` views in ``depth`` threads (at most 8)."""
    if depth <= 0:
        yield from views
        return
    upcoming = iter(views)
    window: deque[InputView] = deque()
    names: list[str] = []
    pool = ThreadPoolExecutor(min(depth, 8), thread_name_prefix="daskflow-read-ahead")
    try:
        while True:
            while len(window) < depth:
                view = next(upcoming, None)
                if view is None:
                    break
                window.append(view)
                _load_ahead(pool, view, names)
            if not window:
                return
            view = window.popleft()
            yield view
            read = names_read(view)
            if read and read != names:
                names = read
                for waiting in window:
                    _load_ahead(pool, waiting, names)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _load_ahead(pool: ThreadPoolExecutor, view: InputView, names: list[str]) -> None:
    pending: dict[str, Future] = view.__dict__.setdefault("_df_pending", {})
    for name in names:
        ref = view._df_refs.get(name)
        if ref is not None and worth_reading_ahead(ref) and \
                name not in view.__dict__ and name not in pending:
            pending[name] = pool.submit(view._load, name)
