"""On a shared scheduler's workers: many runs' code packages in one process, each task
importing its own run's code.

Runs of different code (other versions of a flow, of its helper modules, of daskflow)
share one stock scheduler and its workers, which have no daskflow. Like
``_on_cluster.py`` this module travels by value (``cloudpickle.register_pickle_by_value``):
the standard library, distributed and cloudpickle only, no import of daskflow.

How a task runs (:func:`call_in_package`):

- Everything that crosses Dask is opaque: the call (function and arguments) is
  cloudpickle bytes, its result goes back as ``(MARK, bytes)`` and its exception as a
  builtin ``RuntimeError(MARK, bytes, text)``. Only a task inside its package's turn
  unpickles them, so nothing is ever unpickled by reference against another run's
  modules (the scheduler and the workers' event loops see builtins and this module).
- Each package is unpacked once per worker process, under its sha256, in
  ``<local directory>/daskflow-packages/<sha>/`` (read from the datastore at its first
  task there; reused by every run of that content).
- One package at a time is *active* in a process: its folder first on ``sys.path``,
  its modules (those under the package's top-level names: the flow folder's modules and
  ``daskflow``) in ``sys.modules``. Tasks of the active package run together; a task of
  another package waits until they end, and tasks arriving meanwhile wait behind it
  (first come, first served, so no package starves). Then the active package's modules
  are moved aside (kept for its next turn) and the other's are put in place. A waiting
  task gives its thread back to the worker (``secede``) and takes one again once it may
  run (``rejoin``): a running task may be waiting for tasks of its own.
- A task submitted from inside a running task (``parallel_map`` in a step) runs at once
  where its package is active: its parent's worker, which the scheduler prefers for
  it. Elsewhere it goes back to the scheduler (``Reschedule``) rather than wait, so two
  steps waiting for their maps on each other's workers never deadlock.
- At most ``max_packages`` are kept per process: past that, the least recently used one
  that no task holds or waits for is removed from disk and its modules forgotten.

The process's state lives in ``sys.modules[ANCHOR]`` as plain values, so tasks of
runs with other daskflow versions (whose copies of this module differ) share it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.machinery
import itertools
import os
import shutil
import socket
import sys
import threading
import types
from collections import OrderedDict, deque
from collections.abc import Iterator
from typing import Any

from distributed import WorkerPlugin

from ._on_cluster import extract_archive  # by value too (register_pickle_by_value)

MARK = "daskflow-sealed-1"      # first item of a sealed result or error
ANCHOR = "_daskflow_packages_1"  # the process's state; another layout takes another name
FOLDER = "daskflow-packages"    # under each worker's local directory, one folder per sha
VALUES_KEPT = 64                # unpickled inputs (a run's context, parents' refs) per package
NESTED_PATIENCE = 0.5           # seconds a call from inside a task waits before it is
                                # sent back to the scheduler

#: what a task's call names: (sha, url, driver (host, pid), max packages, nested)
Package = tuple


def enter(version: str, package: Package, call: bytes, *deps: Any) -> Any:
    """Each task's function: small, it travels by value with every task; the code that
    runs the call (:func:`call_in_package`) is put in each worker process once, by the
    plugin :class:`InstallPackages` of this ``version`` of this module."""
    state = sys.modules.get(ANCHOR)
    run = getattr(state, "entries", {}).get(version)
    if run is None:
        raise RuntimeError(f"daskflow's code package loader {version} is not in this worker "
                           f"process (its worker plugin did not run here); rerun the flow")
    return run(package, call, *deps)


class InstallPackages(WorkerPlugin):
    """Puts :func:`call_in_package` in each worker process, present and future; one per
    version of this module (runs of other daskflow versions register theirs too)."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.name = f"daskflow-packages-{version}"

    def setup(self, worker: Any) -> None:
        _state().entries[self.version] = call_in_package


def call_in_package(package: Package, call: bytes, *deps: Any) -> Any:
    """Run ``call`` (cloudpickled ``(func, args, kwargs, where)``, ``where`` naming the
    argument each of ``deps`` fills) with ``package``'s modules; returns the result
    sealed (bytes as they are)."""
    sha, url, driver, limit, nested = package
    if (socket.gethostname(), os.getpid()) == tuple(driver):  # a worker thread of the
        return _sealed_run(None, None, call, deps)              # driver: its own modules
    state = _state()
    record = _ensure(state, sha, url)
    try:
        with _turn(state, sha, record, nested):
            state.local.stack.append(package)
            try:
                return _sealed_run(state, record, call, deps)
            finally:
                state.local.stack.pop()
    finally:
        with state.cond:
            record["users"] -= 1
        _evict(state, limit)


def current_package() -> Package | None:
    """The package of the call this thread runs (marked nested), None outside one."""
    state = sys.modules.get(ANCHOR)
    stack = getattr(getattr(state, "local", None), "stack", None)
    if not stack:
        return None
    sha, url, driver, limit, _ = stack[-1]
    return (sha, url, driver, limit, True)


# -- sealing -------------------------------------------------------------------------------

def _sealed_run(state: Any, record: dict | None, call: bytes, deps: tuple) -> Any:
    import cloudpickle

    func, args, kwargs, where = cloudpickle.loads(call)
    args = list(args)
    for place, value in zip(where, deps):
        value = _opened(state, record, value)
        if isinstance(place, int):
            args.insert(place, value)
        else:
            kwargs[place] = value
    try:
        result = func(*args, **kwargs)
    except Exception as exc:  # a builtin, which unpickles anywhere; the driver opens it
        text = f"{type(exc).__name__}: {exc}"
        try:
            sealed = cloudpickle.dumps(exc)
        except Exception:  # noqa: BLE001  an exception that does not pickle: its text
            raise RuntimeError(text) from None
        raise RuntimeError(MARK, sealed, text) from None
    return result if isinstance(result, bytes) else (MARK, cloudpickle.dumps(result))


def _opened(state: Any, record: dict | None, value: Any) -> Any:
    """An input as the task takes it: a sealed result unpickled (once per package)."""
    if not (isinstance(value, tuple) and len(value) == 2 and value[0] == MARK):
        return value
    import cloudpickle

    if record is None:
        return cloudpickle.loads(value[1])
    values = record["values"]
    with state.cond:
        found = values.get(value[1])
        if found is not None:
            values.move_to_end(value[1])
            return found
    found = cloudpickle.loads(value[1])
    with state.cond:
        values[value[1]] = found
        while len(values) > VALUES_KEPT:
            values.popitem(last=False)
    return found


# -- the process's packages ----------------------------------------------------------------

def _state() -> Any:
    state = sys.modules.get(ANCHOR)
    if state is None:
        fresh = types.ModuleType(ANCHOR, "daskflow's code packages in this process")
        fresh.cond = threading.Condition()
        fresh.active = None            # sha whose modules are in sys.modules
        fresh.running = 0              # tasks running in the active package
        fresh.queue = deque()          # (ticket, sha) of tasks waiting for a turn
        fresh.packages = OrderedDict()  # sha -> record
        fresh.base = {}                # modules not of a package that one shadows
        fresh.fetching = {}            # sha -> lock while it is unpacked
        fresh.local = threading.local()
        fresh.clock = itertools.count()
        fresh.entries = {}             # version of this module -> its call_in_package
        state = sys.modules.setdefault(ANCHOR, fresh)  # atomic: one state per process
    if not hasattr(state.local, "stack"):
        state.local.stack = []
    return state


def _ensure(state: Any, sha: str, url: str) -> dict:
    """The package's record, unpacked first if this process does not have it; counted
    as in use (not evicted) until the caller gives it back."""
    with state.cond:
        record = state.packages.get(sha)
        if record is not None:
            record["users"] += 1
            return record
        lock = state.fetching.setdefault(sha, threading.Lock())
    with lock:
        with state.cond:
            record = state.packages.get(sha)
            if record is not None:
                record["users"] += 1
                return record
        folder = os.path.join(_local_directory(), FOLDER, sha)
        if not os.path.isdir(folder):
            _unpack(sha, url, folder)
        record = {"sha": sha, "folder": folder, "names": _top_level_names(folder),
                  "modules": {}, "values": OrderedDict(), "users": 1, "used": 0}
        with state.cond:
            state.packages[sha] = record
            state.fetching.pop(sha, None)
        return record


def _local_directory() -> str:
    try:
        from distributed import get_worker
        return get_worker().local_directory
    except (ImportError, ValueError):  # not in a worker's task
        import tempfile
        return os.path.join(tempfile.gettempdir(), f"daskflow-{os.getuid()}-{os.getpid()}")


def _unpack(sha: str, url: str, folder: str) -> None:
    import fsspec  # dask's dependency; s3fs/gcsfs come from the worker's image

    with fsspec.open(url, "rb") as f:
        data = f.read()
    found = hashlib.sha256(data).hexdigest()
    if found != sha:
        raise RuntimeError(f"the code package {url} has sha256 {found}, expected {sha}: "
                           f"it is corrupt or was replaced; rerun the flow")
    extract_archive(data, folder)


def _top_level_names(folder: str) -> frozenset[str]:
    """The names a package's modules are imported by: its folders and module files (a
    file named as a module of the standard library is never put in that one's place)."""
    suffixes = importlib.machinery.all_suffixes()
    names = set()
    for entry in os.listdir(folder):
        if os.path.isdir(os.path.join(folder, entry)):
            if entry.isidentifier():
                names.add(entry)
            continue
        for suffix in suffixes:
            if entry.endswith(suffix) and entry[:-len(suffix)].split(".")[0].isidentifier():
                names.add(entry[:-len(suffix)].split(".")[0])
                break
    return frozenset(names - set(sys.stdlib_module_names))


# -- turns ---------------------------------------------------------------------------------

@contextlib.contextmanager
def _turn(state: Any, sha: str, record: dict, nested: bool) -> Iterator[None]:
    """Run the block with ``sha`` the active package, alongside its other tasks only."""
    ticket = (object(), sha)
    with state.cond:
        state.queue.append(ticket)
        waits = not _may_enter(state, ticket, nested)
    # A call from inside a running task (parallel_map in a step) never waits long: its
    # parent holds its own worker's turn, and a parent elsewhere may wait for this one's
    # worker. It goes back to the scheduler, which prefers the parent's worker.
    bounded = waits and nested and _on_worker()
    # Waiting, a task gives its thread back to the worker: a running task of the active
    # package may be waiting for tasks of its own, which need one
    seceded = waits and not bounded and _secede()
    with state.cond:
        if not state.cond.wait_for(lambda: _may_enter(state, ticket, nested),
                                   NESTED_PATIENCE if bounded else None):
            state.queue.remove(ticket)
            state.cond.notify_all()
            from distributed import Reschedule
            raise Reschedule()
        state.queue.remove(ticket)
        if state.active != sha:
            _switch(state, record)
        elif record["folder"] not in sys.path:  # someone else's install took it off
            sys.path.insert(0, record["folder"])
        state.running += 1
        record["used"] = next(state.clock)
    if seceded:
        from distributed import rejoin
        rejoin()  # a thread of the worker's again, once one is free
    try:
        yield
    finally:
        with state.cond:
            state.running -= 1
            state.cond.notify_all()


def _on_worker() -> bool:
    try:
        from distributed import get_worker
        get_worker()
    except (ImportError, ValueError):
        return False
    return True


def _secede() -> bool:
    try:
        from distributed import secede
        secede()
    except (ImportError, ValueError, KeyError, AttributeError):  # not in a task thread
        return False
    return True


def _may_enter(state: Any, ticket: tuple, nested: bool) -> bool:
    sha = ticket[1]
    if state.active == sha:
        if nested:
            return True
        for waiting in state.queue:  # not past a task of another package that came first
            if waiting is ticket:
                return True
            if waiting[1] != sha:
                return False
    return state.running == 0 and state.queue[0] is ticket


def _switch(state: Any, record: dict) -> None:
    """Put ``record``'s modules in place of the active package's (no task runs)."""
    old = state.packages.get(state.active) if state.active is not None else None
    if old is not None:
        old["modules"].update(_take_modules(old["names"]))
        _off_path(old["folder"])
    names = record["names"]
    state.base.update(_take_modules(names))  # an installed module of the same name
    for name in [n for n in state.base if n.partition(".")[0] not in names]:
        sys.modules[name] = state.base.pop(name)
    sys.modules.update(record["modules"])
    record["modules"] = {}
    sys.path.insert(0, record["folder"])
    importlib.invalidate_caches()
    state.active = record["sha"]


def _take_modules(names: frozenset[str]) -> dict[str, Any]:
    """Remove from ``sys.modules`` every module under ``names``; return them."""
    taken = {}
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] in names:
            taken[name] = module
            del sys.modules[name]
    return taken


def _off_path(folder: str) -> None:
    while folder in sys.path:
        sys.path.remove(folder)
    for path in [p for p in list(sys.path_importer_cache) if p == folder
                 or p.startswith(folder + os.sep)]:
        sys.path_importer_cache.pop(path, None)


def _evict(state: Any, limit: int) -> None:
    """Remove the least recently used packages past ``limit`` (the setting of the driver
    whose task just ran) that no task holds or waits for."""
    gone = []
    with state.cond:
        waiting = {sha for _, sha in state.queue}
        while len(state.packages) > max(1, limit):
            idle = [r for sha, r in state.packages.items() if sha != state.active
                    and sha not in waiting and r["users"] == 0]
            if not idle:
                break
            record = min(idle, key=lambda r: r["used"])
            del state.packages[record["sha"]]
            record["modules"].clear()
            record["values"].clear()
            _off_path(record["folder"])
            gone.append(record["folder"])
    for folder in gone:
        shutil.rmtree(folder, ignore_errors=True)
    if gone:  # typing's caches hold classes of the modules (Union[...] of a module's own)
        import typing
        for clear in getattr(typing, "_cleanups", ()):
            clear()
