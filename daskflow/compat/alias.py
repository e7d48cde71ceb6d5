"""The import hook that answers ``import metaflow`` with daskflow's API, in one process.

A meta-path finder (:pep:`451`), first on ``sys.meta_path`` while installed: it makes
each ``metaflow`` module a fresh module whose names resolve lazily through the table of
:mod:`.metaflow_names`, so ``from metaflow import FlowSpec`` is daskflow's ``FlowSpec``
and ``from metaflow import S3`` is one line saying what daskflow does instead. It is
never written to disk: the ``daskflow run`` process installs it, and a run started there
carries a flag in its context that installs it again in each worker process before the
flow class is unpickled there (workers on other machines get daskflow, and so this
module, in the run's code package).
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import os
import sys
import threading
import types
from typing import Any

from ..exceptions import MetaflowFeatureError

TOP = "metaflow"
_lock = threading.Lock()


class _AliasModule(types.ModuleType):
    """A ``metaflow`` module: its names come from :mod:`.metaflow_names` when first read."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        from .metaflow_names import resolve_name
        value = resolve_name(self.__name__, name)
        setattr(self, name, value)
        return value

    def __dir__(self) -> list[str]:
        from .metaflow_names import names_of
        return sorted(set(super().__dir__()) | set(names_of(self.__name__)))


class MetaflowAliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``metaflow`` and its submodules, and loads each as an :class:`_AliasModule`."""

    def find_spec(self, fullname: str, path: Any = None,
                  target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != TOP and not fullname.startswith(TOP + "."):
            return None
        from .metaflow_names import (
            is_package,
            metaflow_has,
            module_known,
            refuse_module,
        )
        if not module_known(fullname):
            if metaflow_has(fullname):
                refuse_module(fullname)
            return None  # a name Metaflow does not have either: not found, as usual
        spec = importlib.machinery.ModuleSpec(fullname, self, is_package=is_package(fullname))
        spec.origin = "daskflow"
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _AliasModule(spec.name)
        module.__doc__ = (f"Metaflow's {spec.name}, answered by daskflow "
                          f"(daskflow.compat.metaflow_names).")
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        from .metaflow_names import names_of
        module.__all__ = list(names_of(module.__name__))  # type: ignore[attr-defined]


_FINDER = MetaflowAliasFinder()


def alias_active() -> bool:
    """Whether ``import metaflow`` gets daskflow's API in this process."""
    return _FINDER in sys.meta_path


def install_metaflow_alias() -> None:
    """Make ``import metaflow`` give daskflow's API in this process (idempotent).

    Refused when this process imported Metaflow itself already: its classes would mix
    with daskflow's.
    """
    with _lock:
        if alias_active():
            return
        loaded = sys.modules.get(TOP)
        if loaded is not None and not isinstance(loaded, _AliasModule):
            raise MetaflowFeatureError(
                f"This process imported Metaflow itself already ({getattr(loaded, '__file__', '?')}), "
                f"so a Metaflow flow file cannot run on daskflow here: run it with "
                f"`daskflow run FLOW.py ...` in a process of its own.")
        sys.meta_path.insert(0, _FINDER)


def uninstall_metaflow_alias() -> None:
    """Undo :func:`install_metaflow_alias`, forgetting the alias modules (for tests)."""
    with _lock:
        while _FINDER in sys.meta_path:
            sys.meta_path.remove(_FINDER)
        for name in [n for n, m in sys.modules.items() if isinstance(m, _AliasModule)]:
            del sys.modules[name]


def is_metaflow_file(path: str | os.PathLike) -> bool:
    """Whether the Python file at ``path`` imports ``metaflow`` anywhere (also inside a
    step, as Metaflow's tutorials do)."""
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            if any(alias.name == TOP or alias.name.startswith(TOP + ".")
                   for alias in node.names):
                return True
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module and (
                node.module == TOP or node.module.startswith(TOP + ".")):
            return True
    return False
