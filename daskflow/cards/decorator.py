"""``@card``: a step makes HTML cards, kept with each task attempt.

>>> from daskflow import FlowSpec, card, current, step
>>> from daskflow.cards import Markdown
>>> class HelloFlow(FlowSpec):
...     @card(type="blank", id="summary")
...     @step
...     def start(self):
...         current.card["summary"].append(Markdown("# Hello"))
...         self.next(self.end)
...     @step
...     def end(self):
...         pass

``type="default"`` shows the task's artifacts (and any components appended);
``type="blank"`` only the components; ``type="html"`` is the page held in the
artifact ``options["attribute"]`` (default ``self.html``), as it is; any other type is a
card type of one's own (:mod:`.registry`, Metaflow's ``MetaflowCard``), which makes the
page itself (:mod:`.render`).  A step may carry several ``@card`` with different ids.
Each card is written when the attempt ends, whether the body succeeded or failed, and at
``current.card.refresh()`` while it runs (at most once per ``refresh_interval``
seconds; a type that is not ``RUNTIME_UPDATABLE`` only at the end).  A card that cannot
be written never fails the task: the reason goes to its stderr (or, with
``save_errors``, on the page).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from ..current import bind_card, current
from ..steps.base import StepDecorator, StepDecoratorError, TaskContext
from . import storage
from .collector import CardComponentCollector, CardSlot
from .registry import CardTypeError, card_type
from .render import render_page

_ID = re.compile(r"^[A-Za-z0-9_]+$")


class Card(StepDecorator):
    """Make an HTML card of the step's task (Metaflow's ``@card``)."""

    name = "card"

    @dataclass
    class Options:
        type: str = "default"
        id: str | None = None
        options: dict[str, Any] = field(default_factory=dict)
        timeout: float = 45
        refresh_interval: float = 5
        save_errors: bool = True
        customize: bool = False

    def validate(self) -> None:
        o = self.options
        try:
            self.card_class = card_type(o.type)  # travels with the decorator to workers
        except CardTypeError as exc:
            raise StepDecoratorError(f"@card(type={o.type!r}): {exc}") from None
        if o.id is not None and not (isinstance(o.id, str) and _ID.match(o.id)):
            raise StepDecoratorError(
                f"@card(id={o.id!r}): an id is letters, digits and underscores, e.g. "
                f"id='summary'.")
        if not isinstance(o.refresh_interval, (int, float)) or o.refresh_interval < 0:
            raise StepDecoratorError(
                f"@card(refresh_interval={o.refresh_interval!r}) must be a number of "
                f"seconds >= 0.")

    def __call__(self, func: Callable) -> Callable:
        # Several @card on one step are allowed, as in Metaflow; an id names one card.
        decorators = func.__dict__.setdefault("decorators", [])
        ident = self.options.id
        if ident is not None and any(d.name == self.name and d.options.id == ident
                                     for d in decorators):
            raise StepDecoratorError(
                f"@card(id={ident!r}) is applied twice to step '{func.__name__}'; give each "
                f"@card its own id.")
        decorators.append(self)
        return func

    def around_task(self, *, task: TaskContext) -> Any:
        return self._card_of_task(task)

    @contextmanager
    def _card_of_task(self, task: TaskContext) -> Iterator[None]:
        cards = _TaskCards.running(task)
        owner = cards is None
        if cards is None:
            cards = _TaskCards(task)
        position = [d for d in task.plan.decorators if d.name == self.name].index(self)
        slot = CardSlot(position, self.options.type, self.options.id,
                        float(self.options.refresh_interval),
                        editable=bool(self.card_class.ALLOW_USER_COMPONENTS),
                        customize=bool(self.options.customize))
        cards.collector._add(slot)
        with bind_card(cards.collector) if owner else nullcontext():
            try:
                yield
            finally:
                cards.write(slot, final=True)


class _TaskCards:
    """The cards of one running attempt, and where they are written."""

    def __init__(self, task: TaskContext) -> None:
        self.task = task
        self.collector = CardComponentCollector(self.write)
        self.collector._task_cards = self  # type: ignore[attr-defined]
        self.index: dict[int, dict[str, Any]] = {}

    @staticmethod
    def running(task: TaskContext) -> _TaskCards | None:
        """The cards an earlier ``@card`` of this attempt set up, if any."""
        cards = getattr(current.card, "_task_cards", None)
        if cards is not None and cards.task is task:
            return cards
        return None

    def decorator_of(self, slot: CardSlot) -> Card:
        return [d for d in self.task.plan.decorators if d.name == "card"][slot.position]

    def write(self, slot: CardSlot, final: bool) -> None:
        task, flow = self.task, self.task.flow
        store = flow._df_store
        name = storage.card_page_file(task.attempt, slot.position)
        try:
            decorator = self.decorator_of(slot)
            html = render_page(decorator.card_class, task=task, slot=slot,
                               options=dict(decorator.options.options or {}), final=final,
                               save_errors=bool(decorator.options.save_errors))
            if html is None:
                return
            store.write_task_file(flow._df_run_id, task.step, task.task_id, name,
                                  html.encode("utf-8"))
            self.index[slot.position] = {"id": slot.id, "type": slot.type, "file": name,
                                         "final": final, **_data(slot)}
            storage.write_index(store, flow._df_run_id, task.step, task.task_id,
                                task.attempt, [self.index[k] for k in sorted(self.index)])
        except Exception as exc:  # noqa: BLE001  a card never fails its task
            print(f"[@card WARNING] card {slot.id or slot.position} of {task.pathspec} "
                  f"could not be written: {type(exc).__name__}: {exc}", file=sys.stderr)


def _data(slot: CardSlot) -> dict[str, Any]:
    """The data of the card's last ``refresh(data)``, kept in its index entry if JSON."""
    if slot.data is None:
        return {}
    import json
    try:
        json.dumps(slot.data)
    except (TypeError, ValueError):
        print("[@card WARNING] Data provided to `refresh` is not JSON serializable. It will "
              "be ignored.", file=sys.stderr)
        return {}
    return {"data": slot.data}


#: ``@card``, ``@card(type="blank", id="summary")``.
card = Card.decorator()
