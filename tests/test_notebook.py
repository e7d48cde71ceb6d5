"""A real notebook, executed headless with nbclient and ipykernel: a flow defined in a
cell, edited and redefined, run in the kernel; parallel_map twice; HTML reprs; a
failing flow whose error shows the step's line; no warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).parent / "notebooks" / "notebook_flow.ipynb"


def _text(cell) -> str:
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type == "error":
            parts.append("\n".join(out.traceback))
        else:
            parts.append(str(out.get("data", {}).get("text/html", "")))
    return "".join(parts)


def _stderr(cell) -> str:
    return "".join(out.text for out in cell.outputs
                   if out.output_type == "stream" and out.name == "stderr")


def test_notebook_runs_flows_defined_in_cells(workdir, capfd):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    from traitlets.config import Config

    # time for the kernel to run its exit handlers (closing parallel_map's cluster)
    # on a busy machine before it is killed (jupyter_client's default: 5 s)
    config = Config()
    config.KernelManager.shutdown_wait_time = 60
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3", config=config,
                            resources={"metadata": {"path": str(workdir)}}).execute()
    cells = [c for c in notebook.cells if c.cell_type == "code"]
    first, edited, maps, run_html, task_html, failed = (
        _text(cells[i]) for i in (2, 4, 5, 6, 7, 9))
    assert "FIRST 10" in first and "end saw 10" in first
    assert "EDITED 15 15" in edited  # the redefined class ran, and reads back
    assert "MAP1 [1, 2, 3, 4, 5]" in maps and "MAP2 [15, 30]" in maps
    assert maps.count("dashboard: http://127.0.0.1:") == 1  # one cluster, link shown once
    assert "Run <code>NbFlow/" in run_html and "success" in run_html
    assert "<code>n</code>=5" in run_html and "run report" in run_html
    assert "Task <code>NbFlow/" in task_html and "<code>x</code>" in task_html
    assert "RunFailed" in failed and "broken in the cell" in failed
    assert 'raise ValueError("broken in the cell")' in failed  # the step's own line
    for cell in cells:
        assert "Warning" not in _stderr(cell) and "Traceback" not in _stderr(cell), \
            _stderr(cell)
    # The kernel's own stderr (the Jupyter server's log, not the notebook), to its exit.
    # Known, not yet fixed: closing parallel_map's cluster at the kernel's exit makes
    # multiprocessing's resource_tracker report its semaphores (KeyError / "leaked");
    # only that is let through here.
    kernel_err = "\n".join(line for line in capfd.readouterr().err.splitlines()
                            if "resource_tracker" not in line)
    assert "Warning:" not in kernel_err, kernel_err
