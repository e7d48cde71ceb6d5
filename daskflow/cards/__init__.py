"""Cards: HTML reports a step makes of its task, as Metaflow's ``metaflow.cards``.

Change ``from metaflow.cards import ...`` to ``from daskflow.cards import ...`` (or run
the unchanged file with ``daskflow run``). Card types of one's own are ``MetaflowCard``
subclasses, found by :mod:`.registry` as Metaflow finds them.
A step with ``@card`` puts components on ``current.card``; each card is a
self-contained HTML page kept with the task attempt, read back with
:func:`get_cards`, ``python flow.py card view|get`` and in the run report.
"""

from .client import CardContainer, StoredCard, get_cards
from .components import (
    Artifact,
    CardComponent,
    Error,
    Image,
    Markdown,
    MetaflowCardComponent,
    ProgressBar,
    Table,
    VegaChart,
)
from .decorator import Card, card
from .registry import BlankCard, DefaultCard, MetaflowCard, card_type, known_card_types, \
    register_card_type

__all__ = [
    "Artifact",
    "BlankCard",
    "Card",
    "CardComponent",
    "CardContainer",
    "DefaultCard",
    "Error",
    "Image",
    "Markdown",
    "MetaflowCard",
    "MetaflowCardComponent",
    "ProgressBar",
    "StoredCard",
    "Table",
    "VegaChart",
    "card",
    "card_type",
    "get_cards",
    "known_card_types",
    "register_card_type",
]
