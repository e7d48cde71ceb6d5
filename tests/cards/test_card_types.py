"""Card types and components of one's own, through Metaflow's extension point and
daskflow's entry points, rendered as Metaflow 2.19 renders them.

The expected pages were recorded with Metaflow 2.19.39 in a separate virtual environment:
the card package and flow below (the package on PYTHONPATH), ``python acme_flow.py run``,
then ``get_cards(task)`` and each card's ``get()``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from daskflow import Flow
from daskflow.cards import MetaflowCard, card_type, get_cards, known_card_types, \
    register_card_type
from daskflow.cards.registry import CardTypeError, _registered

ACME_PACKAGE = '''
from metaflow.cards import MetaflowCard, MetaflowCardComponent


class Badge(MetaflowCardComponent):
    def __init__(self, text):
        self._text = text

    def render(self):
        return "<span class='badge'>%s</span>" % self._text


class AcmeCard(MetaflowCard):
    type = "acme"
    ALLOW_USER_COMPONENTS = True

    def __init__(self, options={"title": "Acme"}, components=[], graph=None, flow=None,
                 **kwargs):
        self._title = options.get("title", "Acme")
        self._components = components
        self._graph = graph

    def render(self, task):
        return "<html><h1>%s</h1><p>%s</p><p>score=%s, in=%s</p>%s<p>steps=%s</p></html>" % (
            self._title, task.pathspec.split("/")[0], task.data.score, "score" in task,
            "".join(str(c) for c in self._components), sorted(self._graph))


class PlainCard(MetaflowCard):
    type = "acme_plain"

    def render(self, task):
        return "<html>plain %s</html>" % task["score"].data


CARDS = [AcmeCard, PlainCard]
'''

ACME_FLOW = '''
from metaflow import FlowSpec, card, current, step
from metaflow_extensions.acme.plugins.cards.acme_cards import Badge


class AcmeFlow(FlowSpec):
    @card(type="acme", options={"title": "Report"})
    @card(type="acme_plain", id="plain")
    @step
    def start(self):
        self.score = 0.9
        current.card.append(Badge("ok"))
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    AcmeFlow()
'''

# Metaflow 2.19.39: (type, id, page) of each card of AcmeFlow's start task, in its order.
METAFLOW_CARDS = [
    ("acme_plain", "plain", "<html>plain 0.9</html>"),
    ("acme", None, "<html><h1>Report</h1><p>AcmeFlow</p><p>score=0.9, in=True</p><span "
                   "class='badge'>ok</span><p>steps=['end', 'start']</p></html>"),
]

LIVE_PACKAGE = '''
from daskflow.cards import MetaflowCard


class LiveCard(MetaflowCard):
    type = "live_count"
    ALLOW_USER_COMPONENTS = True
    RUNTIME_UPDATABLE = True

    def __init__(self, options=None, components=None, **kwargs):
        self._components = components or []

    def render(self, task):
        return "<p>final n=%s</p>%s" % (task.data.n, "".join(self._components))

    def render_runtime(self, task, data):
        return "<p>live %s</p>" % data["user"]


class Broken(MetaflowCard):
    type = "broken"

    def render(self, task):
        raise ValueError("no page today")
'''

LIVE_FLOW = '''
from daskflow import FlowSpec, card, current, step
from daskflow.cards import Markdown, get_cards


class LiveFlow(FlowSpec):
    @card(type="live_count", id="live")
    @card(type="broken", id="broken")
    @step
    def start(self):
        current.card.append(Markdown("appended"))
        current.card["live"].refresh({"n": 1}, force=True)
        card = get_cards(current.pathspec, id="live")[0]
        first = card.html
        current.card["live"].refresh({"n": 2}, force=True)
        self.seen = [first, card.refresh().html, card.get_data(), card.final]
        self.n = 2
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    LiveFlow()
'''


def _env(site: Path) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


def test_a_card_package_written_for_metaflow_renders_unchanged(workdir, tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    package = site / "metaflow_extensions" / "acme" / "plugins" / "cards" / "acme_cards"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(ACME_PACKAGE)
    (workdir / "acme_flow.py").write_text(ACME_FLOW)
    result = subprocess.run([sys.executable, "-m", "daskflow", "run", "acme_flow.py", "run"],
                            cwd=workdir, env=_env(site), capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stderr
    task = Flow("AcmeFlow").latest_run["start"].task
    assert [(c.type, c.id, c.get()) for c in get_cards(task)] == METAFLOW_CARDS
    listed = subprocess.run([sys.executable, "-m", "daskflow", "run", "acme_flow.py", "card",
                             "list", "start"], cwd=workdir, env=_env(site),
                            capture_output=True, text=True, timeout=120)
    assert "type=acme_plain" in listed.stdout and "type=acme " in listed.stdout


def test_an_entry_point_card_type_refreshes_while_the_task_runs(workdir, tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    (site / "live_cards.py").write_text(LIVE_PACKAGE)
    dist = site / "live_cards-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: live-cards\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[daskflow.cards]\nlive = live_cards:LiveCard\nbroken = live_cards:Broken\n")
    (workdir / "live_flow.py").write_text(LIVE_FLOW)
    result = subprocess.run([sys.executable, "live_flow.py", "run"], cwd=workdir,
                            env=_env(site), capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    task = Flow("LiveFlow").latest_run["start"].task
    assert task.data.seen == ["<p>live {'n': 1}</p>", "<p>live {'n': 2}</p>", {"n": 2},
                              False]
    live, = get_cards(task, id="live")
    assert (live.type, live.html, live.get_data(), live.final) == (
        "live_count", "<p>final n=2</p><div class=\"df-md\"><p>appended</p>\n</div>", {"n": 2},
        True)
    broken, = get_cards(task, id="broken")  # save_errors: the error is the page
    assert "Card type broken (Broken) could not render this task" in broken.html
    assert "ValueError: no page today" in broken.html


class Shout(MetaflowCard):
    type = "shout_test"

    def render(self, task):
        return task.pathspec.upper()


@pytest.mark.fast
def test_the_registry_of_card_types():
    assert {"default", "blank", "html"} <= set(known_card_types())
    register_card_type(Shout)
    try:
        assert card_type("shout_test") is Shout
        with pytest.raises(CardTypeError, match="'shout_test' exists already"):
            register_card_type(Shout)
        register_card_type(Shout, clobber=True)
    finally:
        _registered.pop("shout_test", None)
    with pytest.raises(CardTypeError, match=r"No card type 'defualt'. Did you mean 'default'"):
        card_type("defualt")
    with pytest.raises(CardTypeError, match="is not a MetaflowCard subclass"):
        register_card_type(object)  # type: ignore[arg-type]

    class Nameless(MetaflowCard):
        pass

    with pytest.raises(CardTypeError, match="has no `type` name"):
        register_card_type(Nameless)


@pytest.mark.fast
def test_a_component_written_for_metaflow_goes_on_daskflow_cards():
    from daskflow.cards import Markdown, MetaflowCardComponent
    from daskflow.cards.collector import ComponentStore

    class Counter(MetaflowCardComponent):  # as Metaflow's: no super().__init__()
        def __init__(self, n):
            self._n = n

        def render(self):
            return f"<b>{self._n}</b>"

    store = ComponentStore()
    store.append(Counter(3))
    store.append(Markdown("x"))
    assert store.keys() == ["counter-1", "markdown-2"]
    assert store["counter-1"].render() == "<b>3</b>"
