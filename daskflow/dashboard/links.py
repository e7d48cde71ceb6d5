"""Where the flow page is: beside a cluster's Dask dashboard, at ``/daskflow``."""

from __future__ import annotations

from .. import config

PAGE_PATH = "/daskflow"   # what _on_scheduler.install_page serves (its PAGE)


def enabled() -> bool:
    """Whether runs serve the flow page on their schedulers (``dashboard.flow-page``)."""
    return bool(config.get("dashboard.flow-page"))


def flow_page_link(dashboard_link: str | None) -> str | None:
    """The flow page beside Dask's dashboard at ``dashboard_link`` (its ``/status``), or
    the link unchanged when runs serve no flow page: the link a run prints.

    >>> flow_page_link("https://host:8787/status")
    'https://host:8787/daskflow'
    """
    if not dashboard_link or not enabled():
        return dashboard_link
    base = dashboard_link.rstrip("/")
    if base.rsplit("/", 1)[-1] == "status":
        base = base.rsplit("/", 1)[0]
    return base + PAGE_PATH
