"""The session cluster's bounded span history (``clusters/span_history.py``): which spans
of distributed's span extension go, and that nothing else of them is left behind.

Built on distributed's own ``SpansSchedulerExtension``, ``TaskGroup`` and ``TaskPrefix``
(no scheduler, no cluster): spans are added as the scheduler adds them for a graph.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from distributed.scheduler import TaskGroup, TaskPrefix
from distributed.spans import SpansSchedulerExtension

from daskflow.clusters.span_history import forget_old_spans

pytestmark = pytest.mark.fast

NOW = 1_000_000.0


def spans_of_maps(ends: list[float]) -> tuple[SpansSchedulerExtension, list[TaskGroup]]:
    """One default span per map (as ``client.map`` outside a span makes), each with its
    task group, queued a second before it finished at ``ends[i]``."""
    spans = SpansSchedulerExtension(SimpleNamespace(total_nthreads_history=[(0.0, 2)]))
    prefix = TaskPrefix("square")
    groups = []
    for i, end in enumerate(ends):
        span = spans._ensure_span(("default",), (f"map-{i}",))
        group = TaskGroup(f"square-{i}", prefix)
        group.stop = end
        group.span_id = span.id
        span.groups.add(group)
        span.enqueued = end - 1.0
        groups.append(group)
    return spans, groups


def test_the_oldest_finished_spans_go_and_the_latest_stay():
    spans, _ = spans_of_maps([NOW - 600 + i for i in range(10)])
    assert forget_old_spans(spans, {}, keep=3, ended_before=NOW - 60) == 7
    assert list(spans.spans) == ["map-7", "map-8", "map-9"]
    assert [s.id for s in spans.root_spans] == ["map-7", "map-8", "map-9"]
    assert [s.id for s in spans.spans_search_by_name["default",]] == ["map-7", "map-8", "map-9"]
    assert [s.id for s in spans.spans_search_by_tag["default"]] == ["map-7", "map-8", "map-9"]
    # the next map's default span is a new one, as before (the latest is done)
    assert spans._ensure_default_span().id not in {"map-7", "map-8", "map-9"}


def test_a_span_stays_while_its_group_is_known_or_it_ended_within_the_grace():
    spans, groups = spans_of_maps([NOW - 600, NOW - 500, NOW - 10, NOW - 5, NOW - 1])
    known = {groups[1].name: groups[1]}     # a task of that group is still on the scheduler
    assert forget_old_spans(spans, known, keep=2, ended_before=NOW - 60) == 1
    assert list(spans.spans) == ["map-1", "map-2", "map-3", "map-4"]
    # once its group is forgotten, it goes; the ones that ended a moment ago stay
    assert forget_old_spans(spans, {}, keep=2, ended_before=NOW - 60) == 1
    assert list(spans.spans) == ["map-2", "map-3", "map-4"]


def test_nested_spans_go_as_one_tree():
    spans = SpansSchedulerExtension(SimpleNamespace(total_nthreads_history=[(0.0, 2)]))
    prefix = TaskPrefix("f")
    for i in range(3):
        child = spans._ensure_span(("flow", "step"), (f"flow-{i}", f"step-{i}"))
        group = TaskGroup(f"f-{i}", prefix)
        group.stop = NOW - 600 + i
        child.groups.add(group)
        child.enqueued = child.parent.enqueued = group.stop - 1.0
    assert forget_old_spans(spans, {}, keep=1, ended_before=NOW - 60) == 2
    assert list(spans.spans) == ["flow-2", "step-2"]
    assert [s.id for s in spans.spans_search_by_tag["step"]] == ["step-2"]
    assert set(spans.spans_search_by_name) == {("flow",), ("flow", "step")}
