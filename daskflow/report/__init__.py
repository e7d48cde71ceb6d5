"""Pictures of flows and runs: the run report page and the graph for ``show``.

:func:`write_run_report` turns a stored run into one self-contained HTML page
(graph, timeline of every task attempt, clusters, parameters, tags, failures
with tracebacks, links to Dask performance reports); it reads the run through
the client API only.  :func:`render_graph_svg`, :func:`render_graph_html` and
:func:`render_graph_dot` draw a flow's graph without running it.

>>> from daskflow import Flow                                   # doctest: +SKIP
>>> from daskflow.report import write_run_report
>>> write_run_report(Flow("HelloFlow").latest_run, "hello.html")
'hello.html'
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import Any

from ..datastore.layout import REPORT as REPORT_NAME  # in the run's folder
from .layout import GraphNode, graph_nodes
from .model import collect_run

__all__ = ["GRAPH_FORMATS", "REPORT_NAME", "collect_run", "default_report_path", "find_run",
           "graph_format_for", "render_graph_as", "render_graph_dot", "render_graph_html",
           "render_graph_svg", "render_run_report", "write_comparison",
           "write_report_after_run", "write_run_index", "write_run_report"]

logger = logging.getLogger(__name__)


def render_run_report(run: Any, *, graph: Any = None, report_dir: str | None = None) -> str:
    """The HTML text of ``run``'s report (see :func:`write_run_report`)."""
    from .page import report_html

    return report_html(collect_run(run, graph), report_dir=report_dir)


def write_run_report(run: Any, path: str | os.PathLike | None = None, *,
                     graph: Any = None) -> str:
    """Write the run report of ``run`` to ``path`` and return the path.

    Parameters
    ----------
    run : daskflow.client.Run
        The run, e.g. ``Run("MyFlow/1712345", _root=...)`` or ``Flow("MyFlow").latest_run``.
    path : str, optional
        Where to write: a local file or an fsspec URL (default: ``_report.html``
        in the run's folder of the datastore, see :func:`default_report_path`).
    graph : FlowGraph, optional
        The flow's graph; without it the graph is rebuilt from the stored tasks.

    >>> write_run_report(run, "report.html")                     # doctest: +SKIP
    'report.html'
    """
    target = os.fspath(path) if path is not None else default_report_path(run)
    local = "://" not in target or target.startswith("file://")
    plain = target[len("file://"):] if target.startswith("file://") else target
    report_dir = os.path.dirname(os.path.abspath(plain)) if local else None
    text = render_run_report(run, graph=graph, report_dir=report_dir)
    if path is None:  # kept with the run, where the datastore puts it
        return run._store.runs.write_report(run.id, text)
    return _write_page(target, text)


def write_comparison(run_a: Any, run_b: Any, path: str | os.PathLike | None = None, *,
                     graph: Any = None) -> str:
    """Write the page comparing two runs of a flow and return where it is: parameters,
    each step's time and worker-seconds, the artifacts whose values differ, the flow's
    files that changed (``python flow.py report --compare RUN_A RUN_B``).

    ``path``: a local file or fsspec URL (default: ``_compare/<a>-vs-<b>.html`` in the
    flow's folder of the datastore, beside the runs).

    >>> flow = Flow("TrainFlow")                                  # doctest: +SKIP
    >>> write_comparison(flow["1712"], flow["1713"], "compare.html")
    'compare.html'
    """
    from .compare import compare_runs
    from .runs_pages import comparison_html

    runs = run_a._store.runs
    kept = path is None
    reports = tuple(f"../{r.id}/{REPORT_NAME}" if kept and runs.stored_report(r.id)
                    else runs.stored_report(r.id) for r in (run_a, run_b))
    text = comparison_html(compare_runs(run_a, run_b, graph=graph), reports)
    if kept:
        return runs.write_comparison(run_a.id, run_b.id, text)
    return _write_page(os.fspath(path), text)


def write_run_index(flow: Any, path: str | os.PathLike | None = None, *,
                    limit: int = 50) -> str:
    """Write the page of ``flow``'s latest ``limit`` runs (status, times, failure, a link
    to each run's report) and return where it is (default: ``_index.html`` in the flow's
    folder of the datastore). Runs of every namespace are listed.

    >>> write_run_index(Flow("TrainFlow"))                        # doctest: +SKIP
    '.daskflow/TrainFlow/_index.html'
    """
    from ..client import Run
    from ..liveness import driver_lost
    from .runs_pages import index_html

    store = flow._store
    runs = store.runs
    kept = path is None
    listed = []
    for run_id in sorted(store.list_runs(), key=int, reverse=True)[:limit]:
        try:
            record = dict(Run(f"{flow.name}/{run_id}", _namespace_check=False,
                              _root=flow._root).record)
        except Exception:  # noqa: BLE001  a run whose record cannot be read: left out
            continue
        if record.get("status", "running") == "running" and driver_lost(record):
            record["status"] = "failed"
        stored = runs.stored_report(run_id)
        record["run_id"] = run_id
        record["report"] = (f"{run_id}/{REPORT_NAME}" if kept else stored) if stored else None
        listed.append(record)
    where = runs.index_location() if kept else os.fspath(path)
    text = index_html(flow.name, listed, where)
    if kept:
        return runs.write_index(text)
    return _write_page(os.fspath(path), text)


def _write_page(target: str, text: str) -> str:
    """Write a page to a local file or an fsspec URL; return where it is. A local file is
    written then renamed: a reader never sees half a page."""
    if "://" not in target or target.startswith("file://"):
        plain = target[len("file://"):] if target.startswith("file://") else target
        os.makedirs(os.path.dirname(os.path.abspath(plain)), exist_ok=True)
        tmp = f"{plain}.tmp-{uuid.uuid4().hex[:8]}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, plain)
        return plain
    import fsspec
    with fsspec.open(target, "w", encoding="utf-8") as f:
        f.write(text)
    return target


def default_report_path(run: Any) -> str:
    """``<datastore>/<Flow>/<run_id>/_report.html``: the report is kept with the run."""
    return run._store.runs.report_location(run.id)  # s3://... stays a URL


def write_report_after_run(root: str, flow_name: str, run_id: str, *,
                           graph: Any = None) -> str | None:
    """Write the report kept with a run that just ended; never raises.

    The runtime calls this last: a report that cannot be written is logged as a
    warning and must not turn a finished run into a failed one.
    """
    try:
        from ..client import Run

        run = Run(f"{flow_name}/{run_id}", _namespace_check=False, _root=root)
        return write_run_report(run, graph=graph)
    except Exception as exc:  # noqa: BLE001 - see docstring
        logger.warning("daskflow: could not write the run report of %s/%s: %s: %s",
                       flow_name, run_id, type(exc).__name__, exc)
        return None


def _nodes(graph: Any) -> dict[str, GraphNode]:
    return graph if isinstance(graph, dict) else graph_nodes(graph)


def render_graph_svg(graph: Any) -> str:
    """The flow's graph as a standalone SVG image (``show --format svg``).

    >>> svg = render_graph_svg(MyFlow._flow_graph())             # doctest: +SKIP
    """
    from .graph_svg import render_svg

    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            + render_svg(_nodes(graph), None, title=f"Flow graph of "
                         f"{getattr(graph, 'flow_name', 'flow')}") + "\n")


def render_graph_html(graph: Any, doc: str = "") -> str:
    """A self-contained page with the graph and a table of steps (``show --format html``)."""
    from .page import graph_page

    return graph_page(_nodes(graph), getattr(graph, "flow_name", "flow"), doc)


def render_graph_dot(graph: Any) -> str:
    """The graph in Graphviz DOT (``show --format dot``)."""
    from .graph_svg import render_dot

    return render_dot(_nodes(graph), getattr(graph, "flow_name", "flow"))


GRAPH_FORMATS = ("text", "html", "svg", "dot")
_EXTENSIONS = {".html": "html", ".htm": "html", ".svg": "svg", ".dot": "dot", ".gv": "dot"}


def graph_format_for(path: str | None) -> str:
    """The ``show`` format a file name asks for: ``graph.svg`` -> ``svg``; else ``text``."""
    if not path:
        return "text"
    return _EXTENSIONS.get(os.path.splitext(path)[1].lower(), "text")


def render_graph_as(graph: Any, fmt: str, doc: str = "") -> str:
    """The graph as ``html``, ``svg`` or ``dot`` text (``text`` is the CLI's own)."""
    if fmt == "html":
        return render_graph_html(graph, doc)
    if fmt == "svg":
        return render_graph_svg(graph)
    if fmt == "dot":
        return render_graph_dot(graph)
    raise ValueError(f"Unknown graph format {fmt!r}; use one of {', '.join(GRAPH_FORMATS)}.")


def find_run(flow_name: str, run_id: str | None = None, root: str | None = None) -> Any:
    """The run ``run_id`` of ``flow_name`` (any namespace), or your latest run of it."""
    from ..client import Flow, Run
    from ..exceptions import DataNotFoundError

    if run_id:
        return Run(f"{flow_name}/{run_id}", _namespace_check=False, _root=root)
    run = Flow(flow_name, _root=root).latest_run
    if run is None:
        raise DataNotFoundError(
            f"You have no runs of {flow_name} in {Flow(flow_name, _root=root)._store.flow_root}"
            f" yet: run it first, or give a RUN_ID.")
    return run
