"""What distributed keeps of a cluster after it closes, let go: for a process that starts
many (a notebook or a service calling ``MyFlow.run()`` all day).

Two caches of distributed hold every in-process scheduler that ever ran, with its task
states and its dashboard's Bokeh and Tornado objects (about half a MiB for each small
run; ``bench/all_day.py`` finds them with tracemalloc):

- ``distributed.core._expects_comm``, a ``functools.cache`` keyed by message handlers,
  the bound methods of every server that handled a message;
- ``distributed.dashboard.scheduler.template_variables``, memoized (toolz) by scheduler.

Both are memos only: clearing them once a cluster is closed lets the closed schedulers
go, and they fill again with the live ones as those need them.
"""

from __future__ import annotations

import sys
from typing import Any


def release_closed_servers() -> None:
    """Drop distributed's memos that hold closed schedulers.  The dashboard's module is
    not imported for it: a process that never served its pages (they are added after
    ``local.dashboard-delay``) has nothing in its memo, and importing it (Bokeh) would
    cost a small run's driver most of a second as its cluster closes."""
    core = sys.modules.get("distributed.core")
    clear = getattr(getattr(core, "_expects_comm", None), "cache_clear", None)
    if clear is not None:
        clear()
    dashboard = sys.modules.get("distributed.dashboard.scheduler")
    cache = _memo_of(getattr(dashboard, "template_variables", None))
    if cache is not None:
        cache.clear()


def _memo_of(func: Any) -> dict | None:
    """The dict a ``toolz.memoize``'d function keeps its results in (a closure cell)."""
    names = getattr(getattr(func, "__code__", None), "co_freevars", ())
    cells = dict(zip(names, getattr(func, "__closure__", None) or ()))
    cache = cells["cache"].cell_contents if "cache" in cells else None
    return cache if isinstance(cache, dict) else None
