"""Imported once by the fork server that local workers are forked from (forkserver.py).

Importing this module is its whole job: it imports what every worker needs, the
modules the caller's main script imports at its top level, and those the driver named
(the datastore's filesystem), so a forked worker starts with all of it in memory, frozen
out of its garbage collections. (Dask's pre-spawn variables are in the server's environment
from its start: see ``warm_up``.) Nothing here runs a task or starts a thread.

The caller's script itself is never run here, nor in a worker: it may start a flow
or a ``parallel_map`` at its top level, with no ``if __name__ == "__main__":`` guard,
or come from stdin or a notebook. A stand-in ``__main__`` carrying the script's name
tells multiprocessing (``spawn.prepare`` in each forked worker) that it is loaded
already. Nothing a daskflow worker runs needs it (cloudpickle ships ``__main__``'s
functions and classes by value); it runs the script only when asked for a name,
as a ``multiprocessing`` Pool's worker does (``_StandInMain``).
"""

import ast
import gc
import importlib
import importlib.util
import os
import sys
import types

import cloudpickle  # noqa: F401
import distributed  # noqa: F401
import distributed.nanny  # noqa: F401
import distributed.worker  # noqa: F401

import daskflow.runtime.task  # noqa: F401

gc.freeze()  # see the end: the collections while the rest loads walk only what it makes


def top_level_imports(path: str) -> list[str]:
    """The absolute modules a script imports at its top level (also in ``try``/``if``)."""
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return []
    names: list[str] = []
    statements = list(tree.body)
    while statements:
        stmt = statements.pop(0)
        if isinstance(stmt, ast.Import):
            names += [alias.name for alias in stmt.names]
        elif isinstance(stmt, ast.ImportFrom) and stmt.module and not stmt.level:
            names.append(stmt.module)
        elif isinstance(stmt, ast.Try) or isinstance(stmt, ast.If) and not _is_main_guard(stmt):
            statements += stmt.body  # not the handlers: those run when an import fails
    return names


def _is_main_guard(stmt: ast.If) -> bool:
    """``if __name__ == "__main__":``, whose imports serve the script's own run."""
    return any(isinstance(node, ast.Name) and node.id == "__name__"
               for node in ast.walk(stmt.test))


class _StandInMain(types.ModuleType):
    """The caller's ``__main__``, run only if something asks it for a name it lacks.

    daskflow's workers never do (cloudpickle ships ``__main__``'s code by value), so
    for them the script never runs. A ``multiprocessing`` forkserver Pool of the same
    process shares this server; its workers unpickle the caller's functions by
    reference, and the first such lookup runs the script as ``__mp_main__``, as
    multiprocessing itself would have.
    """

    def __getattr__(self, name: str) -> object:
        if name.startswith("__") or self.__dict__.get("_daskflow_loaded"):
            raise AttributeError(name)
        self.__dict__["_daskflow_loaded"] = True
        import runpy
        from multiprocessing import process

        process.current_process()._inheriting = True  # type: ignore[attr-defined]
        try:
            spec = self.__dict__.get("__spec__")
            if spec is not None:
                found = runpy.run_module(spec.name, run_name="__mp_main__", alter_sys=False)
            else:
                found = runpy.run_path(self.__dict__["__file__"], run_name="__mp_main__")
        finally:
            del process.current_process()._inheriting  # type: ignore[attr-defined]
        for key, value in found.items():
            self.__dict__.setdefault(key, value)
        try:
            return self.__dict__[name]
        except KeyError:
            raise AttributeError(name) from None


def stand_in_main(path: str | None, name: str | None) -> types.ModuleType:
    """A ``__main__`` that multiprocessing takes for the caller's, already loaded."""
    import importlib.machinery

    main = _StandInMain("__mp_main__")
    if path:
        main.__file__ = path
    if name:
        main.__spec__ = importlib.machinery.ModuleSpec(name, None, origin=path)
    return main


_path = os.environ.pop("DASKFLOW_FORKSERVER_MAIN", None) or None
_name = os.environ.pop("DASKFLOW_FORKSERVER_MAIN_NAME", None) or None
if _path or _name:
    sys.modules["__main__"] = sys.modules["__mp_main__"] = stand_in_main(_path, _name)
    _source = _path
    if _name and not _source:
        try:
            _spec = importlib.util.find_spec(_name)
            _source = _spec.origin if _spec else None
        except (ImportError, ValueError):
            _source = None
    if _source and os.path.isfile(_source):
        sys.path.insert(0, os.path.dirname(_source))  # its own modules, as it finds them
        for _module in top_level_imports(_source):
            try:
                importlib.import_module(_module)
            except BaseException:  # noqa: BLE001  a worker imports it then, and reports what fails
                pass

# What the driver asked for besides (warm_up's imports: the datastore's filesystem),
# after the rest; one that fails to import is left to the worker, which says why.
# (Frozen first, the collections while s3fs loads walk only its own objects: the fork
# server is most of a run's start, and it spent 0.1 s in them, 0.04 s so.)
gc.freeze()
for _module in filter(None, os.environ.pop("DASKFLOW_FORKSERVER_IMPORTS", "").split(",")):
    try:
        importlib.import_module(_module)
    except BaseException:  # noqa: BLE001
        pass

# All of it lives as long as the workers forked from here: out of the collector's reach
# (gc.freeze), a worker's collections walk only what the worker made, not every module's
# objects (bench/worker_gc.py: 0.19 s of 0.26 s of split-sized allocations in the
# collector, 0.11 s frozen), and the pages stay shared with the server.
gc.freeze()
