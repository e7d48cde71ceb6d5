"""The run report and a Dask performance report, opened in a real headless Chromium.

Each test looks at what a person would see: the graph's boxes, the timeline's
bars, the failed task in red, the parameters; and that the page neither
errors nor fetches anything from the network (it must open offline).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daskflow.report import (REPORT_NAME, render_graph_html, render_graph_svg,
                             write_run_report)

from .conftest import DemoRun

pytestmark = pytest.mark.browser

STEPS = ["start", "prepare", "validate", "train", "collect", "join", "publish", "retrain",
         "end"]


def open_report(tab, demo, tmp_path: Path, **kwargs):
    path = write_run_report(demo.run, tmp_path / "report.html", graph=demo.graph, **kwargs)
    return tab.open(path)


def test_successful_run(tab, demo_ok, tmp_path):
    page = open_report(tab, demo_ok, tmp_path)

    # The graph: one box per step, in the flow's order of reading.
    nodes = page.locator("svg.df-graph .df-node")
    assert sorted(nodes.evaluate_all("els => els.map(e => e.dataset.step)")) == sorted(STEPS)
    for step in STEPS:
        assert page.locator(f'.df-node[data-step="{step}"]').is_visible()
    # The switch chose "publish" (best score > 1): that edge is highlighted, the other
    # branch is drawn as not run.
    assert "df-taken" in page.locator(
        'path[data-from="join"][data-to="publish"]').get_attribute("class")
    assert "df-skip" in page.locator(
        'path[data-from="join"][data-to="retrain"]').get_attribute("class")
    assert "st-notrun" in page.locator('.df-node[data-step="retrain"]').get_attribute("class")
    assert "st-ok" in page.locator('.df-node[data-step="train"]').get_attribute("class")
    assert "foreach items ×5" in page.locator("svg.df-graph").text_content()
    assert "5 tasks" in page.locator('.df-node[data-step="train"]').text_content()

    # The timeline: a visible bar for every task attempt the client lists.
    attempts = demo_ok.attempts()
    bars = page.locator(".tl-bar")
    assert bars.count() == len(attempts) == 12
    assert page.locator(".tl-bar.o-ok").count() == len(attempts)
    widths = bars.evaluate_all("els => els.map(e => e.getBoundingClientRect().width)")
    assert min(widths) >= 2
    data = json.loads(page.locator("#df-data").inner_text())
    assert sorted((d["s"], d["t"], d["a"]) for d in data) == sorted(attempts)
    assert page.locator('.tl-row[data-step="train"] .tl-bar').count() == 5

    # Parameters, tags, status.
    params = page.locator("#df-parameters").inner_text()
    for name, value in (("width", "5"), ("nap", "0.1"), ("fail", "-1")):
        assert name in params and value in params
    assert "nightly" in page.locator("#tags").inner_text()
    assert page.locator("#df-status").inner_text().lower() == "success"
    assert page.locator("#failures").count() == 0
    assert tab.errors == [] and tab.warnings == []
    assert tab.external_requests() == []


PAYLOADS = ["<!--<script", "<!--<script> x", "</script><script>document.title='pwned'</script>",
            "<img src=x onerror=\"document.title='pwned'\">", "]]>&amp;<b>bold</b>\u2028"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_hostile_error_text_is_shown_as_text(tab, tmp_path, payload):
    demo = DemoRun(tmp_path, "--width", "2", "--nap", "0", "--fail", "1", "--message",
                   payload)
    assert demo.result.returncode == 1
    page = open_report(tab, demo, tmp_path)
    assert page.locator("#df-status").inner_text().lower() == "failed"
    assert page.title() != "pwned"
    red = page.locator(".tl-bar.o-failed")
    red.click()  # still interactive
    detail = page.locator("#df-detail")
    assert detail.is_visible() and payload in detail.inner_text()
    assert page.locator("#df-detail b").count() == 0  # text, not markup
    assert not tab.errors


def test_failed_foreach_split(tab, demo_failed, tmp_path):
    page = open_report(tab, demo_failed, tmp_path)
    failed_task = next(t for t in demo_failed.run["train"] if not t.successful)

    assert page.locator("#df-status").inner_text().lower() == "failed"
    banner = page.locator(".banner")
    assert banner.is_visible() and failed_task.pathspec in banner.inner_text()
    # The foreach step's box is red and says one task failed; what follows did not run.
    train = page.locator('.df-node[data-step="train"]')
    assert "st-failed" in train.get_attribute("class")
    assert "1 failed" in train.text_content()
    for step in ("collect", "join", "publish", "end"):
        assert "st-notrun" in page.locator(f'.df-node[data-step="{step}"]').get_attribute(
            "class")
    # Its bar is red, and the other bars are not.
    red = page.locator(".tl-bar.o-failed")
    assert red.count() == 1 and red.is_visible()
    colour = red.evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(207, 34, 46)"
    assert "rgb(207, 34, 46)" not in page.locator(".tl-bar.o-ok").evaluate_all(
        "els => els.map(e => getComputedStyle(e).backgroundColor)")
    # Clicking it shows the task, its error and a link to the traceback.
    red.click()
    detail = page.locator("#df-detail")
    assert detail.is_visible()
    assert failed_task.pathspec in detail.inner_text()
    assert "ValueError: split 1 cannot be trained" in detail.inner_text()
    detail.get_by_text("show").click()
    traceback = page.locator("details.failure pre")
    assert traceback.is_visible()
    assert 'raise ValueError(self.message or f"split {self.input} cannot be trained")' in \
        traceback.inner_text()
    assert "report_demo.py" in traceback.inner_text()
    assert tab.errors == [] and tab.warnings == []
    assert tab.external_requests() == []


def test_graph_click_highlights_timeline_row(tab, demo_ok, tmp_path):
    page = open_report(tab, demo_ok, tmp_path)
    page.locator('.df-node[data-step="train"]').click()
    assert "df-selected" in page.locator('.tl-row[data-step="train"]').get_attribute("class")
    page.locator("#df-zoom").fill("4")
    inner = page.locator(".tl-inner").bounding_box()
    outer = page.locator(".tl").bounding_box()
    assert inner["width"] > 3 * outer["width"]  # zoomed in: the timeline scrolls sideways
    assert tab.errors == []


def test_report_kept_with_the_run(demo_ok):
    path = write_run_report(demo_ok.run)
    assert Path(path).name == REPORT_NAME
    assert Path(path).parent.name == demo_ok.run.id
    assert sorted(s.id for s in demo_ok.run) == sorted(s for s in STEPS if s != "retrain")


def test_clusters_and_performance_report_links(tab, demo_ok, tmp_path):
    """What the runtime records for clusters and per-task performance reports is shown,
    and a link opens the Dask report it points to, offline."""
    import shutil

    from daskflow.client import Run

    root = tmp_path / "store"
    shutil.copytree(demo_ok.cwd / ".daskflow", root)
    run_dir = root / "ReportDemoFlow" / demo_ok.run.id
    record = json.loads((run_dir / "_run.json").read_text())
    t0, t1 = record["started_at"], record["finished_at"]
    record["clusters"] = [
        {"name": "default", "description": "local, 2 workers", "started_at": t0,
         "stopped_at": t1, "dashboard": "http://127.0.0.1:8787/status"},
        {"name": "train-big", "description": "local, 1 worker x 2 threads, 4 GiB",
         "started_at": t0 + (t1 - t0) / 3, "stopped_at": t0 + 2 * (t1 - t0) / 3,
         "dashboard": None, "step": "train"}]
    (run_dir / "_run.json").write_text(json.dumps(record))
    task_dir = next((run_dir / "train").iterdir())
    done = json.loads((task_dir / "0.done.json").read_text())
    done["performance_report"] = f"train/{task_dir.name}/0.performance.html"
    done["cluster"] = "train-big"
    (task_dir / "0.done.json").write_text(json.dumps(done))
    (task_dir / "0.performance.html").write_text(_performance_report_html(tmp_path))

    run = Run(demo_ok.run.pathspec, _namespace_check=False, _root=str(root))
    page = tab.open(write_run_report(run, graph=demo_ok.graph))
    lanes = page.locator(".tl-cluster")
    assert lanes.count() == 2
    assert "train-big" in lanes.nth(1).inner_text()
    clusters = page.locator("#clusters").inner_text()
    assert "train-big" in clusters and "local, 1 worker x 2 threads, 4 GiB" in clusters
    assert "http://127.0.0.1:8787/status" in clusters
    link = page.locator("#performance a")
    assert link.count() == 1
    assert link.get_attribute("href") == done["performance_report"]
    link.click()
    page.wait_for_load_state("load")
    assert page.url.endswith("0.performance.html")
    _check_bokeh_rendered(page)

    # Written elsewhere, the report still links to the run's performance report.
    elsewhere = write_run_report(run, tmp_path / "shared" / "report.html", graph=demo_ok.graph)
    page = tab.open(elsewhere)
    page.locator("#performance a").click()
    page.wait_for_load_state("load")
    assert page.url == (task_dir / "0.performance.html").resolve().as_uri()
    _check_bokeh_rendered(page)
    assert tab.errors == []  # Bokeh warns about plots without data: not an error
    assert tab.external_requests() == []


def test_performance_report_renders_offline(tab, tmp_path):
    path = tmp_path / "dask-report.html"
    path.write_text(_performance_report_html(tmp_path))
    page = tab.open(path)
    _check_bokeh_rendered(page)
    assert tab.errors == []
    assert tab.external_requests() == []


def test_show_graph_as_html_and_svg(tab, demo_ok, tmp_path):
    html = tmp_path / "graph.html"
    html.write_text(render_graph_html(demo_ok.graph))
    page = tab.open(html)
    assert page.locator(".df-node").count() == len(STEPS)
    assert "switch on quality" in page.locator("#steps").inner_text()
    svg = tmp_path / "graph.svg"
    svg.write_text(render_graph_svg(demo_ok.graph))
    page = tab.open(svg)
    assert page.locator(".df-node").count() == len(STEPS)
    box = page.locator("svg").bounding_box()
    assert box["width"] > 200 and box["height"] > 400
    assert tab.errors == []


def _performance_report_html(folder: Path) -> str:
    """A Dask performance report of a small computation, with Bokeh inlined (mode="inline")
    so that it opens offline; the default mode loads BokehJS from a CDN."""
    import dask.array as da
    from distributed import Client, LocalCluster, performance_report

    target = folder / "perf-source.html"
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster):
        with performance_report(filename=str(target), mode="inline"):
            da.random.random((1000, 1000), chunks=250).sum().compute()
    return target.read_text()


def _check_bokeh_rendered(page) -> None:
    assert "Dask Performance Report" in page.title()
    page.wait_for_function(
        "() => window.Bokeh && Bokeh.documents.length > 0 "
        "&& Bokeh.documents[0].roots().length > 0", timeout=20000)
    assert page.get_by_text("Duration:").first.is_visible()  # the summary tab
    page.get_by_text("Task Stream", exact=True).first.click()  # Bokeh's tabs
    page.wait_for_timeout(300)
    # Bokeh draws into canvases inside its components' shadow roots: count the shown ones.
    canvases = page.evaluate("""() => {
        let n = 0;
        const walk = (root) => root.querySelectorAll('*').forEach(e => {
            if (e.tagName === 'CANVAS' && e.width > 0 && e.getBoundingClientRect().width > 0) {
                n += 1;
            }
            if (e.shadowRoot) { walk(e.shadowRoot); }
        });
        walk(document);
        return n;
    }""")
    assert canvases > 0


def test_a_thousand_tasks_stay_readable(tab, demo_wide, tmp_path):
    path = write_run_report(demo_wide.run, tmp_path / "wide.html", graph=demo_wide.graph)
    assert Path(path).stat().st_size < 2_000_000
    page = tab.open(path)
    assert page.locator(".df-node").count() == len(STEPS)  # one box per step, not per task
    assert "1000 tasks" in page.locator('.df-node[data-step="train"]').text_content()
    assert page.locator(".tl-bar").count() == len(demo_wide.attempts()) == 1007
    # The 1,000 tasks ran a few at a time: they pack into a few lanes, not 1,000 rows.
    row = page.locator('.tl-row[data-step="train"]').bounding_box()
    assert row["height"] < 200
    assert page.locator(".tl").bounding_box()["height"] < 600
    assert tab.errors == [] and tab.warnings == []
