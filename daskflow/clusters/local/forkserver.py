"""Local worker processes forked from a warm fork server, not spawned one by one.

A spawned worker is a fresh interpreter that imports distributed, daskflow and the
flow file before it can take a task: about half a second of CPU each, and most of a
small flow's run time on a laptop. With ``daskflow.local.start-method: forkserver``
(the default where the platform has it) the driver starts multiprocessing's fork
server in the background as soon as a run begins; it imports all that once, while
the driver itself is still starting, and every local worker (also a replacement after
a crash or a @timeout kill, and every local step cluster) is forked from it.

The caller's script is never run there (nor in a worker): the server imports the
modules the script imports at its top level, and puts a stand-in ``__main__`` in
place, so a script without an ``if __name__ == "__main__":`` guard, one fed on stdin
or a notebook can start runs and ``parallel_map`` (see ``_worker_preload``).

The fork server is a single-threaded process that never runs a task, so forking it
is safe, unlike forking the driver (which runs an event loop in threads). It takes
Dask's ``distributed.nanny.pre-spawn-environ`` (OMP_NUM_THREADS=1 etc.) before it
imports anything, and ignores Ctrl-C, so its workers do too: only the driver handles
an interrupt. It ends with the driver.

``start-method: spawn`` goes back to Dask's default.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ... import config
from ...exceptions import ConfigurationError

PRELOAD_MODULE = "daskflow.clusters.local._worker_preload"
MAIN_PATH_VARIABLE = "DASKFLOW_FORKSERVER_MAIN"
MAIN_NAME_VARIABLE = "DASKFLOW_FORKSERVER_MAIN_NAME"
IMPORTS_VARIABLE = "DASKFLOW_FORKSERVER_IMPORTS"
METHODS = ("forkserver", "spawn")

_lock = threading.Lock()
_warm = False
_users = 0
_previous_method: object = None


def start_method() -> str:
    """How local worker processes start: ``forkserver`` or ``spawn``."""
    method = config.get("local.start-method") or "forkserver"
    if method not in METHODS:
        raise ConfigurationError(
            f"daskflow.local.start-method is {method!r}: use one of "
            f"{', '.join(METHODS)} (forkserver starts workers faster).")
    if method == "forkserver" and "forkserver" not in multiprocessing.get_all_start_methods():
        return "spawn"  # Windows
    return method


def is_warm() -> bool:
    """Whether local workers fork from the fork server (which ignores Ctrl-C)."""
    return _warm


def pre_spawn_environ() -> dict[str, Any]:
    """Dask's ``distributed.nanny.pre-spawn-environ``, read without importing
    distributed (which imports numpy)."""
    import dask.config
    value = dask.config.get("distributed.nanny.pre-spawn-environ", None)
    if value is None:  # distributed's defaults are not loaded yet: read its file
        import importlib.util

        import yaml
        spec = importlib.util.find_spec("distributed")
        if spec is None or spec.origin is None:
            return {}
        with open(os.path.join(os.path.dirname(spec.origin), "distributed.yaml")) as f:
            value = yaml.safe_load(f)["distributed"]["nanny"]["pre-spawn-environ"]
    return dict(value or {})


def warm_up(imports: Sequence[str] = ()) -> bool:
    """Start the fork server now, in the background; True when workers can fork from it.

    Call it as early as possible in the driver's main thread: the fork server imports
    what workers need while the driver goes on, and ``imports`` after that (the
    datastore's filesystem: ``s3fs`` is about half a second of a worker's first task
    otherwise; one that fails to import is left to the worker, which says why). Off the
    main thread, and before any call there, it does nothing (Ctrl-C could not be kept
    from the workers), and workers are spawned.
    """
    global _warm
    if start_method() != "forkserver":
        return False
    with _lock:
        if _warm:
            return True
        if threading.current_thread() is not threading.main_thread():
            return False
        from multiprocessing import forkserver, spawn

        multiprocessing.get_context("forkserver").set_forkserver_preload([PRELOAD_MODULE])
        # Dask's pre-spawn variables (MALLOC_TRIM_THRESHOLD_ is read by glibc only when a
        # process starts, OMP_NUM_THREADS before numpy loads) and Nanny's hash seed.
        env = {key: str(value) for key, value in pre_spawn_environ().items()
               if value is not None and key not in os.environ}
        env["PYTHONHASHSEED"] = os.environ.get("PYTHONHASHSEED", "6640")
        # The caller's script (or `-m` module) as workers will be told it: the server
        # imports what it imports, never the script itself (_worker_preload.py).
        main = spawn.get_preparation_data("daskflow")
        env[MAIN_PATH_VARIABLE] = main.get("init_main_from_path") or ""
        env[MAIN_NAME_VARIABLE] = main.get("init_main_from_name") or ""
        env[IMPORTS_VARIABLE] = ",".join(imports)  # the preload imports them last
        saved = {key: os.environ.get(key) for key in env}
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the server
        try:
            os.environ.update(env)
            forkserver.ensure_running()
        finally:
            signal.signal(signal.SIGINT, previous)
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        _warm = True
        return True


def forked_worker_kwargs() -> dict[str, Any]:
    """Extra LocalCluster arguments while workers fork from the server: a forked worker
    has the server's environment, so it gets the driver's as it is now, as a spawned
    one would."""
    import dask.config
    if dask.config.get("distributed.worker.multiprocessing-method", None) != "forkserver":
        return {}
    return {"env": dict(os.environ)}


@contextmanager
def worker_start_method() -> Iterator[str]:
    """While a local cluster is open, its nannies start workers from the fork server.

    Dask reads ``distributed.worker.multiprocessing-method`` each time a nanny
    (re)starts its worker, so it stays set until the last local cluster closes, then
    goes back to what it was.
    """
    global _users, _previous_method
    if not warm_up():
        yield "spawn"
        return
    import dask.config
    import distributed.utils

    # distributed would otherwise set its own preload list, importing every optional
    # package (numpy, pandas, ...) into this process first: ours is already running.
    distributed.utils._forkserver_preload_set = True
    key = "distributed.worker.multiprocessing-method"
    with _lock:
        if _users == 0:
            _previous_method = dask.config.get(key, None)
            dask.config.set({key: "forkserver"})
        _users += 1
    try:
        yield "forkserver"
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                dask.config.set({key: _previous_method})
