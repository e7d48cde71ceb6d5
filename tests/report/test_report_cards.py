"""A task's cards in the run report's task panel, opened in a real headless Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest

from daskflow.report import write_run_report

from .conftest import latest_run, run_flow_file

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def card_run(tmp_path_factory: pytest.TempPathFactory):
    cwd = tmp_path_factory.mktemp("card_report")
    result = run_flow_file("card_flow.py", "run", cwd=cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    return latest_run(cwd, "CardFlow")


def test_cards_in_the_task_panel(tab, card_run, tmp_path: Path):
    from daskflow.cards import get_cards

    page = tab.open(write_run_report(card_run, tmp_path / "report.html"))
    page.locator('.tl-row[data-step="train"] .tl-bar').click()
    detail = page.locator("#df-detail")
    assert detail.is_visible()
    frames = detail.locator(".df-card iframe")
    assert frames.count() == 2
    assert sorted(detail.locator(".df-card h4").all_inner_texts()) == [
        "card plots (blank) open", "card summary (blank) open"]
    # Each card is its own page in a frame that may run nothing.
    assert frames.evaluate_all("els => els.map(e => e.getAttribute('sandbox'))") == ["", ""]
    summary = page.frame_locator('.df-card iframe[title^="card summary"]')
    heading = summary.locator("h1", has_text="Training")
    assert heading.inner_text() == "Training <script>alert('x')</script>"  # text, not markup
    assert summary.locator("table.df-table th").first.inner_text() == "epoch"
    plots = page.frame_locator('.df-card iframe[title^="card plots"]')
    image = plots.locator("img")
    assert image.get_attribute("alt") == "a red pixel"
    assert image.evaluate("e => e.complete && e.naturalWidth") == 1  # the inline PNG loaded
    assert plots.locator("progress").evaluate("e => e.value") == 10
    # The "open" link points at the card's page in the run's folder.
    task = card_run["train"].task
    href = detail.locator(".df-card h4 a").first.get_attribute("href")
    assert (tmp_path / href).resolve() == Path(get_cards(task)[0].path).resolve()
    assert tab.errors == [] and tab.external_requests() == []


def test_each_task_shows_its_own_cards(tab, card_run, tmp_path: Path):
    page = tab.open(write_run_report(card_run, tmp_path / "report.html"))
    page.locator('.tl-row[data-step="end"] .tl-bar').click()
    assert page.locator("#df-detail").is_visible()
    assert page.frame_locator("#df-detail .df-card iframe").locator("h2").inner_text() == \
        "My own page"
    page.locator('.tl-row[data-step="start"] .tl-bar').click()
    assert page.locator("#df-detail .df-card iframe").count() == 1
    assert tab.errors == []
