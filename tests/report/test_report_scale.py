"""The run report of a wide foreach: aggregated, small, and still exact where it counts.

The run is written through the real store API by ``bench/report_scale.py``'s writer
(2,500 splits: over ``WIDE_STEP``, so the aggregate rows are drawn) and read back
through the client, as the runtime's report writer does.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from daskflow.client import Run
from daskflow.report import collect_run, render_run_report
from daskflow.report.model import MAX_NOTABLE, SLOWEST, WIDE_STEP, Attempt, StepSummary, \
    percentiles
from daskflow.report.timeline import band

BENCH = Path(__file__).parent.parent.parent / "bench" / "report_scale.py"
N = 2500


def _bench():
    spec = importlib.util.spec_from_file_location("report_scale", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def wide_run(tmp_path_factory):
    bench = _bench()
    root = str(tmp_path_factory.mktemp("wide"))
    run_id = bench.write_synthetic_run(root, N, workers=4, retried=10, failed=3)
    return Run(f"{bench.FLOW}/{run_id}", _namespace_check=False, _root=root)


def test_a_wide_step_is_drawn_in_aggregate(wide_run):
    assert N > WIDE_STEP
    data = collect_run(wide_run)
    work = data.steps["fan"]
    assert work.tasks == N and len(work.attempts) == N + 10 and work.wide
    html = render_run_report(wide_run)
    row = re.search(r'<div class="tl-row tl-wide" data-step="fan">.*?</div></div>', html,
                    re.S)
    assert row is not None
    # Bars for the 10 retried and 3 failed attempts and the slowest, not one per attempt.
    bars = row.group(0).count('class="tl-bar')
    assert bars == 13 + SLOWEST
    assert row.group(0).count('class="tl-bar o-failed') == 3
    assert row.group(0).count('class="tl-bar o-retried') == 10
    assert "tl-band-all" in row.group(0) and "tl-band-bad" in row.group(0)
    assert "up to 4 at once; durations p50 " in row.group(0)
    # The page's data lists only what it draws, and every bar points into it.
    data_json = json.loads(re.search(r'id="df-data">(.*?)</script>', html, re.S).group(1))
    assert len(data_json) == 1 + bars  # start's bar too
    indices = sorted(int(i) for i in re.findall(r'data-i="(\d+)"', html))
    assert indices == list(range(len(data_json)))
    slowest = sorted((a for a in work.ran if a.outcome == "ok"), key=lambda a: -a.seconds)
    listed = {d["t"] for d in data_json if d["o"] == "ok" and d["s"] == "fan"}
    assert listed == {a.task_id for a in slowest[:SLOWEST]}
    # The steps table gives percentiles; the failures section the three tracebacks.
    assert re.search(r"<code>fan</code></td><td>2500</td><td>2497</td>.*?p50 .*?p99 .*?max",
                     html)
    assert html.count('class="failure"') == 13
    assert len(html.encode()) < 200_000


def test_the_page_stays_the_same_size_however_wide_the_step():
    def run_of(n: int):
        from daskflow.report.layout import GraphNode
        from daskflow.report.model import RunData

        attempts = [Attempt("fan", str(i), 0, f"F/1/fan/{i}", 100.0 + i * 0.01,
                            100.0 + i * 0.01 + 0.02, "ok") for i in range(n)]
        return RunData(flow="F", run_id="1", status="success", started_at=100.0,
                       finished_at=100.0 + n * 0.01 + 1, user=None, parameters={}, tags=[],
                       system_tags=[], dashboard=None, failure=None, clusters=[],
                       steps={"fan": StepSummary("fan", attempts)},
                       graph={"fan": GraphNode("fan", "end")}, graph_inferred=False,
                       record={})

    from daskflow.report.page import report_html

    small, large = (len(report_html(run_of(n))) for n in (WIDE_STEP + 1, 20 * WIDE_STEP))
    assert abs(large - small) < 2_000  # digits of the counts and times, nothing per task


def test_notable_attempts_are_capped():
    attempts = [Attempt("w", str(i), 0, f"F/1/w/{i}", 0.0, 1.0, "failed")
                for i in range(WIDE_STEP + 5)]
    summary = StepSummary("w", attempts)
    assert len(summary.drawn()) == MAX_NOTABLE and summary.listed() == summary.drawn()
    narrow = StepSummary("w", attempts[:10])
    assert not narrow.wide and narrow.listed() == narrow.attempts


def test_band_counts_how_many_ran_at_once():
    def a(start, stop):
        return Attempt("w", "1", 0, "p", start, stop, "ok")

    # Two tasks over the whole span, one over the second half, one short in bin 0.
    level = band([a(0, 10), a(0, 10), a(5, 10), a(0, 0.5)], 0.0, 10.0, 10.0, bins=10)
    assert level[0] == pytest.approx(2.5)
    assert level[1:5] == pytest.approx([2.0] * 4)
    assert level[5:] == pytest.approx([3.0] * 5)
    unfinished = band([a(2, None)], 0.0, 10.0, 10.0, bins=5)  # runs to the end
    assert unfinished == pytest.approx([0, 1, 1, 1, 1])


def test_percentiles():
    values = [float(i) for i in range(1, 101)]
    assert percentiles(values) == pytest.approx({"p50": 50.5, "p90": 90.1, "p99": 99.01,
                                                 "max": 100.0})
    assert percentiles([0.5]) == {"p50": 0.5, "p90": 0.5, "p99": 0.5, "max": 0.5}


def test_notebook_views_of_a_wide_run_read_listings_not_every_task(wide_run):
    shown = wide_run._repr_html_()
    assert re.search(r"<td>fan</td><td>2500</td><td><span[^>]*>failed</span>", shown)
    assert re.search(r"<td>start</td><td>1</td><td><span[^>]*>ok</span>", shown)
    assert f"2 / {N + 1}" in shown  # steps / tasks (the run stopped after work)
    step = wide_run["fan"]._repr_html_()
    assert "2500 (too many to read here" in step and ">failed<" in step
    assert "1 (1 successful)" in wide_run["start"]._repr_html_()  # a narrow step is read
