"""Where each step of a flow graph goes on a page: a small layered (Sugiyama) layout.

Steps sit in rows by their longest distance from ``start`` (so a join is
below every branch it closes); an edge that skips rows goes through
invisible points in the rows between, so it never crosses a step; the order
within a row comes from the flow's own order of ``self.next`` targets, then a
few barycenter sweeps to untangle edges.  Pure functions on plain data: the
graph comes in as :class:`GraphNode` s, positions come out as numbers.

>>> nodes = {"start": GraphNode("start", "linear", ["end"]), "end": GraphNode("end", "end")}
>>> placed = layout_graph(nodes, {"start": (80, 40), "end": (80, 40)})
>>> placed.nodes["start"].y < placed.nodes["end"].y
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The transitions of graph.py, repeated here so this module needs nothing but data.
LINEAR, SPLIT, FOREACH, SWITCH, END = "linear", "split", "foreach", "switch", "end"


@dataclass
class GraphNode:
    """One step as the report draws it."""

    name: str
    transition: str = LINEAR
    out: list[str] = field(default_factory=list)
    is_join: bool = False
    foreach_var: str | None = None
    condition_var: str | None = None
    switch_cases: dict[str, str] = field(default_factory=dict)
    matching_split: str | None = None
    foreach_depth: int = 0
    doc: str = ""
    decorators: list[str] = field(default_factory=list)
    lineno: int | None = None

    @property
    def kind(self) -> str:
        """A few words a reader understands: 'foreach over items', 'join', ..."""
        words = {FOREACH: f"foreach over {self.foreach_var}" if self.foreach_var
                 else "foreach", SPLIT: "branches",
                 SWITCH: f"switch on {self.condition_var}" if self.condition_var
                 else "switch"}.get(self.transition, "")
        if self.name in self.out:  # a recursive switch: the step may run again
            words += " · loop"
        if self.is_join:
            return "join" + (f" · {words}" if words else "")
        return words


def graph_nodes(graph: Any) -> dict[str, GraphNode]:
    """The drawable nodes of a :class:`~daskflow.graph.FlowGraph`, in reading order."""
    return {node.name: GraphNode(
        name=node.name, transition=node.transition, out=list(node.out_funcs),
        is_join=node.is_join, foreach_var=node.foreach_var,
        condition_var=node.condition_var, switch_cases=dict(node.switch_cases),
        matching_split=node.matching_split, foreach_depth=graph.foreach_depth(node.name),
        doc=node.doc, decorators=list(node.decorators), lineno=node.lineno)
        for node in graph.sorted_nodes()}


@dataclass
class Placed:
    name: str
    x: float          # centre
    y: float          # top
    w: float
    h: float
    layer: int
    dummy: bool = False


@dataclass
class PlacedEdge:
    source: str
    target: str
    points: list[tuple[float, float]]   # from the source's bottom to the target's top


@dataclass
class GraphLayout:
    nodes: dict[str, Placed]
    edges: list[PlacedEdge]
    width: float
    height: float


def layout_graph(nodes: dict[str, GraphNode], sizes: dict[str, tuple[float, float]], *,
                 gap_x: float = 36, gap_y: float = 64, margin: float = 24) -> GraphLayout:
    """Place ``nodes`` (sizes ``name -> (width, height)``) top to bottom."""
    layer = _layers(nodes)
    # Split long edges with dummies, one per row in between.
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    chains: dict[tuple[str, str], list[str]] = {}
    for name, node in nodes.items():
        for target in node.out:
            if target not in nodes or target == name:  # a loop is said in its kind
                continue
            chain = [name]
            for between in range(layer[name] + 1, layer[target]):
                dummy = f"\0{name}\0{target}\0{between}"
                layer[dummy] = between
                succ[dummy] = []
                chain.append(dummy)
            chain.append(target)
            for a, b in zip(chain, chain[1:], strict=False):
                succ[a].append(b)
            chains[(name, target)] = chain
    pred: dict[str, list[str]] = {n: [] for n in succ}
    for a, outs in succ.items():
        for b in outs:
            pred[b].append(a)

    rows = _initial_order(nodes, succ, layer)
    _untangle(rows, succ, pred)

    size = {n: sizes.get(n, (0.0, 0.0)) if not n.startswith("\0") else (8.0, 0.0)
            for n in succ}
    row_height = [max((size[n][1] for n in row), default=0.0) for row in rows]
    xs = _assign_x(rows, succ, pred, size, gap_x)
    low = min((xs[n] - size[n][0] / 2 for n in xs), default=0.0)
    placed: dict[str, Placed] = {}
    top = margin
    for index, row in enumerate(rows):
        for name in row:
            w, h = size[name]
            y = top + (row_height[index] - h) / 2
            placed[name] = Placed(name, xs[name] - low + margin, y, w, h, index,
                                  dummy=name.startswith("\0"))
        top += row_height[index] + gap_y
    width = max((p.x + p.w / 2 for p in placed.values()), default=0.0) + margin
    height = top - gap_y + margin
    edges = []
    for (source, target), chain in chains.items():
        points = [(placed[source].x, placed[source].y + placed[source].h)]
        for dummy in chain[1:-1]:
            p = placed[dummy]
            points.append((p.x, p.y + row_height[p.layer] / 2))
        points.append((placed[target].x, placed[target].y))
        edges.append(PlacedEdge(source, target, points))
    return GraphLayout({n: p for n, p in placed.items() if not p.dummy}, edges,
                       width, height)


def _layers(nodes: dict[str, GraphNode]) -> dict[str, int]:
    """Longest path from the roots (a DAG but for a recursive switch's way back to its
    own step, which the graph module allows and this leaves out)."""
    indegree = {n: 0 for n in nodes}
    for name, node in nodes.items():
        for target in node.out:
            if target in indegree and target != name:
                indegree[target] += 1
    layer = {n: 0 for n in nodes}
    ready = [n for n, d in indegree.items() if d == 0]
    while ready:
        name = ready.pop(0)
        for target in nodes[name].out:
            if target not in nodes or target == name:
                continue
            layer[target] = max(layer[target], layer[name] + 1)
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    return layer


def _initial_order(nodes: dict[str, GraphNode], succ: dict[str, list[str]],
                   layer: dict[str, int]) -> list[list[str]]:
    """Rows in depth-first order of the flow's own ``self.next`` targets."""
    depth = max(layer.values(), default=0) + 1
    rows: list[list[str]] = [[] for _ in range(depth)]
    seen: set[str] = set()
    roots = [n for n in nodes if not any(n in succ[m] for m in succ)] or list(nodes)[:1]

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        rows[layer[name]].append(name)
        for target in succ[name]:
            visit(target)

    for root in roots:
        visit(root)
    for name in succ:  # anything unreachable from a root still gets a place
        if name not in seen:
            visit(name)
    return rows


def _untangle(rows: list[list[str]], succ: dict[str, list[str]],
              pred: dict[str, list[str]], sweeps: int = 6) -> None:
    def position() -> dict[str, int]:
        return {n: i for row in rows for i, n in enumerate(row)}

    for sweep in range(sweeps):
        down = sweep % 2 == 0
        order = range(1, len(rows)) if down else range(len(rows) - 2, -1, -1)
        for index in order:
            pos = position()
            neighbours = pred if down else succ
            barycenter = {}
            for name in rows[index]:
                near = [pos[n] for n in neighbours[name] if n in pos]
                barycenter[name] = sum(near) / len(near) if near else pos[name]
            rows[index].sort(key=barycenter.__getitem__)  # stable: ties keep the flow's order


def _assign_x(rows: list[list[str]], succ: dict[str, list[str]],
              pred: dict[str, list[str]], size: dict[str, tuple[float, float]],
              gap: float, rounds: int = 12) -> dict[str, float]:
    xs: dict[str, float] = {}
    for row in rows:  # packed, centred on 0
        total = sum(size[n][0] for n in row) + gap * (len(row) - 1)
        left = -total / 2
        for name in row:
            xs[name] = left + size[name][0] / 2
            left += size[name][0] + gap
    for r in range(rounds):
        down = r % 2 == 0
        order = range(1, len(rows)) if down else range(len(rows) - 2, -1, -1)
        for index in order:
            row = rows[index]
            neighbours = pred if down else succ
            wanted = []
            for name in row:
                near = [xs[n] for n in neighbours[name]]
                wanted.append(sum(near) / len(near) if near else xs[name])
            placed = list(wanted)
            for i in range(1, len(row)):  # keep the order, push apart what overlaps
                least = placed[i - 1] + (size[row[i - 1]][0] + size[row[i]][0]) / 2 + gap
                placed[i] = max(placed[i], least)
            shift = sum(p - w for p, w in zip(placed, wanted, strict=True)) / max(len(row), 1)
            for name, x in zip(row, placed, strict=True):
                xs[name] = x - shift
    _straighten(rows, succ, pred, size, gap, xs)
    return xs


def _straighten(rows: list[list[str]], succ: dict[str, list[str]],
                pred: dict[str, list[str]], size: dict[str, tuple[float, float]],
                gap: float, xs: dict[str, float]) -> None:
    """Put the two ends of a one-to-one edge straight above each other where room allows."""
    def fits(row: list[str], i: int, x: float) -> bool:
        half = size[row[i]][0] / 2
        if i > 0 and xs[row[i - 1]] + size[row[i - 1]][0] / 2 + gap > x - half:
            return False
        return not (i + 1 < len(row)
                    and x + half + gap > xs[row[i + 1]] - size[row[i + 1]][0] / 2)

    for down in (True, False):
        order = range(1, len(rows)) if down else range(len(rows) - 2, -1, -1)
        for index in order:
            row = rows[index]
            for i, name in enumerate(row):
                near = pred[name] if down else succ[name]
                if len(near) != 1:
                    continue
                other = near[0]
                back = succ[other] if down else pred[other]
                if len(back) == 1 and fits(row, i, xs[other]):
                    xs[name] = xs[other]
