"""One card's page, made by its card type (cards/registry.py) from the running task.

A card type's ``render(task)`` is given a :class:`LiveTask`: the task as Metaflow's
client shows a finished one (``pathspec``, ``id``, ``data.<artifact>``,
``task["<artifact>"].data``, ``"x" in task``), read from the attempt that is ending,
whose artifacts are not stored yet; anything else it asks of the task goes to the
client's :class:`~daskflow.client.Task`. A card type that raises, or returns no text,
gives a page saying so (``save_errors``, the default) and never fails the task.
"""

from __future__ import annotations

import traceback
from html import escape
from typing import Any

from ..datastore.serializers import DASK_PARQUET
from .components import render_component
from .page import card_page
from .registry import MetaflowCard, _BuiltinCard

SMALL_ARTIFACT = 100_000   # the default card loads inherited artifacts up to this size


class LiveTask:
    """The task of a running attempt, as a card type reads it."""

    def __init__(self, task: Any) -> None:
        self._task = task          # the hooks' TaskContext
        self._flow = task.flow
        self.pathspec: str = task.pathspec
        self.id: str = task.task_id
        self.current_attempt: int = task.attempt
        self.finished = False

    @property
    def data(self) -> _LiveData:
        return _LiveData(self)

    def value(self, name: str) -> Any:
        own = self._flow._df_artifacts()
        if name in own:
            return own[name]
        try:
            return getattr(self._flow, name)
        except AttributeError:
            raise KeyError(name) from None

    def names(self) -> list[str]:
        flow = self._flow
        return sorted({*getattr(flow, "_df_params", {}), *flow._df_refs,
                       *flow._df_artifacts()})

    def __getitem__(self, name: str) -> _LiveArtifact:
        return _LiveArtifact(name, self.value(name))

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __iter__(self) -> Any:
        return iter([self[name] for name in self.names()])

    @property
    def artifacts(self) -> list[_LiveArtifact]:
        return list(self)

    def artifact_values(self) -> dict[str, Any]:
        """What the default card lists: own values, and inherited ones that are small."""
        flow = self._flow
        values: dict[str, Any] = {}
        refs = {**getattr(flow, "_df_params", {}), **flow._df_refs}
        for name, ref in refs.items():
            if ref.size <= SMALL_ARTIFACT and ref.fmt != DASK_PARQUET:
                try:
                    values[name] = flow._df_store.get_artifact(ref, name)
                except Exception:  # noqa: BLE001  shown by its type instead
                    values[name] = _Unloaded(ref.type_name, ref.size)
            else:
                values[name] = _Unloaded(ref.type_name, ref.size)
        values.update(flow._df_artifacts())
        return values

    def __getattr__(self, name: str) -> Any:
        # what a finished task has beyond its data: the client's view (its run, steps...)
        if name.startswith("_"):
            raise AttributeError(name)
        from ..client import Task
        return getattr(Task(self.pathspec, _store=self._flow._df_store), name)

    def __repr__(self) -> str:
        return f"Task('{self.pathspec}')"


class _LiveData:
    def __init__(self, task: LiveTask) -> None:
        object.__setattr__(self, "_task", task)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._task.value(name)
        except KeyError:
            raise AttributeError(f"Task {self._task.pathspec} has no artifact '{name}'.") \
                from None

    def __contains__(self, name: object) -> bool:
        return name in self._task

    def __dir__(self) -> list[str]:
        return self._task.names()


class _LiveArtifact:
    def __init__(self, name: str, value: Any) -> None:
        self.id = name
        self.data = value

    def __repr__(self) -> str:
        return f"DataArtifact('{self.id}')"


class _Unloaded:
    """An artifact the default card names without loading (too big to show)."""

    def __init__(self, type_name: str, size: int) -> None:
        self.type_name, self.size = type_name, size

    def __repr__(self) -> str:
        return f"<{self.type_name}, {self.size:,} bytes stored>"


def graph_info(graph: Any) -> dict[str, dict[str, Any]]:
    """The flow's graph as Metaflow gives it to a card type (``graph=``): by step, its
    type, the steps after it, its doc and decorators."""
    return {node.name: {"name": node.name, "type": node.transition or "end",
                        "next": list(node.out_funcs), "doc": node.doc or "",
                        "decorators": list(node.decorators)} for node in graph}


def render_page(card_class: type[MetaflowCard], *, task: Any, slot: Any,
                options: dict[str, Any], final: bool, save_errors: bool) -> str | None:
    """The page of one card, or None when there is none to write now (a type that is
    not runtime-updatable, at a refresh; a failed one with ``save_errors=False``)."""
    if not final and not card_class.RUNTIME_UPDATABLE:
        return None
    components = [render_component(c) for c in slot.components]
    live = LiveTask(task)
    try:
        kwargs: dict[str, Any] = {"components": components,
                                  "graph": graph_info(task.plan.graph), "flow": task.flow}
        if options:
            kwargs["options"] = options
        card = card_class(**kwargs)
        if isinstance(card, _BuiltinCard):
            card.card_id = slot.id
        html = card.render(live) if final else card.render_runtime(live, {
            "user": slot.data, "components": dict(zip(slot.components.keys(), components)),
            "render_seq": "final" if final else slot.last_refresh, "mode": "render_runtime"})
        if not isinstance(html, str):
            raise TypeError(f"{type(card).__name__}.render returned "
                            f"{type(html).__name__}, not the page's HTML text")
        return html
    except Exception as exc:  # noqa: BLE001  a card never fails its task
        if not save_errors:
            raise
        return _error_page(task.pathspec, card_class, exc)


def _error_page(pathspec: str, card_class: type, exc: BaseException) -> str:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    body = (f'<div class="df-error"><b>Card type {escape(str(card_class.type))} '
            f"({escape(card_class.__name__)}) could not render this task</b>"
            f"<pre>{escape(text)}</pre></div>")
    return card_page(title=pathspec, facts=[("card", "error")], components=[body])
