"""Reading cards back: ``get_cards(task)``, as Metaflow's ``metaflow.cards.get_cards``.

>>> from daskflow.cards import get_cards                     # doctest: +SKIP
>>> cards = get_cards("HelloFlow/1712345678/start/1")
>>> cards[0].id, cards[0].type
('summary', 'blank')
>>> html = cards[0].html
"""

from __future__ import annotations

from collections.abc import Iterator
from html import escape
from typing import Any

from ..client import Task
from ..exceptions import DataNotFoundError
from . import storage


class StoredCard:
    """One card of a task (Metaflow's ``Card``): ``.html`` / ``get()`` (the whole page),
    ``.id``, ``.type``, ``.hash``, ``.path``, ``from_resumed``, ``origin_pathspec``;
    ``refresh()`` reads it again (a card written while its task runs changes), and
    ``get_data()`` gives the data of its last ``current.card.refresh(data)``."""

    def __init__(self, task: Task, attempt: int, entry: dict[str, Any],
                 origin_pathspec: str | None = None) -> None:
        self._task = task
        self.attempt = attempt
        self.from_resumed = origin_pathspec is not None
        self.origin_pathspec = origin_pathspec
        self._update(entry)

    def _update(self, entry: dict[str, Any]) -> None:
        self.id: str | None = entry.get("id")
        self.type: str = entry.get("type") or "default"
        self.file: str = entry["file"]
        self.final: bool = bool(entry.get("final", True))
        self._data = entry.get("data")
        self._html: str | None = None

    def refresh(self) -> StoredCard:
        """Read the card again: its latest page, whether it is final, its data."""
        entries = storage.read_index(self._task._store, *self._task._ids(), self.attempt)
        for entry in entries:
            if entry.get("file") == self.file:
                self._update(entry)
        return self

    def get_data(self) -> Any:
        """What the step last passed to ``current.card.refresh(data)`` (None: nothing)."""
        return self._data

    @property
    def path(self) -> str:
        """Where the page is stored (a path, or a URL on an object store)."""
        return self._task._store.stored.task_file_location(*self._task._ids(), self.file)

    @property
    def hash(self) -> str:
        return self.file.rsplit(".", 1)[0]

    @property
    def html(self) -> str:
        if self._html is None:
            data = self._task._store.read_task_file(*self._task._ids(), self.file)
            self._html = data.decode("utf-8")
        return self._html

    def get(self) -> str:
        return self.html

    def view(self) -> None:
        """Open the card in a web browser (a local datastore)."""
        import pathlib
        import webbrowser
        path = self.path
        webbrowser.open(path if "://" in path else pathlib.Path(path).as_uri())

    def _repr_html_(self) -> str:
        # In a notebook: the page in a frame of its own, so its styles stay on it.
        return (f'<iframe srcdoc="{escape(self.html)}" style="width:100%;height:480px;'
                f'border:0" sandbox></iframe>')

    def __repr__(self) -> str:
        return f"<Card {self.type}{'' if self.id is None else ' id=' + self.id} of " \
               f"{self._task.pathspec}>"

    def __str__(self) -> str:
        return f"<Card at '{self.path}'>"


class CardContainer:
    """The cards of a task, list-like (``cards[0]``, ``len(cards)``, ``for card in cards``)."""

    def __init__(self, cards: list[StoredCard]) -> None:
        self._cards = cards

    def __getitem__(self, index: int) -> StoredCard:
        return self._cards[index]

    def __len__(self) -> int:
        return len(self._cards)

    def __iter__(self) -> Iterator[StoredCard]:
        return iter(self._cards)

    def _repr_html_(self) -> str:
        return "".join(c._repr_html_() for c in self._cards)

    def __repr__(self) -> str:
        return f"CardContainer({self._cards!r})"


def get_cards(task: Task | str, id: str | None = None, type: str | None = None,
              follow_resumed: bool = True) -> CardContainer:
    """The cards of ``task`` (a :class:`~daskflow.Task` or its pathspec), latest attempt.

    ``id`` and ``type`` keep only the cards that match.  A task cloned by
    ``resume`` shows the cards of the task it was cloned from.
    """
    if isinstance(task, str):
        task = Task(task)
    if not task.attempts:
        raise DataNotFoundError(f"Task {task.pathspec} does not exist; no cards to read.")
    origin = task.origin_pathspec if follow_resumed else None
    if origin:
        found = get_cards(Task(origin, _store=task._store), id, type, False)
        for card in found:
            card.from_resumed, card.origin_pathspec = True, origin
        return found
    attempt = task.current_attempt
    entries = storage.read_index(task._store, *task._ids(), attempt)
    return CardContainer([StoredCard(task, attempt, e) for e in entries
                          if (id is None or e.get("id") == id)
                          and (type is None or e.get("type") == type)])

