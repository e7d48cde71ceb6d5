"""Two runs side by side and the index of a flow's runs, opened in a real headless Chromium:
the comparison names exactly what differs (one parameter, one changed file, and the
artifacts those change), and the index lists the runs with their status and reports."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from daskflow import Flow, namespace
from daskflow.report import write_comparison, write_run_index

pytestmark = pytest.mark.browser

PROJECT = Path(__file__).parent.parent / "flows" / "compare"   # a flow and its helper module


def _run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, str(project / "compare_flow.py"), *args],
                            cwd=project, capture_output=True, text=True, timeout=240,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, str, str]:
    """Runs of compare_flow.py with --alpha 1 and 2, its helper file changed between."""
    project = tmp_path_factory.mktemp("compare")
    for name in ("compare_flow.py", "compare_helper.py"):
        shutil.copy(PROJECT / name, project / name)
    _run(project, "run", "--alpha", "1.0")
    helper = project / "compare_helper.py"
    helper.write_text(helper.read_text().replace("<b>first</b>", "<b>second</b>"))
    _run(project, "run", "--alpha", "2.0")
    namespace(None)
    newer, older = list(Flow("CompareFlow", _root=str(project / ".daskflow")))[:2]
    return project, older.id, newer.id


def rows(page, table: str) -> list[str]:
    return page.eval_on_selector_all(f"#{table} tr.diff", "rows => rows.map(r => r.dataset.name)")


def test_the_comparison_names_exactly_what_differs(two_runs, tab):
    project, a, b = two_runs
    result = _run(project, "report", "--compare", a, b)
    path = project / ".daskflow" / "CompareFlow" / "_compare" / f"{a}-vs-{b}.html"
    assert f"side by side: {path}" in result.stdout
    page = tab.open(path)
    assert rows(page, "df-parameters") == ["alpha"]
    assert page.text_content("#df-parameters tr.diff td.a") == "1.0"
    assert page.text_content("#df-parameters tr.diff td.b") == "2.0"
    assert rows(page, "df-files") == ["compare_helper.py"]
    # what the parameter and the file change, each once, where it first differs
    artifacts = page.eval_on_selector_all(
        "#df-artifacts tr.diff", "rows => rows.map(r => [r.dataset.name, "
        "r.querySelector('td code').textContent])")
    assert sorted(artifacts) == [["note", "end"], ["scaled", "join"], ["table", "join"]]
    note = page.locator("#df-artifacts tr[data-name='note']")
    assert note.locator("td.a").text_content().startswith("'<b>first</b> & plain'")
    assert page.query_selector("#df-artifacts b") is None        # shown as text
    table = page.locator("#df-artifacts tr[data-name='table'] td.b")
    assert "DataFrame, 2 rows x 2 columns" in table.text_content()
    assert "alpha: double, k:" in table.text_content() and "sha256 " in table.text_content()
    assert page.text_content("#df-summary").startswith("5 differences: 1 parameter, "
                                                       "1 file, 3 artifacts")
    steps = page.eval_on_selector_all("#df-steps tr[data-step]", "r => r.map(x => x.dataset.step)")
    assert steps == ["start", "work", "join", "end"]
    assert page.text_content("#df-steps tr[data-step='work'] td") == "3"
    # each run's report, kept with it, is a link away
    page.click("#runs a >> nth=0")
    page.wait_for_load_state("load")
    assert page.url.endswith(f"/CompareFlow/{a}/_report.html")
    assert tab.errors == [] and tab.external_requests() == []


def test_the_same_run_twice_has_no_difference_and_the_client_writes_it_too(two_runs, tab,
                                                                           tmp_path):
    project, a, _ = two_runs
    namespace(None)
    run = Flow("CompareFlow", _root=str(project / ".daskflow"))[a]
    path = write_comparison(run, run, tmp_path / "same.html")
    page = tab.open(path)
    assert page.text_content("#df-summary").startswith("0 differences")
    assert page.query_selector("tr.diff") is None


def test_the_index_lists_the_latest_runs_with_their_status_and_reports(two_runs, tab):
    project, a, b = two_runs
    result = _run(project, "report", "--index")
    path = project / ".daskflow" / "CompareFlow" / "_index.html"
    assert f"Latest runs of CompareFlow: {path}" in result.stdout
    page = tab.open(path)
    listed = page.eval_on_selector_all("#df-runs tr[data-run]",
                                       "rows => rows.map(r => r.dataset.run)")
    assert listed == [b, a]                                      # newest first
    assert page.text_content(f"tr[data-run='{b}'] .st") == "success"
    page.click(f"tr[data-run='{a}'] a")
    page.wait_for_load_state("load")
    assert page.url.endswith(f"/CompareFlow/{a}/_report.html")
    assert tab.errors == [] and tab.external_requests() == []
    namespace(None)
    elsewhere = write_run_index(Flow("CompareFlow", _root=str(project / ".daskflow")),
                                project / "runs.html", limit=1)
    assert Path(elsewhere).read_text().count("<tr data-run=") == 1
