"""The flow page's HTML: one self-contained page (inline CSS and JS), the same for every run.

It holds no run's data: it asks its scheduler for the runs (``state.json``), so one text
serves every run on that scheduler. The driver builds it once and sends it along when
it installs the page (:func:`daskflow.dashboard.connect.install_flow_page`).
"""

from __future__ import annotations

import functools
from importlib import resources

from ..report.graph_svg import GRAPH_CSS


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("assets", name).read_text("utf-8")


@functools.lru_cache(maxsize=1)
def flow_page_html() -> str:
    """The page's whole text.

    >>> flow_page_html().startswith("<!DOCTYPE html>")
    True
    """
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<title>Flows · Dask</title><link rel=\"icon\" href=\"data:,\">"
        f"<style>{_asset('flowpage.css')}{GRAPH_CSS}</style></head><body>"
        '<nav><b>daskflow</b><a href="status">Dask dashboard</a>'
        '<span id="df-live">connecting</span><span class="where" id="df-where"></span></nav>'
        '<main><p class="empty" id="df-none">No run has reported to this scheduler yet.</p>'
        '<div id="df-runs"></div><footer id="df-cost"></footer></main>'
        f"<script>{_asset('flowpage.js')}</script></body></html>\n")
