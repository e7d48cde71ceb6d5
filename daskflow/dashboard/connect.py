"""The driver's side of the flow page: install it on a scheduler, send it the run, read spans.

Every call is one ``client.run_on_scheduler`` (or ``client.run``) of a function of
:mod:`._on_scheduler`, which travels by value: the scheduler needs no daskflow.
"""

from __future__ import annotations

import json
from typing import Any

import cloudpickle

from . import _on_scheduler
from .page import flow_page_html


def _by_value() -> None:
    cloudpickle.register_pickle_by_value(_on_scheduler)


def install_flow_page(client: Any) -> None:
    """Serve the flow page on ``client``'s scheduler (again: the page's text is renewed)."""
    _by_value()
    client.run_on_scheduler(_on_scheduler.install_page, flow_page_html())


def publish_run(client: Any, state: dict[str, Any], graph: str | None = None, *,
                final: bool = False) -> dict[str, Any]:
    """Send the run's ``state`` (and its ``graph`` SVG) to the page on ``client``'s
    scheduler; the answer counts the run's tasks running there by step (``running``).
    ``final``: wait, a moment at most, until the pages open on it have it."""
    _by_value()
    return client.run_on_scheduler(_on_scheduler.publish, json.dumps(state), graph,
                                   client.id, final) or {}


def step_metrics(client: Any, run_id: str) -> dict[str, dict[str, Any]]:
    """What each step of run ``run_id`` spent on ``client``'s cluster, from Dask's span
    ``flow/run/step``: seconds of compute (and CPU), transfer, spill, idle. The workers
    send their latest metrics first (they travel with heartbeats)."""
    _by_value()
    try:
        client.run(_on_scheduler.send_metrics_now)
    except Exception:  # noqa: BLE001  older metrics are still there
        pass
    return client.run_on_scheduler(_on_scheduler.step_metrics, run_id)
