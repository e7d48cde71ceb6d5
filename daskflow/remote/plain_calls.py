"""How a run's tasks go to a cluster of its own: as they are (``calls.py`` has the
sealed kind, for a scheduler that runs share).

A module of its own, importing nothing of distributed: the driver makes one for every
run, and a run whose every task is reused from the cache never starts a cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import groupby
from typing import Any


class PlainCalls:
    """Calls submitted as they are, for a cluster of the run's own."""

    def submit(self, client: Any, func: Callable, *args: Any, key: str,
               priority: int = 0) -> Any:
        return client.submit(func, *args, key=key, pure=False, priority=priority)

    def map(self, client: Any, func: Callable, *iterables: Sequence[Any], keys: list[str],
            priorities: Sequence[int] | None = None, kwargs: dict[str, Any] | None = None,
            **options: Any) -> list[Any]:
        """``func`` over ``iterables`` (and ``kwargs``, the same for every task);
        consecutive tasks of one priority go in one ``client.map`` with ``options``."""
        priorities = priorities or [0] * len(keys)
        futures: list[Any] = []
        index = 0
        for priority, run in groupby(priorities):
            size = len(list(run))
            part = [list(it[index:index + size]) for it in iterables]
            futures += client.map(func, *part, key=keys[index:index + size], pure=False,
                                  priority=priority, **(kwargs or {}), **options)
            index += size
        return futures
