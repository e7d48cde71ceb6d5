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

A scheduler started in this process with a preload given as text (``lifetime.py``, on
every cluster daskflow starts) leaves two more things behind: distributed imports the
text as a module ``tmp<random>`` from a copy in the scheduler's folder, and that module
stays in ``sys.modules``, with an import finder for the (deleted) folder in
``sys.path_importer_cache``: a module and a finder for every run.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: the name distributed's ``tmpfile`` gives a preload's text (``tempfile.mkstemp``)
_PRELOAD_NAME = re.compile(r"tmp\w{8}$")


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
    for folder in [p for p in sys.path_importer_cache if _is_gone_scratch(p)]:
        sys.path_importer_cache.pop(folder, None)


@contextmanager
def forgetting_preloads() -> Iterator[None]:
    """Take the preload modules that schedulers import in this block out of
    ``sys.modules`` again: each scheduler keeps its own (its ``preloads``), so its
    teardown still runs, and the module goes with the scheduler."""
    before = set(sys.modules)
    try:
        yield
    finally:
        for name in set(sys.modules) - before:
            module = sys.modules.get(name)
            if _PRELOAD_NAME.match(name) and hasattr(module, "dask_setup") and \
                    os.path.basename(getattr(module, "__file__", "") or "") == f"{name}.py":
                sys.modules.pop(name, None)


def _is_gone_scratch(path: Any) -> bool:
    """A closed server's folder in Dask's scratch space, deleted, that the import system
    still keeps a finder for."""
    return isinstance(path, str) and "dask-scratch-space" in path and \
        path not in sys.path and not os.path.isdir(path)


def _memo_of(func: Any) -> dict | None:
    """The dict a ``toolz.memoize``'d function keeps its results in (a closure cell)."""
    names = getattr(getattr(func, "__code__", None), "co_freevars", ())
    cells = dict(zip(names, getattr(func, "__closure__", None) or ()))
    cache = cells["cache"].cell_contents if "cache" in cells else None
    return cache if isinstance(cache, dict) else None
