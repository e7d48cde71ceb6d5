"""Card types: daskflow's own and a project's, found as Metaflow finds them.

A card type is a :class:`MetaflowCard` subclass with a ``type`` name (Metaflow's API,
unchanged): ``@card(type="my_card")`` makes one per task, its constructor given the
``@card(options=...)``, the components put on it (as their rendered HTML) and the flow's
graph, and ``render(task)`` gives the page. Types are found, first match wins:

1. daskflow's own: ``default``, ``blank``, ``html`` (:data:`BUILTIN`);
2. registered in code: :func:`register_card_type`;
3. the ``daskflow.cards`` entry-point group: a card class, or a module with ``CARDS``;
4. Metaflow's extension point, as Metaflow reads it: every ``metaflow_extensions.<org>``
   package on ``sys.path`` with a ``plugins.cards`` module (a regular package whose
   ``CARDS`` lists card classes, or a namespace package whose subpackages each have one).

So a card package written for Metaflow registers and renders here unchanged; it imports
its bases from ``metaflow.cards``, which the Metaflow alias (:mod:`daskflow.compat`) maps
to these classes.

>>> class Shout(MetaflowCard):
...     type = "shout"
...     def render(self, task):
...         return "<h1>" + task.pathspec.upper() + "</h1>"
>>> register_card_type(Shout)
>>> card_type("shout") is Shout
True
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from collections.abc import Iterable
from typing import Any

from ..exceptions import DaskflowException, did_you_mean

ENTRY_POINT_GROUP = "daskflow.cards"
EXTENSIONS = "metaflow_extensions"


class CardTypeError(DaskflowException, LookupError):
    """No card type of that name, or a card class that does not follow the contract."""

    headline = "Card type error"


class MetaflowCard:
    """Base of every card type (Metaflow's ``metaflow.cards.MetaflowCard``).

    Subclasses set ``type`` and implement ``render(task) -> str``: the whole page, given
    the finished task (``task.pathspec``, ``task.data.<artifact>``, ``task["name"].data``).
    ``ALLOW_USER_COMPONENTS`` makes it editable with ``current.card.append``;
    ``RUNTIME_UPDATABLE`` lets ``current.card.refresh(data)`` call
    ``render_runtime(task, data)`` while the task runs.
    """

    RELOAD_POLICY_NEVER = "never"
    RELOAD_POLICY_ALWAYS = "always"
    RELOAD_POLICY_ONCHANGE = "onchange"
    RELOAD_POLICY_TOKEN = "[METAFLOW_RELOAD_TOKEN]"

    type: str | None = None
    ALLOW_USER_COMPONENTS = False
    RUNTIME_UPDATABLE = False
    RELOAD_POLICY = RELOAD_POLICY_NEVER
    scope = "task"
    runtime_data = None

    def __init__(self, options: dict[str, Any] | None = None,
                 components: list[Any] | None = None, graph: Any = None,
                 flow: Any = None, **kwargs: Any) -> None:
        pass

    def render(self, task: Any) -> str:
        raise NotImplementedError(f"card type {self.type!r} does not implement render(task)")

    def render_runtime(self, task: Any, data: Any) -> str:
        raise NotImplementedError(f"card type {self.type!r} does not implement "
                                  f"render_runtime(task, data)")

    def refresh(self, task: Any, data: Any) -> Any:
        raise NotImplementedError

    def reload_content_token(self, task: Any, data: Any) -> str:
        return "content-token"


class _BuiltinCard(MetaflowCard):
    """daskflow's own types: a self-contained page of the components (cards/page.py)."""

    ALLOW_USER_COMPONENTS = True
    RUNTIME_UPDATABLE = True
    with_artifacts = False

    def __init__(self, options: dict[str, Any] | None = None,
                 components: list[Any] | None = None, graph: Any = None,
                 flow: Any = None, **kwargs: Any) -> None:
        self.options = dict(options or {})
        self.components = list(components or [])
        self.card_id = kwargs.get("card_id")

    def render(self, task: Any, live: bool = False) -> str:
        from .page import artifact_components, card_page
        parts = list(self.components)
        if self.with_artifacts:
            parts = artifact_components(task.artifact_values()) + parts
        facts = [("card", str(self.type) + (f" · id {self.card_id}" if self.card_id else "")),
                 ("attempt", str(task.current_attempt))]
        return card_page(title=task.pathspec, facts=facts, components=parts, live=live)

    def render_runtime(self, task: Any, data: Any) -> str:
        return self.render(task, live=True)


class DefaultCard(_BuiltinCard):
    """The task's artifacts, then the components put on it."""

    type = "default"
    with_artifacts = True


class BlankCard(_BuiltinCard):
    """Only the components put on it."""

    type = "blank"


class HTMLCard(MetaflowCard):
    """The page held in the artifact ``options["attribute"]`` (default ``html``), as it is."""

    type = "html"
    RUNTIME_UPDATABLE = True

    def __init__(self, options: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.attribute = (options or {}).get("attribute", "html")

    def render(self, task: Any) -> str:
        return str(getattr(task.data, self.attribute, ""))

    def render_runtime(self, task: Any, data: Any) -> str:
        return self.render(task)


#: daskflow's own card types
BUILTIN: dict[str, type[MetaflowCard]] = {c.type: c for c in (DefaultCard, BlankCard,
                                                              HTMLCard)}  # type: ignore[misc]
_registered: dict[str, type[MetaflowCard]] = {}


def register_card_type(cls: type[MetaflowCard], clobber: bool = False) -> None:
    """Make ``@card(type=cls.type)`` use ``cls``; an existing type needs ``clobber=True``."""
    _check_card_class(cls, "register_card_type")
    if not clobber and cls.type in known_card_types():
        raise CardTypeError(f"A card type named '{cls.type}' exists already; pass "
                            f"clobber=True to replace it.")
    _registered[cls.type] = cls  # type: ignore[index]


def card_type(name: str) -> type[MetaflowCard]:
    """The card class of type ``name``; an unknown one is refused naming those known."""
    found = BUILTIN.get(name) or _registered.get(name) or _all_types().get(name)
    if found is None:
        known = known_card_types()
        raise CardTypeError(f"No card type '{name}'.{did_you_mean(name, known)} Known: "
                            f"{', '.join(known)}. A card package adds its own through the "
                            f"'{ENTRY_POINT_GROUP}' entry points or a {EXTENSIONS} package.")
    return found


def known_card_types() -> list[str]:
    return sorted(_all_types())


def _all_types() -> dict[str, type[MetaflowCard]]:
    found: dict[str, type[MetaflowCard]] = {}
    for cls in (*BUILTIN.values(), *_registered.values(), *_from_entry_points(),
                *_from_extensions()):
        found.setdefault(cls.type, cls)  # type: ignore[arg-type]
    return found


def _check_card_class(cls: Any, where: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, MetaflowCard)):
        raise CardTypeError(f"{where}: {cls!r} is not a MetaflowCard subclass "
                            f"(from metaflow.cards import MetaflowCard).")
    if not isinstance(cls.type, str) or not cls.type:
        raise CardTypeError(f"{where}: card class {cls.__name__} has no `type` name.")


def _cards_of(module: Any) -> list[type[MetaflowCard]]:
    """A module's ``CARDS``, keeping what Metaflow keeps: MetaflowCard classes with a type."""
    cards = getattr(module, "CARDS", None)
    if type(cards) is not list:
        return []
    return [c for c in cards if isinstance(c, type) and issubclass(c, MetaflowCard)
            and getattr(c, "type", None)]


def _from_entry_points() -> list[type[MetaflowCard]]:
    from importlib.metadata import entry_points
    found: list[type[MetaflowCard]] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            value = ep.load()
        except Exception as exc:  # noqa: BLE001  named, so the package can be fixed
            raise CardTypeError(f"Card entry point '{ep.name}' ({ep.value}) cannot be "
                                f"loaded: {type(exc).__name__}: {exc}.") from exc
        if isinstance(value, type):
            _check_card_class(value, f"card entry point '{ep.name}'")
            found.append(value)
        else:
            found.extend(_cards_of(value))
    return found


def _from_extensions() -> list[type[MetaflowCard]]:
    """Card types of ``metaflow_extensions.<org>.plugins.cards`` on ``sys.path`` (the
    layouts Metaflow 2.19's ``card_modules._get_external_card_packages`` reads).

    Their modules import ``metaflow.cards``: the Metaflow alias answers it here.
    """
    spec = importlib.util.find_spec(EXTENSIONS) if EXTENSIONS in sys.modules or \
        _on_path(EXTENSIONS) else None
    if spec is None or spec.submodule_search_locations is None:
        return []
    from ..compat import install_metaflow_alias
    install_metaflow_alias()
    found: list[type[MetaflowCard]] = []
    for org in _orgs(spec.submodule_search_locations):
        name = f"{EXTENSIONS}.{org}.plugins.cards"
        try:
            cards = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        if getattr(cards, "__file__", None):  # a regular package: its own CARDS
            found.extend(_cards_of(cards))
            continue
        for package in _subpackages(cards.__path__, name):
            found.extend(_cards_of(importlib.import_module(package)))
    return found


def _on_path(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _orgs(paths: Iterable[str]) -> list[str]:
    """The ``<org>`` folders of ``metaflow_extensions`` (namespace packages, so listed
    as folders: pkgutil lists only folders with an ``__init__.py``)."""
    import os
    names = set()
    for path in paths:
        with os.scandir(path) as entries:
            names |= {e.name for e in entries if e.is_dir() and e.name.isidentifier()}
    return sorted(names)


def _subpackages(paths: Iterable[str], prefix: str) -> list[str]:
    return sorted(f"{prefix}.{info.name}" for info in pkgutil.iter_modules(list(paths))
                  if info.ispkg)
