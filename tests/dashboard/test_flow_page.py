"""The flow page in a real Chromium, on every kind of scheduler a run uses: the run's local
cluster, a stock ``dask scheduler`` (no daskflow there, its dashboard on https) given by
``--scheduler-address``, and a step's own cluster. The link the run prints opens it; it
updates while the run goes and ends with the run's counts as the client reads them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from daskflow import Flow, namespace

from ..remote.conftest import aws_env, start_stock_cluster, stock_env

pytestmark = pytest.mark.browser

STEPS = ["start", "work", "join", "end"]
COLUMNS = ["queued", "running", "done", "failed", "reused"]


def counts(page: Any, key: str) -> dict[str, dict[str, int]]:
    """The steps table of run ``key`` as the page shows it: step -> column -> number."""
    return page.evaluate("""key => {
        const card = [...document.querySelectorAll("article[data-run]")]
            .find(a => a.getAttribute("data-run") === key);
        if (!card) return null;
        const out = {};
        card.querySelectorAll("tr[data-step]").forEach(row => {
            const cells = {};
            row.querySelectorAll("td[data-col]").forEach(td => {
                cells[td.getAttribute("data-col")] = td.textContent; });
            out[row.getAttribute("data-step")] = cells;
        });
        return out;
    }""", key)


def numbers(shown: dict[str, dict[str, str]] | None, step: str) -> dict[str, int]:
    row = (shown or {}).get(step, {})
    return {c: int(row[c]) for c in COLUMNS if row.get(c, "").isdigit()}


def status(page: Any, key: str) -> str | None:
    return page.evaluate("""key => {
        const card = [...document.querySelectorAll("article[data-run]")]
            .find(a => a.getAttribute("data-run") === key);
        return card ? card.querySelector(".badge").textContent : null; }""", key)


def watch_done(page: Any, key: str, step: str, running: Any) -> list[int]:
    """The done count of ``step`` as the page shows it, read until the run ends."""
    seen: list[int] = []
    while running.running():
        done = numbers(counts(page, key), step).get("done")
        if done is not None and (not seen or seen[-1] != done):
            seen.append(done)
        page.wait_for_timeout(100)
    return seen


def wait_watching(page: Any, running: Any) -> int:
    """Wait for the run to end with the page still served: the tab's requests go through
    this process (it keeps the tab to its origin), so it must not block meanwhile."""
    while running.running():
        page.wait_for_timeout(100)
    return running.wait()


def the_runs_counts(root: Path | str, run_id: str, flow: str = "PageFlow") -> dict[str, int]:
    """Tasks of each step that finished, read back with the client API."""
    namespace(None)
    run = Flow(flow, _root=str(root))[run_id]
    return {step.id: sum(1 for task in step if task.successful) for step in run}


def assert_quiet(tab: Any) -> None:
    """No error but the closed scheduler's refusals, nothing fetched from elsewhere."""
    assert [e for e in tab.errors if "ERR_CONNECTION_REFUSED" not in e] == []
    assert tab.elsewhere == []


def test_the_printed_link_opens_the_flow_page_live_until_the_runs_last_counts(
        start_flow, dashboard_tab, tmp_path):
    running = start_flow("page_flow.py", "run")           # 40 splits of 0.5 s
    link = running.cluster_link("default")
    assert link.startswith("http://127.0.0.1:") and link.endswith("/daskflow")
    tab = dashboard_tab(link)
    page = tab.page
    page.wait_for_selector("article[data-run] svg .df-node[data-step='work']")
    key = page.get_attribute("article[data-run]", "data-run")
    flow, run_id = key.split("/")
    assert flow == "PageFlow" and run_id in running.output

    shot = None
    seen: list[int] = []
    while running.running():
        done = numbers(counts(page, key), "work").get("done")
        if done is not None and (not seen or seen[-1] != done):
            seen.append(done)
        if shot is None and done is not None and done >= 12:
            shot = tmp_path / "flow-page.png"
            page.locator("article").first.screenshot(path=str(shot))
        page.wait_for_timeout(100)
    assert running.wait() == 0, running.output
    assert seen == sorted(seen) and len([d for d in seen if 0 < d < 40]) >= 3, seen

    # what it said last, before its cluster closed: the run as it ended
    page.wait_for_selector("#df-live.gone", timeout=15_000)
    assert status(page, key) == "succeeded"
    shown = counts(page, key)
    stored = the_runs_counts(tmp_path / ".daskflow", run_id)
    assert stored == {"start": 1, "work": 40, "join": 1, "end": 1}
    for step in STEPS:
        assert numbers(shown, step) == {"queued": 0, "running": 0, "done": stored[step],
                                        "failed": 0, "reused": 0}, (step, shown)
    assert page.text_content(f"article[data-run='{key}'] .df-node[data-step='work'] "
                             ".df-stats") == "40/40 done"
    assert_quiet(tab)
    docs = os.environ.get("DASKFLOW_DOCS_SCREENSHOTS")
    if docs and shot is not None:  # the guide's picture, made by this test
        shutil.copy(shot, Path(docs) / "flow-page.png")


def test_dasks_own_pages_link_to_the_flow_page(scheduler, start_flow, dashboard_tab):
    running = start_flow("page_flow.py", "run", "--scheduler-address", scheduler,
                         "--width", "4", "--nap", "0.1")
    link = running.cluster_link("default")
    assert running.wait() == 0, running.output
    tab = dashboard_tab(link.replace("/daskflow", "/status"))
    tab.page.click('.navbar a[href="daskflow"]', timeout=60_000)
    tab.page.wait_for_url(link)
    tab.page.wait_for_selector("article[data-run] .badge[data-status='succeeded']")
    assert tab.elsewhere == []


def test_the_flow_page_on_a_stock_scheduler_with_https_shows_each_run_and_its_failure(
        stock_python, moto_server, s3_root, tmp_path_factory, start_flow, dashboard_tab):
    from daskflow.clusters.security import make_credentials

    files = tmp_path_factory.mktemp("stock-tls")
    cert, key = make_credentials()
    (files / "cert.pem").write_text(cert)
    (files / "key.pem").write_text(key)
    https = {"DASK_DISTRIBUTED__SCHEDULER__DASHBOARD__TLS__CERT": str(files / "cert.pem"),
             "DASK_DISTRIBUTED__SCHEDULER__DASHBOARD__TLS__KEY": str(files / "key.pem")}
    cluster = start_stock_cluster(stock_python, tmp_path_factory.mktemp("stock-work"), files,
                                  stock_env({**aws_env(moto_server), **https}))
    try:
        where = ["--datastore-root", s3_root]
        on = ["--scheduler-address", cluster.address]
        failing = start_flow("page_flow.py", *where, "run", *on, "--width", "6", "--nap",
                             "0.2", "--fail", "3", env=https)
        link = failing.cluster_link("default")
        assert link.startswith("https://127.0.0.1:") and link.endswith("/daskflow")
        assert failing.wait() == 1, failing.output
        tab = dashboard_tab(link)
        page = tab.page
        page.wait_for_selector("article[data-run] .failure")

        fine = start_flow("page_flow.py", *where, "run", *on, "--width", "16", "--nap", "0.5",
                          env=https)
        failed_key = f"PageFlow/{failing.run_id()}"
        fine_key = f"PageFlow/{fine.run_id()}"
        page.wait_for_selector(f"article[data-run='{fine_key}']", timeout=120_000)
        # the running run first, then the latest
        assert page.eval_on_selector_all("article[data-run]", "cards => cards.map("
                                         "c => c.dataset.run)") == [fine_key, failed_key]
        seen = watch_done(page, fine_key, "work", fine)
        assert wait_watching(page, fine) == 0, fine.output
        assert seen == sorted(seen) and len([d for d in seen if 0 < d < 16]) >= 2, seen

        # the scheduler outlives the runs: the page keeps both, as they ended
        page.wait_for_function(
            "key => [...document.querySelectorAll('article[data-run]')].some(a => "
            "a.dataset.run === key && a.querySelector('.badge').textContent === 'succeeded')",
            arg=fine_key, timeout=30_000)
        assert status(page, failed_key) == "failed"
        stored = the_runs_counts(s3_root, fine_key.split("/")[1])
        shown = counts(page, fine_key)
        for step in STEPS:
            assert numbers(shown, step)["done"] == stored[step], (step, shown)

        failed_id = failed_key.split("/")[1]
        namespace(None)
        broken = next(t for t in Flow("PageFlow", _root=s3_root)[failed_id]["work"]
                      if not t.successful)
        card = page.locator(f"article[data-run='{failed_key}']")
        assert card.locator(".failure .what").text_content() == \
            "ValueError: split 3 <refuses> & stops"         # shown as text, not markup
        assert page.query_selector("refuses") is None
        assert card.locator(".failure .logs-command").text_content() == \
            "python page_flow.py logs " + "/".join([failed_id, "work", broken.id])
        assert numbers(counts(page, failed_key), "work")["failed"] == 1
        assert_quiet(tab)
    finally:
        for process in reversed(list(cluster.processes)):
            cluster.stop(process)


def test_a_step_cluster_serves_the_flow_page_of_its_run(start_flow, dashboard_tab, tmp_path):
    running = start_flow("page_resources_flow.py", "run", "--nap", "6")
    link = running.cluster_link("step-1")
    assert link.endswith("/daskflow")
    tab = dashboard_tab(link)
    page = tab.page
    page.wait_for_selector("article[data-run] tr[data-cluster='step-1']")
    key = page.get_attribute("article[data-run]", "data-run")
    # the step cluster's own scheduler counts the step's task running
    page.wait_for_function(
        "() => { const td = document.querySelector(\"tr[data-step='big'] td[data-col='running']\");"
        " return td && td.textContent === '1'; }", timeout=60_000)
    cluster_row = page.locator("tr[data-cluster='step-1'] td").all_text_contents()
    assert cluster_row[1] == "big" and cluster_row[2] == "local"
    assert wait_watching(page, running) == 0, running.output
    # its last word before it closed: the step done
    page.wait_for_selector("#df-live.gone", timeout=15_000)
    assert numbers(counts(page, key), "big")["done"] == 1, (counts(page, key), running.output)
    assert_quiet(tab)
