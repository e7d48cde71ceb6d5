"""Each step's tasks in a Dask span named after the flow, the run and the step.

Dask's spans (``distributed.span``) break a cluster's work down by group: its "Fine
performance metrics" page and the span API show compute, transfer, spill and idle time
per span. The driver submits a step's tasks inside :func:`step_span`, so each step is
the span ``(flow, run_id, step)`` (shown as ``flow/run_id/step``; its tags filter the
page by flow, run or step); :func:`daskflow.dashboard.connect.step_metrics` reads them
back before a cluster closes (the cluster's meter, ``runtime/meter.py``), for the run's
record and report.

Dask ties a span to a task group, and names task groups by key prefix (the step's
name): two runs of flows with the same step names at once on one scheduler share those
groups, and the later run's tasks of such a step count in the earlier run's span while
both are there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def step_span(flow: str, run_id: str, step: str) -> Iterator[str]:
    """Tasks submitted inside this run in the span ``flow/run_id/step``."""
    from distributed import span

    with span(flow, run_id, step) as span_id:
        yield span_id
