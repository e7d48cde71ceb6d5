"""Card components, current.card's rules and @card's options, without running a flow."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from daskflow.cards import Artifact, Image, Markdown, ProgressBar, Table, VegaChart, card
from daskflow.cards.collector import CardComponentCollector, CardSlot
from daskflow.cards.components import markdown_html, render_component
from daskflow.cards.page import card_page
from daskflow.steps import StepDecoratorError, parse_decospec

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201e2e1c2e70000000049454e44ae426082")
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def test_table_from_a_dataframe_with_a_named_index():
    frame = pd.DataFrame({"loss": [0.5, 0.25]}, index=pd.Index(["a", "b"], name="run"))
    html = Table.from_dataframe(frame).render()
    assert "<th>run</th><th>loss</th>" in html
    assert "<tr><td>a</td><td>0.5</td></tr>" in html


def test_big_dataframe_is_cut_and_says_so():
    html = Table.from_dataframe(pd.DataFrame({"x": range(5000)})).render()
    assert html.count("<td>") == 1000 and "first 1000 of 5000 rows" in html
    assert Table.from_dataframe(pd.DataFrame({"x": range(5000)}), truncate=False) \
        .render().count("<td>") == 5000


def test_table_cells_escape_text_and_render_components():
    html = Table([[HOSTILE, Markdown("**bold**")]], headers=[HOSTILE, "b"]).render()
    assert "<script" not in html and "<img" not in html
    assert "<strong>bold</strong>" in html


def test_image_from_bytes_pil_and_bad_input():
    assert Image(PNG).render().startswith('<figure class="df-image"><img src="data:image/png;'
                                          'base64,iVBORw0KGgo')
    with pytest.raises(ValueError, match="not a PNG, JPEG, GIF, WebP or SVG"):
        Image(b"hello")
    with pytest.raises(TypeError, match="use Image.from_pil_image or Image.from_matplotlib"):
        Image(12)
    pil = pytest.importorskip("PIL.Image")
    html = Image.from_pil_image(pil.new("RGB", (3, 2), "red"), label=HOSTILE).render()
    assert "data:image/png;base64," in html and "<script" not in html


def test_image_from_matplotlib():
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    assert "data:image/png;base64," in Image.from_matplotlib(fig).render()
    assert "data:image/png;base64," in Image.from_matplotlib(ax).render()
    plt.close(fig)


@pytest.mark.parametrize("without_markdown_it", [False, True])
def test_markdown_shows_raw_html_as_text(monkeypatch, without_markdown_it):
    if without_markdown_it:  # a stock Dask worker has no markdown-it-py: the built-in one
        monkeypatch.setitem(sys.modules, "markdown_it", None)
    html = markdown_html(f"# Title\n\nsome *text* and {HOSTILE}\n\n- one\n- two")
    assert "<h1>Title</h1>" in html and "<em>text</em>" in html
    assert "<li>one</li>" in html
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html


def test_other_components_escape_what_they_show():
    assert "<script" not in Artifact(HOSTILE, name=HOSTILE).render()
    assert "<script" not in VegaChart({"title": HOSTILE}).render()
    bar = ProgressBar(max=4, label=HOSTILE, unit="steps")
    bar.update(3, metadata=HOSTILE)
    html = bar.render()
    assert '<progress max="4" value="3">' in html and "3/4 steps" in html
    assert "<script" not in html


def test_a_component_that_fails_to_render_shows_an_error_not_a_crash():
    class Broken(Markdown):
        def render(self):
            raise RuntimeError("no luck")

    assert "Broken could not be rendered" in render_component(Broken("x"))
    page = card_page(title=HOSTILE, facts=[("a", HOSTILE)], components=[Broken("x")])
    assert "RuntimeError: no luck" in page and "<script" not in page


def collector(*slots: tuple[str, str | None]) -> tuple[CardComponentCollector, list]:
    written: list = []
    cards = CardComponentCollector(lambda slot, final: written.append((slot.id, final)))
    for i, (kind, ident) in enumerate(slots):
        cards._add(CardSlot(i, kind, ident, refresh_interval=3600))
    return cards, written


def test_append_goes_to_the_only_card_without_an_id(capsys):
    cards, written = collector(("blank", None), ("blank", "side"))
    cards.append(Markdown("main"))
    cards["side"].append(Markdown("side"), id="note")
    assert [c.text for c in cards] == ["main"]
    assert cards["side"].components["note"].text == "side"
    cards.refresh()
    cards.refresh()  # rate-limited: one write per refresh_interval
    cards.refresh(force=True)
    assert written == [(None, False), (None, False)]
    assert capsys.readouterr().err == ""


def test_ambiguous_or_unknown_cards_warn_without_failing(capsys):
    cards, _ = collector(("blank", None), ("default", None))
    cards.append(Markdown("lost"))
    cards["nope"].append(Markdown("lost too"))
    err = capsys.readouterr().err
    # Metaflow 2.19's words (component_serializer.CardComponentCollector.append)
    assert "[@card WARNING] `current.card.append` cannot disambiguate between multiple " \
           "editable cards. Component will not be appended" in err
    assert "current.card['nope'] is not a card of this step" in err
    cards.append(Markdown("lost again"))
    assert "cannot disambiguate" not in capsys.readouterr().err  # warned once, as Metaflow


@pytest.mark.parametrize("slots,edited", [
    # Metaflow 2.19's default editable card (CardComponentCollector._finalize)
    ([("blank", None, True, False), ("html", None, False, False)], 0),
    ([("blank", "a", True, False), ("blank", None, True, False)], 1),
    ([("blank", None, True, False), ("blank", None, True, True)], 1),
    ([("blank", "a", True, True), ("blank", None, True, False)], 0),
    ([("blank", "a", True, False), ("blank", "b", True, False)], None),
    ([("html", None, False, False)], None),
])
def test_the_default_editable_card_as_metaflow_picks_it(slots, edited, capsys):
    cards = CardComponentCollector(lambda slot, final: None)
    for i, (kind, ident, editable, customize) in enumerate(slots):
        cards._add(CardSlot(i, kind, ident, refresh_interval=0, editable=editable,
                            customize=customize))
    cards.append(Markdown("x"))
    assert [len(s.components) for s in cards._slots] == [
        int(i == edited) for i in range(len(slots))]
    if len(slots) == 1 and edited is None:
        assert "Card of type `html` is not an editable card." in capsys.readouterr().err


def test_component_ids():
    cards, _ = collector(("blank", None))
    cards.append(Markdown("a"), id="a")
    with pytest.raises(ValueError, match="A component with id 'a' is on the card already"):
        cards.components["a"] = Markdown("b")
    del cards.components["a"]
    with pytest.raises(KeyError, match="No component with id 'a'"):
        cards.components["a"]
    cards.append("not a component")
    assert len(cards.components) == 0


@pytest.mark.fast
def test_card_options_are_checked():
    def step_fn(self):
        pass

    card(type="blank", id="one")(card(type="blank", id="two")(step_fn))
    card(type="blank")(card(type="default")(step_fn))  # without ids: allowed, as in Metaflow
    assert len(step_fn.decorators) == 4
    with pytest.raises(StepDecoratorError, match="applied twice to step 'step_fn'; give each"):
        card(type="blank", id="one")(step_fn)
    with pytest.raises(StepDecoratorError, match="an id is letters, digits and underscores"):
        card(id="no spaces")
    with pytest.raises(StepDecoratorError, match="unknown argument 'typ'.*Allowed: type, id"):
        card(typ="blank")
    deco = parse_decospec("card:type=blank,id=summary,refresh_interval=1")
    assert (deco.options.type, deco.options.id, deco.options.refresh_interval) == \
        ("blank", "summary", 1)


def test_import_stays_light():
    import subprocess
    code = ("import daskflow, sys; bad = [m for m in ('markdown_it', 'PIL', 'matplotlib', "
            "'pandas') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr


