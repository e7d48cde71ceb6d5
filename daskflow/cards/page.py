"""A card as one self-contained HTML page: inline CSS, no script, nothing fetched.

The page is what ``card view`` opens, what ``get_cards(task)[0].html`` holds and
what the run report shows in its task panel (in a sandboxed frame).
"""

from __future__ import annotations

import time
from html import escape
from typing import Any

from .components import Markdown, Table, render_component, value_repr

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1f2933;
background:#fff}
main{max-width:980px;margin:0 auto;padding:18px 22px}
header{border-bottom:1px solid #d9e2ec;margin-bottom:14px;padding-bottom:8px}
header h1{font-size:18px;margin:0}header p{margin:2px 0;color:#52606d;font-size:12px}
.df-table{border-collapse:collapse;margin:8px 0;font-size:13px}
.df-table th,.df-table td{border:1px solid #d9e2ec;padding:3px 8px;text-align:left;
vertical-align:top}
.df-table th{background:#f0f4f8}
pre{background:#f5f7fa;padding:8px;overflow:auto;white-space:pre-wrap;margin:4px 0}
.df-image img{max-width:100%}.df-image figcaption{color:#52606d;font-size:12px}
.df-progress progress{width:240px;vertical-align:middle}
.df-note{color:#7b8794;font-size:12px}
.df-error{border-left:4px solid #d64545;padding-left:8px;color:#a61b1b}
.df-component{margin:10px 0}
"""


def card_page(*, title: str, facts: list[tuple[str, str]], components: list[Any],
              live: bool = False) -> str:
    """The whole page: a header naming the task, then each component in order."""
    parts = "".join(f'<div class="df-component">{render_component(c)}</div>'
                    for c in components)
    if not components:
        parts = '<p class="df-note">This card has no components.</p>'
    fact_text = " · ".join(f"{k}: {v}" for k, v in facts)
    state = (f'<p class="df-note" id="df-live">in progress, written '
             f'{escape(time.strftime("%H:%M:%S"))}</p>') if live else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            # A card holds only what the task put on it: no script, nothing from the network.
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "img-src data:; style-src 'unsafe-inline'\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>"
            f"<header><h1>{escape(title)}</h1><p>{escape(fact_text)}</p>{state}</header>"
            f"{parts}</main></body></html>\n")


def artifact_components(artifacts: dict[str, Any]) -> list[Any]:
    """The default card's view of a task's artifacts: a table of name, type and value."""
    rows = [[name, type(value).__name__, _short(value)]
            for name, value in sorted(artifacts.items())]
    if not rows:
        return []
    out: list[Any] = [Markdown("## Artifacts"), Table(rows, headers=["artifact", "type",
                                                                      "value"])]
    for name, value in sorted(artifacts.items()):
        if _is_frame(value):  # a DataFrame is worth a look at its first rows
            out += [Markdown(f"### {name}"), Table.from_dataframe(value.head(20))]
    return out


def _short(value: Any) -> str:
    if _is_frame(value):
        return f"{type(value).__name__} of shape {getattr(value, 'shape', '?')}"
    return value_repr(value, 300)


def _is_frame(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and type(value).__module__.startswith("pandas")
