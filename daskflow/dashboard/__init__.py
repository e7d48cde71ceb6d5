"""What daskflow adds to the Dask dashboard: a flow page on every scheduler, steps as spans.

- ``/daskflow`` beside Dask's own pages, on every scheduler a run uses (the run's default
  cluster, each step cluster, an existing ``--scheduler-address`` one, with or without
  daskflow installed there): the runs working on that scheduler, each with its graph and
  each step's counts, its clusters and their dashboards, worker-seconds and cost so far,
  and the error line and ``logs`` command of a failed task. ``_on_scheduler.py`` is what
  runs on the scheduler (by value), ``page.py`` and ``assets/`` the page, ``board.py`` a
  run as the page shows it, ``connect.py`` the driver's calls;
  :mod:`daskflow.runtime.flowpage` feeds it from the run's events.
- ``spans.py``: each step's tasks in the Dask span ``flow/run/step``, whose figures
  (compute, transfer, spill, idle) the run's record and report keep.

Importing this package imports no Dask: ``connect`` (distributed, tornado) is imported
where a run uses it.
"""

from .board import RunBoard
from .links import enabled, flow_page_link
from .spans import step_span

__all__ = ["RunBoard", "enabled", "flow_page_link", "step_span"]
