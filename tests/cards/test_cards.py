"""Cards as a Metaflow user makes and reads them: @card, current.card, get_cards, the CLI.

The flow (tests/flows/card_flow.py) is written as for Metaflow, only the imports
changed, and runs as a subprocess; its cards are read back with the client.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from daskflow.cards import get_cards

FLOWS = Path(__file__).parent.parent / "flows"


def test_default_card_lists_the_artifacts(card_run):
    cards = get_cards(card_run.task("start"))
    assert len(cards) == 1
    card = cards[0]
    assert (card.id, card.type) == (None, "default")
    html = card.html
    for name, value in [("alpha", "0.5"), ("words", "[&#x27;a&#x27;, &#x27;b&#x27;]")]:
        assert re.search(rf"<td>{name}</td><td>\w+</td><td>{re.escape(value)}</td>", html)
    # Components appended to the default card follow its artifacts.
    assert "Appended to the <em>default</em> card." in html
    assert Path(card.path).read_text(encoding="utf-8") == html


def test_two_cards_with_ids_on_one_step(card_run, monkeypatch):
    monkeypatch.chdir(card_run.cwd)  # a pathspec is read from .daskflow here
    task = card_run.task("train")
    cards = get_cards(task)
    assert sorted(c.id for c in cards) == ["plots", "summary"]
    assert [c.type for c in cards] == ["blank", "blank"]
    assert [c.id for c in get_cards(task, id="summary")] == ["summary"]
    assert len(get_cards(task.pathspec, type="blank")) == 2
    assert len(get_cards(task, type="default")) == 0
    summary = get_cards(task, id="summary")[0].html
    plots = get_cards(task, id="plots")[0].html
    assert "Training" in summary and "Training" not in plots
    assert "red pixel" in plots and "red pixel" not in summary
    # In a notebook a card shows as a frame holding the (escaped) page.
    frame = get_cards(task, id="summary")[0]._repr_html_()
    assert frame.startswith('<iframe srcdoc="&lt;!DOCTYPE')


def test_components_render(card_run):
    summary = get_cards(card_run.task("train"), id="summary")[0].html
    plots = get_cards(card_run.task("train"), id="plots")[0].html
    # Table.from_dataframe: the columns as headers, one row per row.
    assert "<th>epoch</th><th>loss</th>" in summary
    assert "<tr><td>2</td><td>0.5</td></tr>" in summary
    assert "<th>a</th><th>b</th>" in summary and "<tr><td>1</td><td>2</td></tr>" in summary
    assert "config" in summary and "{&#x27;lr&#x27;: 0.1}" in summary  # Artifact
    assert re.search(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="a red pixel">',
                     plots)
    assert "Vega-Lite chart: loss" in plots and "&quot;mark&quot;: &quot;line&quot;" in plots
    assert '<progress max="10" value="10">' in plots and "10/10" in plots  # its last update
    assert "in progress" not in plots  # the final card, written when the task ended


def test_hostile_markdown_is_text(card_run):
    html = get_cards(card_run.task("train"), id="summary")[0].html
    quote = "(?:'|&#x27;)"
    assert re.search(f"<h1>Training &lt;script&gt;alert\\({quote}x{quote}\\)&lt;/script&gt;</h1>",
                     html)
    assert "<script" not in html.lower()


def test_refresh_writes_the_card_while_the_task_runs(card_run):
    assert card_run.task("train").data.live_progress is True


def test_card_get_and_view_on_the_command_line(card_run, tmp_path):
    task = card_run.task("train")
    pathspec = f"{card_run.run.id}/train/{task.id}"
    got = card_run.cli("card", "get", pathspec, "--id", "summary")
    assert got.returncode == 0, got.stderr
    assert got.stdout == get_cards(task, id="summary")[0].html
    saved = tmp_path / "summary.html"
    got = card_run.cli("card", "get", "train", str(saved), "--id", "summary")  # latest run
    assert got.returncode == 0, got.stderr
    assert saved.read_text(encoding="utf-8") == get_cards(task, id="summary")[0].html
    view = card_run.cli("card", "view", "start", "--output", str(tmp_path / "start.html"))
    assert view.returncode == 0, view.stderr
    assert (tmp_path / "start.html").read_text(encoding="utf-8") == \
        get_cards(card_run.task("start"))[0].html
    listed = card_run.cli("card", "list", pathspec)
    assert listed.returncode == 0 and "id=plots" in listed.stdout and "id=summary" in listed.stdout


def test_card_cli_errors_are_one_line(card_run):
    missing = card_run.cli("card", "get", "train", "--id", "nope")
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        f"Not found: Task {card_run.task('train').pathspec} has no card with id=nope (its "
        f"cards: plots, summary). Add @card to the step, or pick one with --id."]
    none = card_run.cli("card", "get", "end", "--type", "blank")
    assert none.returncode == 1 and "has no card with type=blank (its cards: html)" in \
        none.stderr
    assert "Traceback" not in none.stderr


def test_html_card_is_the_artifact_page(card_run):
    cards = get_cards(card_run.task("end"))
    assert [c.type for c in cards] == ["html"]
    assert cards[0].html == card_run.task("end").data.html


def test_with_card_adds_a_default_card_to_every_step(run_flow):
    result = run_flow("linear_params.py", "run", "--with", "card")
    assert result.returncode == 0, result.stderr
    from daskflow import Flow, namespace
    namespace(None)
    run = Flow("LinearFlow").latest_run
    for step in run:
        cards = get_cards(step.task)
        assert [c.type for c in cards] == ["default"], step
    assert "<td>scaled</td>" in get_cards(run["middle"].task)[0].html


def test_unknown_card_type_is_refused_before_running(run_flow):
    result = subprocess.run([sys.executable, str(FLOWS / "bad" / "card_bad_type.py"), "run"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "@card(type='fancy'): No card type 'fancy'. Known: blank, default, html. A card " \
           "package adds its own through the 'daskflow.cards' entry points or a " \
           "metaflow_extensions package." in result.stderr
    assert "card_bad_type.py" in result.stderr and "Traceback" not in result.stderr


def test_a_failed_task_keeps_its_card(run_flow):
    result = run_flow("failing.py", "run", "--with", "card")
    assert result.returncode == 1
    from daskflow import Flow, namespace
    namespace(None)
    task = Flow("FailingFlow").latest_run["explode"].task
    assert not task.successful
    html = get_cards(task)[0].html
    # What the step had when it raised: the inherited artifact and the one it assigned.
    assert "<td>before</td>" in html and "<td>partial</td>" in html
