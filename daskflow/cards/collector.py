"""``current.card``: the cards of the running task and the components put on them.

Metaflow's rules for which card ``current.card.append`` edits (its "default editable"
card): among the step's editable cards (a type with ``ALLOW_USER_COMPONENTS``), the only
one; else the one with ``customize=True``; else the only one without an ``id``; else
none, with a warning once (the call does not fail).  ``current.card["summary"]`` edits
the card with that id, editable or not.  Warnings go to the task's stderr, as Metaflow's
``[@card WARNING]`` lines, in its words.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .components import CardComponent


def warn(message: str) -> None:
    print(f"[@card WARNING] {message}", file=sys.stderr)


class ComponentStore:
    """The components of one card, in order, each under an id (``components["loss"]``)."""

    def __init__(self) -> None:
        self._components: dict[str, CardComponent] = {}
        self._counter = 0

    def append(self, component: Any, id: str | None = None) -> None:
        if not isinstance(component, CardComponent):
            warn(f"{component!r} is not a card component (Markdown, Table, Image, Artifact, "
                 f"VegaChart, ProgressBar, ...); it is left off the card.")
            return
        if id is None:
            id = component.component_id
        if id is None:
            self._counter += 1
            id = f"{type(component).__name__.lower()}-{self._counter}"
        component.component_id = id
        self._components[id] = component

    def extend(self, components: Iterable[Any]) -> None:
        for component in components:
            self.append(component)

    def clear(self) -> None:
        self._components.clear()

    def keys(self) -> list[str]:
        return list(self._components)

    def values(self) -> list[CardComponent]:
        return list(self._components.values())

    def __getitem__(self, id: str) -> CardComponent:
        try:
            return self._components[id]
        except KeyError:
            raise KeyError(f"No component with id '{id}' on this card; its components are: "
                           f"{', '.join(self._components) or 'none'}.") from None

    def __setitem__(self, id: str, component: CardComponent) -> None:
        if id in self._components:
            raise ValueError(f"A component with id '{id}' is on the card already; replace "
                             f"the whole card's list instead (current.card[card_id] = [...]).")
        self.append(component, id=id)

    def __delitem__(self, id: str) -> None:
        self[id]  # the error naming what exists
        del self._components[id]

    def __contains__(self, id: object) -> bool:
        return id in self._components

    def __iter__(self) -> Iterator[CardComponent]:
        return iter(list(self._components.values()))

    def __len__(self) -> int:
        return len(self._components)


@dataclass
class CardSlot:
    """One ``@card`` of the step: what it is, and the components put on it."""

    position: int
    type: str
    id: str | None
    refresh_interval: float
    editable: bool = True       # its type takes components (ALLOW_USER_COMPONENTS)
    customize: bool = False     # @card(customize=True): the default editable card
    components: ComponentStore = field(default_factory=ComponentStore)
    last_refresh: float | None = None   # time.monotonic() of the last write
    data: Any = None                    # what the last refresh(data) gave


class CardComponentManager:
    """One card's components: ``append``, ``extend``, ``clear``, ``refresh``, ``components``."""

    def __init__(self, slot: CardSlot, write: Callable[[CardSlot, bool], None]) -> None:
        self._slot = slot
        self._write = write

    @property
    def components(self) -> ComponentStore:
        return self._slot.components

    def append(self, component: Any, id: str | None = None) -> None:
        self._slot.components.append(component, id=id)

    def extend(self, components: Iterable[Any]) -> None:
        self._slot.components.extend(components)

    def clear(self) -> None:
        self._slot.components.clear()

    def refresh(self, data: Any = None, force: bool = False) -> None:
        """Write the card as it is now; at most once per ``refresh_interval`` seconds.

        ``data`` (JSON) goes to a card type's ``render_runtime(task, data)`` and is kept
        with the card (``get_cards(task)[0].get_data()``)."""
        if data is not None:
            self._slot.data = data
        now = time.monotonic()
        last = self._slot.last_refresh
        if not force and last is not None and now - last < self._slot.refresh_interval:
            return
        self._slot.last_refresh = now
        self._write(self._slot, False)

    def __iter__(self) -> Iterator[CardComponent]:
        return iter(self._slot.components)

    def __len__(self) -> int:
        return len(self._slot.components)


class CardComponentCollector:
    """What ``current.card`` is in a step with ``@card``; see the module's rules."""

    def __init__(self, write: Callable[[CardSlot, bool], None]) -> None:
        self._write = write
        self._slots: list[CardSlot] = []
        self._warned: set[str] = set()

    def _add(self, slot: CardSlot) -> None:
        self._slots.append(slot)

    @property
    def _default(self) -> CardSlot | None:
        editable = [s for s in self._slots if s.editable]
        if len(editable) == 1:
            return editable[0]
        customized = [s for s in editable if s.customize]
        if len(customized) == 1:
            return customized[0]
        no_id = [s for s in editable if s.id is None]
        return no_id[0] if len(no_id) == 1 else None

    def _manager(self, what: str) -> CardComponentManager | None:
        slot = self._default
        if slot is None:
            if what not in self._warned:  # once, as Metaflow
                self._warned.add(what)
                warn(self._why_none(what))
            return None
        return CardComponentManager(slot, self._write)

    def _why_none(self, what: str) -> str:
        """Metaflow 2.19's warning when ``current.card.<what>`` has no card to edit."""
        if len(self._slots) == 1:
            return (f"Card of type `{self._slots[0].type}` is not an editable card. "
                    f"Component will not be appended and `current.card.{what}` will not "
                    f"work for any call during this runtime execution. Please use an "
                    f"editable card.")
        return (f"`current.card.{what}` cannot disambiguate between multiple editable "
                f"cards. Component will not be appended and `current.card.{what}` will "
                f"not work for any call during this runtime execution. To fix this set "
                f"the `id` argument in all @card's when using multiple @card decorators "
                f"over a single @step.")

    def append(self, component: Any, id: str | None = None) -> None:
        if (manager := self._manager("append")) is not None:
            manager.append(component, id=id)

    def extend(self, components: Iterable[Any]) -> None:
        if (manager := self._manager("extend")) is not None:
            manager.extend(components)

    def clear(self) -> None:
        if (manager := self._manager("clear")) is not None:
            manager.clear()

    def refresh(self, data: Any = None, force: bool = False) -> None:
        if (manager := self._manager("refresh")) is not None:
            manager.refresh(data, force=force)

    @property
    def components(self) -> ComponentStore:
        manager = self._manager("components")
        return manager.components if manager is not None else ComponentStore()

    def get(self, type: str | None = None, id: str | None = None) -> list[CardComponentManager]:
        return [CardComponentManager(s, self._write) for s in self._slots
                if (type is None or s.type == type) and (id is None or s.id == id)]

    def __getitem__(self, id: str) -> CardComponentManager:
        for slot in self._slots:
            if slot.id == id:
                return CardComponentManager(slot, self._write)
        ids = [s.id for s in self._slots if s.id]
        warn(f"current.card['{id}'] is not a card of this step (its ids: "
             f"{', '.join(ids) or 'none'}); add @card(id='{id}') to the step. What is "
             f"appended to it is not shown.")
        return CardComponentManager(CardSlot(-1, "blank", id, 0.0), lambda slot, final: None)

    def __setitem__(self, id: str, components: Iterable[Any]) -> None:
        manager = self[id]
        manager.clear()
        manager.extend(components)

    def __iter__(self) -> Iterator[CardComponent]:
        slot = self._default
        return iter(slot.components if slot is not None else [])
