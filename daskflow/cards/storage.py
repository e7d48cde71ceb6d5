"""A task's cards in the datastore: the pages, and the index that lists them.

The datastore keeps them with the task's other files (``datastore/layout.py``
names them: ``<attempt>.card-<n>.html`` for card n's page,
``<attempt>.cards.json`` for the index of the attempt's cards).  A card page is
written whole (every datastore write is atomic), first at each
``current.card.refresh()`` and last when the attempt ends; the index is
rewritten after each page, so a reader never finds an index naming a page
that does not exist.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..datastore.layout import card_index_file, card_page_file

if TYPE_CHECKING:
    from ..datastore import ArtifactStore

__all__ = ["card_page_file", "read_index", "write_index"]


def write_index(store: ArtifactStore, run_id: str, step: str, task_id: str, attempt: int,
                cards: list[dict[str, Any]]) -> None:
    store.write_task_file(run_id, step, task_id, card_index_file(attempt),
                          json.dumps({"cards": cards}).encode())


def read_index(store: ArtifactStore, run_id: str, step: str, task_id: str,
               attempt: int) -> list[dict[str, Any]]:
    """The cards of one attempt, or [] when it made none."""
    try:
        data = store.read_task_file(run_id, step, task_id, card_index_file(attempt))
    except FileNotFoundError:
        return []
    return list(json.loads(data).get("cards") or [])
