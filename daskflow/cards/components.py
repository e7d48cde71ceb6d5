"""The components a step puts on a card, with Metaflow's names and arguments.

Each component renders to an HTML fragment with :meth:`CardComponent.render`;
every string a user gives is escaped (a ``<script>`` in a Markdown text shows
as text), and images are inlined as ``data:`` URLs, so a card page never
fetches anything.

>>> from daskflow.cards import Markdown, Table
>>> Markdown("# Hello").render()
'<div class="df-md"><h1>Hello</h1>\\n</div>'
>>> "<td>1</td>" in Table([[1, 2]], headers=["a", "b"]).render()
True
"""

from __future__ import annotations

import base64
import io
import json
import re
from html import escape
from typing import Any

MAX_TABLE_ROWS = 1000     # Table.from_dataframe(truncate=True) shows this many rows
MAX_REPR_CHARS = 2000     # Artifact shows at most this much of a value's repr


class CardComponent:
    """Base of every card component: ``render()`` returns an HTML fragment.

    ``component_id`` names it on its card (``current.card.components[id]``).
    Components that change while the step runs (``update``) show their latest
    state at the next ``current.card.refresh()`` and when the card is written.
    """

    REALTIME_UPDATABLE = False
    #: set when it goes on a card; a class attribute too, for a component written for
    #: Metaflow, whose __init__ need not call this one's
    component_id: str | None = None

    def __init__(self) -> None:
        self.component_id = None

    def render(self) -> str:
        raise NotImplementedError

    def update(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(f"{type(self).__name__} cannot be updated; append a new one.")


#: Metaflow's name for the base class, for custom components written against it.
MetaflowCardComponent = CardComponent


class Markdown(CardComponent):
    """Markdown text; raw HTML in it is shown as text, never run."""

    REALTIME_UPDATABLE = True

    def __init__(self, text: str | None = None) -> None:
        super().__init__()
        self.text = "" if text is None else str(text)

    def update(self, text: str | None = None) -> None:
        self.text = "" if text is None else str(text)

    def render(self) -> str:
        return f'<div class="df-md">{markdown_html(self.text)}</div>'


class Table(CardComponent):
    """A table of rows; a cell may hold another component (an Image, a Markdown, ...)."""

    REALTIME_UPDATABLE = True

    def __init__(self, data: list[list[Any]] | None = None,
                 headers: list[str] | None = None, disable_updates: bool = False) -> None:
        super().__init__()
        self.data = [list(row) for row in (data or [])]
        self.headers = [str(h) for h in (headers or [])]
        self.disable_updates = disable_updates

    @classmethod
    def from_dataframe(cls, dataframe: Any, truncate: bool = True) -> Table:
        """A table of a pandas DataFrame (its first 1,000 rows when ``truncate``)."""
        frame = dataframe.head(MAX_TABLE_ROWS) if truncate else dataframe
        headers = ([str(n) for n in frame.index.names if n is not None] if _named_index(frame)
                   else []) + [str(c) for c in frame.columns]
        rows = []
        for index, row in zip(frame.index, frame.itertuples(index=False, name=None)):
            keys = list(index) if isinstance(index, tuple) else [index]
            rows.append((keys if _named_index(frame) else []) + list(row))
        table = cls(rows, headers=headers)
        if truncate and len(dataframe) > MAX_TABLE_ROWS:
            table.note = f"first {MAX_TABLE_ROWS} of {len(dataframe)} rows"
        return table

    note = ""

    def update(self, data: list[list[Any]] | None = None) -> None:
        if self.disable_updates:
            return
        self.data = [list(row) for row in (data or [])]

    def render(self) -> str:
        head = "".join(f"<th>{escape(h)}</th>" for h in self.headers)
        body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>"
                       for row in self.data)
        note = f'<p class="df-note">{escape(self.note)}</p>' if self.note else ""
        return (f'<table class="df-table">{f"<thead><tr>{head}</tr></thead>" if head else ""}'
                f"<tbody>{body}</tbody></table>{note}")


class Image(CardComponent):
    """An image from bytes (PNG, JPEG, GIF, SVG), a PIL image or a matplotlib figure."""

    REALTIME_UPDATABLE = True

    def __init__(self, src: bytes | None = None, label: str | None = None,
                 disable_updates: bool = True) -> None:
        super().__init__()
        self.label = label
        self.disable_updates = disable_updates
        self.src = _data_url(src) if src is not None else None

    @classmethod
    def from_pil_image(cls, pilimage: Any, label: str | None = None,
                       disable_updates: bool = True) -> Image:
        buffer = io.BytesIO()
        pilimage.save(buffer, format="PNG")
        return cls(buffer.getvalue(), label=label, disable_updates=disable_updates)

    @classmethod
    def from_matplotlib(cls, plot: Any, label: str | None = None,
                        disable_updates: bool = True) -> Image:
        """From a matplotlib Figure, Axes or anything with ``get_figure()``."""
        figure = plot if hasattr(plot, "savefig") else plot.get_figure()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", bbox_inches="tight")
        return cls(buffer.getvalue(), label=label, disable_updates=disable_updates)

    def update(self, image: Any, label: str | None = None) -> None:
        if self.disable_updates:
            return
        if hasattr(image, "savefig") or hasattr(image, "get_figure"):
            self.src = Image.from_matplotlib(image).src
        elif hasattr(image, "save") and not isinstance(image, (bytes, bytearray)):
            self.src = Image.from_pil_image(image).src
        else:
            self.src = _data_url(image)
        if label is not None:
            self.label = label

    def render(self) -> str:
        if self.src is None:
            return '<p class="df-note">(no image)</p>'
        label = escape(self.label or "")
        caption = f"<figcaption>{label}</figcaption>" if self.label else ""
        return (f'<figure class="df-image"><img src="{escape(self.src)}" alt="{label}">'
                f"{caption}</figure>")


class Artifact(CardComponent):
    """Any Python value, shown by its ``repr`` (cut to 2,000 characters)."""

    def __init__(self, artifact: Any, name: str | None = None,
                 compressed: bool = True) -> None:
        super().__init__()
        self.artifact = artifact
        self.name = name
        self.compressed = compressed

    def render(self) -> str:
        text = value_repr(self.artifact, MAX_REPR_CHARS if self.compressed else None)
        name = f"<b>{escape(self.name)}</b> " if self.name else ""
        return f'<div class="df-artifact">{name}<pre>{escape(text)}</pre></div>'


class VegaChart(CardComponent):
    """A Vega-Lite chart spec (a dict, or an Altair chart via ``from_altair_chart``).

    The card page fetches nothing, and vega-embed is not bundled: the chart is
    shown as its spec (the data it plots), which any Vega editor opens.
    """

    REALTIME_UPDATABLE = True

    def __init__(self, spec: dict[str, Any], show_controls: bool = False) -> None:
        super().__init__()
        self.spec = spec
        self.show_controls = show_controls

    @classmethod
    def from_altair_chart(cls, altair_chart: Any) -> VegaChart:
        return cls(altair_chart.to_dict())

    def update(self, spec: dict[str, Any] | None = None) -> None:
        if spec is not None:
            self.spec = spec

    def render(self) -> str:
        title = self.spec.get("title") if isinstance(self.spec, dict) else None
        text = json.dumps(self.spec, indent=1, default=str)
        return (f'<div class="df-vega"><b>Vega-Lite chart{": " if title else ""}'
                f"{escape(str(title or ''))}</b><details><summary>spec</summary>"
                f"<pre>{escape(text)}</pre></details></div>")


class ProgressBar(CardComponent):
    """A progress bar; ``update(value)`` then ``current.card.refresh()`` shows progress."""

    REALTIME_UPDATABLE = True

    def __init__(self, max: int = 100, label: str | None = None, value: int = 0,
                 unit: str | None = None, metadata: str | None = None) -> None:
        super().__init__()
        self.max, self.label, self.value = max, label, value
        self.unit, self.metadata = unit, metadata

    def update(self, new_value: int, metadata: str | None = None) -> None:
        self.value = new_value
        if metadata is not None:
            self.metadata = metadata

    def render(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        label = f"<b>{escape(self.label)}</b> " if self.label else ""
        meta = f' <span class="df-note">{escape(str(self.metadata))}</span>' \
            if self.metadata else ""
        return (f'<div class="df-progress">{label}<progress max="{float(self.max):g}" '
                f'value="{float(self.value):g}"></progress> '
                f"{escape(f'{self.value}/{self.max}{unit}')}{meta}</div>")


class Error(CardComponent):
    """A component that failed to render, or a warning, shown in red on the card."""

    def __init__(self, headline: str, message: str) -> None:
        super().__init__()
        self.headline, self.message = headline, message

    def render(self) -> str:
        return (f'<div class="df-error"><b>{escape(self.headline)}</b>'
                f"<pre>{escape(self.message)}</pre></div>")


# -- helpers ---------------------------------------------------------------------------


def render_component(component: Any) -> str:
    """``component``'s HTML, or an error box naming it: one bad component spoils nothing.

    Text is HTML already rendered (what a card type's ``render`` is given)."""
    if isinstance(component, str):
        return component
    try:
        html = component.render()
        if not isinstance(html, str):
            raise TypeError(f"render() returned {type(html).__name__}, not str")
        return html
    except Exception as exc:  # noqa: BLE001  shown on the card instead
        return Error(f"{type(component).__name__} could not be rendered",
                     f"{type(exc).__name__}: {exc}").render()


def value_repr(value: Any, limit: int | None = MAX_REPR_CHARS) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # noqa: BLE001  a broken __repr__ must not lose the card
        text = f"<repr() failed: {type(exc).__name__}>"
    if limit is not None and len(text) > limit:
        text = text[:limit] + f"... ({len(text) - limit} more characters)"
    return text


def _cell(value: Any) -> str:
    if isinstance(value, CardComponent):
        return render_component(value)
    return escape(value if isinstance(value, str) else value_repr(value, 200))


def _named_index(frame: Any) -> bool:
    return any(n is not None for n in frame.index.names)


_SIGNATURES = [(b"\x89PNG", "image/png"), (b"\xff\xd8", "image/jpeg"),
               (b"GIF8", "image/gif"), (b"RIFF", "image/webp"), (b"<svg", "image/svg+xml"),
               (b"<?xml", "image/svg+xml")]


def _data_url(src: Any) -> str:
    if isinstance(src, str) and src.startswith("data:image/"):
        return src
    if not isinstance(src, (bytes, bytearray)):
        raise TypeError(f"Image(src=...) takes the image's bytes (PNG, JPEG, GIF, SVG), got "
                        f"{type(src).__name__}; use Image.from_pil_image or "
                        f"Image.from_matplotlib for those.")
    mime = next((m for sig, m in _SIGNATURES if bytes(src[:5]).startswith(sig)), None)
    if mime is None:
        raise ValueError("Image(src=...): the bytes are not a PNG, JPEG, GIF, WebP or SVG "
                         "image.")
    return f"data:{mime};base64,{base64.b64encode(bytes(src)).decode('ascii')}"


# -- Markdown ------------------------------------------------------------------------


def markdown_html(text: str) -> str:
    """Markdown as HTML with raw HTML escaped (markdown-it-py when installed)."""
    try:
        from markdown_it import MarkdownIt
    except ImportError:
        return _simple_markdown(text)
    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)


_INLINE = [(re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
           (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
           (re.compile(r"\*([^*]+)\*"), r"<em>\1</em>")]


def _simple_markdown(text: str) -> str:
    """Headings, lists, code blocks, bold, italic and code: enough for a card."""
    out: list[str] = []
    in_list = in_code = False
    for line in text.splitlines():
        if line.strip().startswith("```"):
            out.append("</code></pre>" if in_code else "<pre><code>")
            in_code = not in_code
            continue
        if in_code:
            out.append(escape(line) + "\n")
            continue
        html = escape(line)
        for pattern, repl in _INLINE:
            html = pattern.sub(repl, html)
        item = re.match(r"\s*[-*] (.*)", html)
        if in_list and not item:
            out.append("</ul>")
            in_list = False
        heading = re.match(r"(#{1,6}) (.*)", html)
        if heading:
            level = len(heading.group(1))
            out.append(f"<h{level}>{heading.group(2)}</h{level}>\n")
        elif item:
            out.append(("" if in_list else "<ul>") + f"<li>{item.group(1)}</li>")
            in_list = True
        elif html.strip():
            out.append(f"<p>{html}</p>\n")
    out.append("</ul>" if in_list else "")
    out.append("</code></pre>" if in_code else "")
    return "".join(out)
