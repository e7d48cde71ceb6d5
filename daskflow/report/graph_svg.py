"""The flow graph as SVG: a box per step, edges, foreach fans, switch choices.

Without a run it is the flow as written (``python flow.py show --format svg``);
with a run each box also says how its tasks went, the edges the run took are
drawn solid and the others faded, and a switch's chosen branch is highlighted.
A step inside a foreach is drawn as a stack of cards, however many tasks it ran.
"""

from __future__ import annotations

from html import escape

from .layout import FOREACH, SWITCH, GraphLayout, GraphNode, PlacedEdge, layout_graph
from .model import FAILED, OK, UNFINISHED, RunData

STACK = 5          # offset of the cards behind a foreach step's box
FAN = 22           # spread of a foreach edge's fan at the stacked end

GRAPH_CSS = """
.df-graph { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue",
  Arial, sans-serif; }
.df-graph .df-box { fill: #ffffff; stroke: #57606a; stroke-width: 1.5; }
.df-graph .df-card { fill: #ffffff; stroke: #8c959f; stroke-width: 1; }
.df-graph .df-name { font-size: 13px; font-weight: 600; fill: #1f2328; }
.df-graph .df-kind { font-size: 11px; fill: #57606a; }
.df-graph .df-stats { font-size: 11px; fill: #57606a; }
.df-graph .df-stats .df-bad { fill: #cf222e; font-weight: 600; }
.df-graph .df-stats .df-warn { fill: #bc4c00; }
.df-graph .st-ok .df-box { stroke: #1a7f37; }
.df-graph .st-ok .df-strip { fill: #2da44e; }
.df-graph .st-failed .df-box { stroke: #cf222e; stroke-width: 2.5; fill: #fff5f5; }
.df-graph .st-failed .df-strip { fill: #cf222e; }
.df-graph .st-unfinished .df-box { stroke: #bf8700; stroke-width: 2; }
.df-graph .st-unfinished .df-strip { fill: #d4a72c; }
.df-graph .st-notrun .df-box { stroke: #afb8c1; stroke-dasharray: 5 4; fill: #f6f8fa; }
.df-graph .st-notrun .df-strip { fill: #d0d7de; }
.df-graph .st-notrun .df-name, .df-graph .st-notrun .df-kind,
.df-graph .st-notrun .df-stats { fill: #8c959f; }
.df-graph .st-plain .df-strip { fill: #8c959f; }
.df-graph .df-edge { fill: none; stroke: #6e7781; stroke-width: 1.6; }
.df-graph .df-edge.df-ran { stroke: #424a53; }
.df-graph .df-edge.df-taken { stroke: #0969da; stroke-width: 3; }
.df-graph .df-edge.df-skip { stroke: #c7ccd1; stroke-dasharray: 5 4; }
.df-graph .df-label rect { fill: #ffffff; stroke: #d0d7de; }
.df-graph .df-label text { font-size: 11px; fill: #424a53; }
.df-graph .df-label.df-taken rect { fill: #ddf4ff; stroke: #0969da; }
.df-graph .df-label.df-taken text { fill: #0550ae; font-weight: 600; }
.df-graph .df-label.df-skip text { fill: #8c959f; }
.df-graph .df-label.df-fan rect { fill: #fff8c5; stroke: #d4a72c; }
.df-graph .df-node { cursor: pointer; }
.df-graph .df-node:hover .df-box { stroke-width: 3; }
.df-graph .df-node.df-selected .df-box { stroke: #0969da; stroke-width: 3; }
"""

_STATUS_CLASS = {OK: "st-ok", FAILED: "st-failed", UNFINISHED: "st-unfinished"}
LIVE_STATS_WIDTH = "1000/1000 done · 16 running"   # room kept for a live box's stats


def text_width(text: str, size: float, bold: bool = False) -> float:
    """A fair estimate of how wide ``text`` renders in a sans-serif font."""
    narrow, wide = set("iljtfr.,:;'|!() "), set("mwMW@%")
    units = 0.0
    for ch in text:
        if ch in narrow:
            units += 0.32
        elif ch in wide:
            units += 0.86
        elif ch.isupper() or ch.isdigit():
            units += 0.64
        else:
            units += 0.56
    return units * size * (1.07 if bold else 1.0)


def render_svg(nodes: dict[str, GraphNode], run: RunData | None = None, *,
               title: str | None = None, standalone: bool = True, live: bool = False) -> str:
    """The SVG text for ``nodes``; with ``run``, coloured by how the run went. ``live``:
    each box keeps an empty line of stats that a page fills in as the run goes (the
    flow page on the Dask dashboard)."""
    stats = {name: _stats(name, nodes, run) for name in nodes} if run is not None else {}
    if live:
        stats = {name: [("", "")] for name in nodes}
    sizes = {}
    for name, node in nodes.items():
        lines = [text_width(name, 13, bold=True) + 34, text_width(node.kind, 11) + 26]
        if run is not None:
            lines.append(text_width("".join(t for t, _ in stats[name]), 11) + 26)
        if live:
            lines.append(text_width(LIVE_STATS_WIDTH, 11) + 26)
        w = max(116.0, *lines)
        rows = 1 + bool(node.kind) + (run is not None or live)
        h = 20.0 + 16.0 * rows
        stacked = node.foreach_depth > 0
        # the cards behind stick out right and down; equal room on the left keeps the
        # front card centred where the layout puts the node
        sizes[name] = (w + (4 * STACK if stacked else 0), h + (2 * STACK if stacked else 0))
    placed = layout_graph(nodes, sizes)
    out = []
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="df-graph" '
            f'viewBox="0 0 {placed.width:.0f} {placed.height:.0f}" '
            f'width="{placed.width:.0f}" height="{placed.height:.0f}" role="img" '
            f'overflow="visible" '
            f'aria-label="{escape(title or "flow graph")}">')
    out.append(head)
    if title:
        out.append(f"<title>{escape(title)}</title>")
    out.append(_defs())
    if standalone:
        out.append(f"<style>{GRAPH_CSS}</style>")
    out.append('<g class="df-edges">')
    labels = []
    for edge in placed.edges:
        paths, label = _edge(edge, nodes, placed, run)
        out.extend(paths)
        if label:
            labels.append(label)
    out.append("</g>")
    out.append('<g class="df-labels">' + "".join(labels) + "</g>")
    out.append('<g class="df-nodes">')
    for name, node in nodes.items():
        out.append(_node(node, placed, stats.get(name), run, live))
    out.append("</g></svg>")
    return "".join(out)


def _defs() -> str:
    def arrow(ident: str, colour: str) -> str:  # the same size on thin and thick edges
        return (f'<marker id="{ident}" viewBox="0 0 10 10" refX="9" refY="5" '
                f'markerUnits="userSpaceOnUse" markerWidth="10" markerHeight="10" '
                f'orient="auto-start-reverse">'
                f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>')
    return ("<defs>" + arrow("df-arrow", "#6e7781") + arrow("df-arrow-taken", "#0969da")
            + arrow("df-arrow-skip", "#c7ccd1") + "</defs>")


def _stats(name: str, nodes: dict[str, GraphNode],
           run: RunData | None) -> list[tuple[str, str]]:
    """The third line of a box, as (text, css class) pieces."""
    if run is None:
        return []
    summary = run.steps.get(name)
    if summary is None or not summary.attempts:
        return [("not run", "")]
    tasks = summary.tasks
    # A foreach target whose run stopped early: say how many of its splits ran.
    expected = sum(run.splits_of(n.name) for n in nodes.values()
                   if n.transition == FOREACH and n.out[:1] == [name])
    count = f"{tasks} of {expected}" if expected > tasks else str(tasks)
    plural = "s" if max(tasks, expected) != 1 else ""
    parts: list[tuple[str, str]] = [(f"{count} task{plural}", "")]
    failed = summary.count(FAILED)
    if failed:
        parts.append((f" · {failed} failed", "df-bad"))
    retried = summary.count("retried")
    if retried:
        parts.append((f" · {retried} retried", "df-warn"))
    if summary.cloned:
        parts.append((f" · {summary.cloned} reused", ""))
    unfinished = summary.count(UNFINISHED)
    if unfinished:
        parts.append((f" · {unfinished} unfinished", "df-warn"))
    durations = summary.durations()
    if durations and not failed:
        from .model import format_seconds
        parts.append((f" · {format_seconds(max(durations))}" if tasks == 1 else
                      f" · max {format_seconds(max(durations))}", ""))
    return parts


def _status(name: str, run: RunData | None) -> str:
    if run is None:
        return "st-plain"
    summary = run.steps.get(name)
    if summary is None or not summary.attempts:
        return "st-notrun"
    return _STATUS_CLASS[summary.status]


def _node(node: GraphNode, placed: GraphLayout, stats: list[tuple[str, str]] | None,
          run: RunData | None, live: bool = False) -> str:
    p = placed.nodes[node.name]
    stacked = node.foreach_depth > 0
    w = p.w - (4 * STACK if stacked else 0)
    h = p.h - (2 * STACK if stacked else 0)
    x, y = p.x - w / 2, p.y
    tip = [node.name]
    if node.kind:
        tip.append(node.kind)
    if node.decorators:
        tip.append(" ".join(node.decorators))
    if node.doc:
        tip.append(node.doc)
    if stats and not live:
        tip.append("".join(t for t, _ in stats).strip())
    status = "st-notrun" if live else _status(node.name, run)
    parts = [f'<g class="df-node {status}" data-step="{escape(node.name)}" '
             f'transform="translate({x:.1f},{y:.1f})">',
             f"<title>{escape(chr(10).join(tip))}</title>"]
    if stacked:  # the cards behind: many tasks of this step
        for k in (2, 1):
            parts.append(f'<rect class="df-card" x="{k * STACK}" y="{k * STACK}" '
                         f'width="{w:.1f}" height="{h:.1f}" rx="8"/>')
    parts.append(f'<rect class="df-box" width="{w:.1f}" height="{h:.1f}" rx="8"/>')
    if run is not None or live:
        parts.append(f'<rect class="df-strip" x="4" y="8" width="3" height="{h - 16:.1f}" '
                     f'rx="1.5"/>')
    cx = w / 2
    line = 24.0
    parts.append(f'<text class="df-name" x="{cx:.1f}" y="{line}" text-anchor="middle">'
                 f'{escape(node.name)}</text>')
    if node.kind:
        line += 16
        parts.append(f'<text class="df-kind" x="{cx:.1f}" y="{line}" text-anchor="middle">'
                     f'{escape(node.kind)}</text>')
    if stats:  # live: an empty line for the page to fill
        line += 16
        spans = "".join(f'<tspan class="{c}">{escape(t)}</tspan>' if c else escape(t)
                        for t, c in stats)
        parts.append(f'<text class="df-stats" x="{cx:.1f}" y="{line}" '
                     f'text-anchor="middle">{spans}</text>')
    parts.append("</g>")
    return "".join(parts)


def _curve(points: list[tuple[float, float]]) -> str:
    (x0, y0), rest = points[0], points[1:]
    d = [f"M{x0:.1f},{y0:.1f}"]
    px, py = x0, y0
    for x, y in rest:
        mid = (y - py) / 2
        d.append(f"C{px:.1f},{py + mid:.1f} {x:.1f},{y - mid:.1f} {x:.1f},{y:.1f}")
        px, py = x, y
    return " ".join(d)


def _edge(edge: PlacedEdge, nodes: dict[str, GraphNode], placed: GraphLayout,
          run: RunData | None) -> tuple[list[str], str]:
    source, target = nodes[edge.source], nodes[edge.target]
    state = ""
    if run is not None:
        ran = bool(run.steps.get(edge.source) and run.steps[edge.source].attempts)
        reached = bool(run.steps.get(edge.target) and run.steps[edge.target].attempts)
        if source.transition == SWITCH:
            chosen = run.switch_choices().get(edge.source, set())
            state = "df-taken" if edge.target in chosen else "df-skip"
        else:
            state = "df-ran" if ran and reached else ("df-skip" if not reached else "")
    marker = {"df-taken": "df-arrow-taken", "df-skip": "df-arrow-skip"}.get(state, "df-arrow")
    points = list(edge.points)
    fan_out = source.transition == FOREACH
    closes = nodes.get(target.matching_split or "")
    fan_in = bool(target.is_join and closes is not None and closes.transition == FOREACH
                  and source.foreach_depth > target.foreach_depth)
    paths = []
    if fan_out or fan_in:  # one line to each of the stacked cards, or from them
        end = -1 if fan_out else 0
        for dx in (-FAN, FAN):
            spread = list(points)
            spread[end] = (spread[end][0] + dx, spread[end][1])
            paths.append(f'<path class="df-edge {state}" d="{_curve(spread)}" '
                         f'stroke-opacity="0.6"/>')
    paths.append(f'<path class="df-edge {state}" d="{_curve(points)}" '
                 f'marker-end="url(#{marker})" data-from="{escape(edge.source)}" '
                 f'data-to="{escape(edge.target)}"/>')
    label = ""
    text = ""
    css = state
    if fan_out:
        count = run.splits_of(edge.source) if run is not None else 0
        text = f"foreach {source.foreach_var or ''}".strip() + (f" ×{count}" if count else "")
        css = (state + " df-fan").strip()
    elif source.transition == SWITCH:
        keys = [k for k, v in source.switch_cases.items() if v == edge.target]
        text = " | ".join(repr(k) if not k.isidentifier() else k for k in keys)
    if text:
        (ax, ay), (bx, by) = points[0], points[1]
        width = text_width(text, 11) + 14
        lx, ly = (ax + bx) / 2 - width / 2, (ay + by) / 2 - 9
        if fan_out:  # beside the fan, not on it
            lx = max(ax, bx) + FAN + 6
        label = (f'<g class="df-label {css}" transform="translate({lx:.1f},{ly:.1f})">'
                 f'<rect width="{width:.1f}" height="18" rx="9"/>'
                 f'<text x="{width / 2:.1f}" y="12.5" text-anchor="middle">'
                 f'{escape(text)}</text></g>')
    return paths, label


def render_dot(nodes: dict[str, GraphNode], name: str = "flow") -> str:
    """The graph in Graphviz DOT, for ``show --format dot``."""
    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace('"', '\\"')

    def q(text: str) -> str:
        return f'"{esc(text)}"'

    lines = [f"digraph {q(name)} {{", "  rankdir=TB;",
             '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", '
             'fontname="Helvetica"];', '  edge [fontname="Helvetica", fontsize=10];']
    for node in nodes.values():
        label = esc(node.name) + (r"\n" + esc(node.kind) if node.kind else "")
        extra = ", peripheries=2" if node.foreach_depth > 0 else ""  # many tasks
        lines.append(f'  {q(node.name)} [label="{label}"{extra}];')
    for node in nodes.values():
        for target in node.out:
            attrs = []
            if node.transition == FOREACH:
                attrs.append(f"label={q('foreach ' + (node.foreach_var or ''))}")
                attrs.append("style=bold")
            elif node.transition == SWITCH:
                keys = [k for k, v in node.switch_cases.items() if v == target]
                attrs.append(f"label={q(' | '.join(keys))}")
                attrs.append("style=dashed")
            lines.append(f"  {q(node.name)} -> {q(target)}"
                         + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"
