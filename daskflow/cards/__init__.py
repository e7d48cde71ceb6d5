"""Cards: HTML reports a step makes of its task, as Metaflow's ``metaflow.cards``.

Change ``from metaflow.cards import ...`` to ``from daskflow.cards import ...``.
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

__all__ = [
    "Artifact",
    "Card",
    "CardComponent",
    "CardContainer",
    "Error",
    "Image",
    "Markdown",
    "MetaflowCardComponent",
    "ProgressBar",
    "StoredCard",
    "Table",
    "VegaChart",
    "card",
    "get_cards",
]
