"""Fixtures for the runtime's tests: the graph of an example flow, read in-process."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from daskflow.graph import FlowGraph

FLOWS = Path(__file__).parent.parent / "flows"


@pytest.fixture
def flow_graph():
    """``flow_graph("foreach.py")``: the :class:`FlowGraph` of ``tests/flows/foreach.py``'s
    flow, its file loaded as a module (not run: no process, fit for a fast test)."""

    def read(file: str) -> FlowGraph:
        spec = importlib.util.spec_from_file_location(f"flows_{Path(file).stem}",
                                                      FLOWS / file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        [flow] = [v for v in vars(module).values() if isinstance(v, type)
                  and v.__module__ == module.__name__ and hasattr(v, "_for_task")]
        return FlowGraph.from_class(flow)

    return read
