"""The report's data and drawings, without a browser: layout, SVG, DOT, run data."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from daskflow.report import collect_run, render_graph_dot, render_graph_svg
from daskflow.report.layout import GraphNode, graph_nodes, layout_graph
from daskflow.report.model import FAILED, OK, UNFINISHED
from daskflow.report.timeline import pack, tick_label
from daskflow.runtime import load_flow

FLOWS = Path(__file__).parent.parent / "flows"
SVG = "{http://www.w3.org/2000/svg}"


def graph_of(flow: str):
    return load_flow(FLOWS / flow)._flow_graph()


def overlaps(a, b) -> bool:
    return (abs(a.x - b.x) * 2 < a.w + b.w) and (a.y < b.y + b.h and b.y < a.y + a.h)


def test_layout_rows_go_down_and_boxes_never_overlap():
    for flow in ("report_demo.py", "nested_foreach.py", "switch.py", "branches.py"):
        nodes = graph_nodes(graph_of(flow))
        placed = layout_graph(nodes, {n: (100 + 8 * len(n), 50) for n in nodes})
        boxes = list(placed.nodes.values())
        assert len(boxes) == len(nodes)
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                assert not overlaps(a, b), (flow, a, b)
        for edge in placed.edges:  # every edge runs from a box's bottom down to the next
            ys = [y for _, y in edge.points]
            assert ys == sorted(ys), (flow, edge)
        assert placed.nodes["start"].y < placed.nodes["end"].y


def test_long_edges_bend_around_the_steps_they_skip():
    # validate -> join skips the rows of train and collect.
    nodes = graph_nodes(graph_of("report_demo.py"))
    placed = layout_graph(nodes, {n: (120, 50) for n in nodes})
    edge = next(e for e in placed.edges if (e.source, e.target) == ("validate", "join"))
    assert len(edge.points) == 4  # through one point in each skipped row
    for x, y in edge.points[1:-1]:
        for box in placed.nodes.values():
            inside = abs(box.x - x) * 2 < box.w and box.y <= y <= box.y + box.h
            assert not inside, (box.name, x, y)


def test_graph_svg_is_valid_and_marks_foreach_and_switch():
    svg = render_graph_svg(graph_of("report_demo.py"))
    root = ET.fromstring(svg.split("\n", 1)[1])
    nodes = [g for g in root.iter(f"{SVG}g") if "df-node" in g.get("class", "").split()]
    assert [g.get("data-step") for g in nodes] == [
        "start", "prepare", "validate", "train", "collect", "join", "publish", "retrain",
        "end"]
    train = next(g for g in nodes if g.get("data-step") == "train")
    assert len([r for r in train.iter(f"{SVG}rect") if r.get("class") == "df-card"]) == 2
    text = "".join(root.itertext())
    assert "foreach items" in text and "good" in text and "poor" in text
    assert "switch on quality" in text


def test_graph_dot():
    dot = render_graph_dot(graph_of("report_demo.py"))
    assert dot.startswith('digraph "ReportDemoFlow" {')
    assert '"prepare" -> "train" [label="foreach items", style=bold];' in dot
    assert '"join" -> "retrain" [label="poor", style=dashed];' in dot
    assert dot.count("->") == 10


def test_timeline_packs_parallel_tasks_into_few_lanes():
    from daskflow.report.model import Attempt

    # 1,000 tasks run 4 at a time, each 1s: 4 lanes, none overlapping.
    attempts = [Attempt("s", str(i), 0, f"F/1/s/{i}", float(i // 4), float(i // 4) + 1.0, OK)
                for i in range(1000)]
    lanes = pack(attempts, end=300.0)
    assert lanes.count == 4
    last_end: dict[int, float] = {}
    for a, lane in zip(lanes.attempts, lanes.lane, strict=True):
        assert last_end.get(lane, 0.0) <= a.started_at
        last_end[lane] = a.finished_at
    assert tick_label(90) == "1m 30s" and tick_label(7200) == "2h"


def test_collect_run_reads_outcomes_and_infers_the_graph(demo_failed):
    data = collect_run(demo_failed.run, demo_failed.graph)
    assert data.status == "failed" and not data.graph_inferred
    train = data.steps["train"]
    assert train.count(FAILED) == 1
    assert train.count(OK) + train.count(FAILED) + train.count(UNFINISHED) == len(
        train.attempts)
    failed = next(a for a in train.attempts if a.outcome == FAILED)
    assert failed.error["type"] == "ValueError" and "cannot be trained" in \
        failed.error["traceback"]
    assert failed.index == 1
    assert data.parameters["fail"] == "1"
    assert not data.steps["end"].attempts

    # Without the flow's source: rebuilt from what the tasks recorded.
    guessed = collect_run(demo_failed.run)
    assert guessed.graph_inferred
    assert guessed.graph["start"].out == ["prepare", "validate"]
    assert guessed.graph["prepare"].transition == "foreach"
    assert guessed.graph["prepare"].out == ["train"]


def test_inferred_graph_of_a_successful_run(demo_ok):
    data = collect_run(demo_ok.run)
    graph = data.graph
    assert set(graph) == {"start", "prepare", "validate", "train", "collect", "join",
                          "publish", "end"}
    assert graph["join"].transition == "switch" and graph["join"].is_join
    assert graph["collect"].is_join
    assert data.switch_choices() == {"join": {"publish"}}
    assert data.splits_of("prepare") == 5


def test_graph_of_a_flow_changed_since_the_run_is_rebuilt(demo_ok):
    other = GraphNode("start", "linear", ["end"]), GraphNode("end", "end")
    data = collect_run(demo_ok.run, {n.name: n for n in other})
    assert data.graph_inferred and "train" in data.graph


def test_resumed_run_shows_reused_tasks_apart(demo_failed, tmp_path):
    """Tasks a resumed run reused ran in the origin run: not drawn in this run's time."""
    import os
    import shutil
    import subprocess
    import sys

    from daskflow.client import Flow, namespace
    from daskflow.report import render_run_report

    shutil.copytree(demo_failed.cwd / ".daskflow", tmp_path / ".daskflow")
    env = dict(os.environ, REPORT_DEMO_FIXED="1")  # "fix the bug", then resume
    result = subprocess.run([sys.executable, str(FLOWS / "report_demo.py"), "resume"],
                            cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    namespace(None)
    run = Flow("ReportDemoFlow", _root=str(tmp_path / ".daskflow")).latest_run
    data = collect_run(run, demo_failed.graph)
    assert data.steps["start"].cloned == 1 and not data.steps["start"].ran
    train = data.steps["train"]
    assert train.cloned >= 1 and train.ran  # the failed split ran again
    html = render_run_report(run, graph=demo_failed.graph)
    assert html.count('class="tl-bar') == sum(len(s.ran) for s in data.steps.values())
    assert f"resumed from</span><b>run {demo_failed.run.id}" in html
    assert "reused from run ReportDemoFlow/" in html
