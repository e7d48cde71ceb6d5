"""A bounded span history, for a scheduler that lives as long as its process.

distributed's scheduler keeps every span it ever saw (``distributed.spans``: one for each
``compute`` or ``client.map`` outside a named span), and with it the task groups of that
computation and their fine metrics, long after the tasks are forgotten: distributed's
issue 7977 ("Spans lifetime management") leaves that to later. A notebook that calls
``parallel_map`` all day on the process's own cluster (``collections/parallel/session.py``)
adds one span a call, a few KiB each, without end.

:class:`SpanHistory`, a scheduler plugin, forgets the oldest of them as new graphs come
in, keeping the latest ``keep``: a span tree goes only when all of it is done, none of its
task groups is known to the scheduler any more (a new task of a group would look its
span up), and it ended ``grace`` seconds ago (a worker's fine metrics for it arrive with
its next heartbeats, and are looked up by span).
"""

from __future__ import annotations

import time
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

#: seconds after its end that a span may still get metrics from a late heartbeat
GRACE = 60.0


class SpanHistory(SchedulerPlugin):
    """Keep at most ``keep`` finished span trees (the latest) on the scheduler."""

    name = "daskflow-span-history"

    def __init__(self, keep: int, grace: float = GRACE) -> None:
        self.keep = keep
        self.grace = grace

    def update_graph(self, scheduler: Any, **kwargs: Any) -> None:
        spans = scheduler.extensions.get("spans")
        if spans is not None and len(spans.root_spans) > self.keep:
            forget_old_spans(spans, scheduler.task_groups, self.keep, time.time() - self.grace)


def forget_old_spans(spans: Any, task_groups: dict[str, Any], keep: int,
                     ended_before: float) -> int:
    """Drop from ``spans`` (a ``SpansSchedulerExtension``) the root span trees older than
    the latest ``keep`` that are over: done, their groups forgotten (not in
    ``task_groups``), ended before ``ended_before``. Returns how many went."""
    gone = [root for root in spans.root_spans[:-keep] if _over(root, task_groups, ended_before)]
    for root in gone:
        for span in list(root.traverse_spans()):
            spans.spans.pop(span.id, None)
            _drop(spans.spans_search_by_name, span.name, span)
            for tag in span.name:
                _drop(spans.spans_search_by_tag, tag, span)
        spans.root_spans.remove(root)
    return len(gone)


def _over(root: Any, task_groups: dict[str, Any], ended_before: float) -> bool:
    groups = list(root.traverse_groups())
    return bool(groups) and all(task_groups.get(group.name) is not group for group in groups) \
        and root.done and root.stop < ended_before


def _drop(index: dict[Any, list[Any]], key: Any, span: Any) -> None:
    found = index.get(key)
    if found is None:
        return
    if span in found:
        found.remove(span)
    if not found:
        del index[key]
