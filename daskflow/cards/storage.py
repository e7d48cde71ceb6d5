"""Where a task's cards live in the datastore, next to its other files.

::

    <run>/<step>/<task_id>/<attempt>.cards.json      the index: id, type, file of each card
    <run>/<step>/<task_id>/<attempt>.card-<n>.html   card n of the step, a whole HTML page

A card page is written whole (the store writes atomically), first at each
``current.card.refresh()`` and last when the attempt ends; the index is
rewritten after each page, so a reader never finds an index naming a page
that does not exist.
"""

from __future__ import annotations

import json
from typing import Any

INDEX = "{attempt}.cards.json"


def card_file(attempt: int, position: int) -> str:
    return f"{attempt}.card-{position}.html"


def write_task_file(store: Any, run_id: str, step: str, task_id: str, name: str,
                    data: bytes) -> None:
    """Write one file of a task attempt (the datastore has no public call for it yet)."""
    store._write(f"{store.task_path(run_id, step, task_id)}/{name}", data)


def read_task_file(store: Any, run_id: str, step: str, task_id: str, name: str) -> bytes:
    return store._read(f"{store.task_path(run_id, step, task_id)}/{name}")


def write_index(store: Any, run_id: str, step: str, task_id: str, attempt: int,
                cards: list[dict[str, Any]]) -> None:
    write_task_file(store, run_id, step, task_id, INDEX.format(attempt=attempt),
                    json.dumps({"cards": cards}).encode())


def read_index(store: Any, run_id: str, step: str, task_id: str,
               attempt: int) -> list[dict[str, Any]]:
    """The cards of one attempt, or [] when it made none."""
    try:
        data = read_task_file(store, run_id, step, task_id, INDEX.format(attempt=attempt))
    except FileNotFoundError:
        return []
    return list(json.loads(data).get("cards") or [])
