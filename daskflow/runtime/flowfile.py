"""Where a flow comes from: a flow file to import, or a file a subprocess can load.

``Runner("flow.py")`` and ``python -m daskflow.runtime.executing`` load a flow file
here; ``async_run`` asks here for a file its subprocess can run, which for a class
defined in a notebook cell is that cell written out.  Kept apart from the runner so
that the subprocess entry point does not import it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

import cloudpickle

from ..exceptions import FlowDefinitionError
from ..scratch import owned_prefix

#: a notebook cell's flow, saved as a file for a subprocess to run
CELL_PREFIX = "daskflow-cell-"


def is_flow_class(value: Any) -> bool:
    """Whether ``value`` is a FlowSpec subclass, known by what it has: the runtime never
    imports :mod:`daskflow.flowspec`, whose ``MyFlow()``, ``.run`` and ``.delayed`` import
    the runtime (through :mod:`daskflow.cli`)."""
    return isinstance(value, type) and callable(getattr(value, "_flow_graph", None)) \
        and callable(getattr(value, "_for_task", None))


def load_flow(path: str | os.PathLike) -> type:
    """Import a flow file (its ``__main__`` guard keeps it from running) and return its class.

    A file that imports ``metaflow`` runs with the Metaflow alias of :mod:`daskflow.compat`
    installed in this process (and so in its runs' workers).
    """
    path = os.path.abspath(os.fspath(path))
    if not os.path.exists(path):
        raise FlowDefinitionError(f"Flow file {path} does not exist.")
    from ..compat import install_metaflow_alias, is_metaflow_file
    if is_metaflow_file(path):  # written for Metaflow: its imports get daskflow's API
        install_metaflow_alias()
    name = "daskflow_flow_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    cloudpickle.register_pickle_by_value(module)  # workers need not import the file
    found = [v for v in vars(module).values() if is_flow_class(v) and v.__module__ == name]
    if len(found) != 1:
        raise FlowDefinitionError(
            f"{path} defines {len(found)} FlowSpec subclasses; expected exactly one.")
    return found[0]


def flow_file_of(flow_cls: type, graph: Any) -> str:
    """A file a subprocess can load ``flow_cls`` from: its module's file, or its notebook
    cell written to a temporary file (the cell alone: what other cells define is not
    there, as with Metaflow's NBRunner)."""
    import linecache
    import tempfile

    module = sys.modules.get(flow_cls.__module__)
    if flow_cls.__module__ != "__main__" and os.path.isfile(getattr(module, "__file__", "")
                                                             or ""):
        return str(module.__file__)  # type: ignore[union-attr]
    lines = linecache.getlines(graph.file) if not os.path.isfile(graph.file) else []
    if not lines:
        raise FlowDefinitionError(
            f"{flow_cls.__name__} is defined in the running script, which a subprocess "
            f"would run again: give its file instead, Runner('flow.py').async_run(...).")
    folder = tempfile.mkdtemp(prefix=owned_prefix(CELL_PREFIX))
    path = os.path.join(folder, f"{flow_cls.__name__.lower()}.py")
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(lines))
    return path
