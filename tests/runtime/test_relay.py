"""What tasks publish while they run reaches the observer, in-process."""

from __future__ import annotations

import pytest

from daskflow.runtime.events import RunObserver
from daskflow.runtime.relay import TaskRelay

pytestmark = pytest.mark.fast

# task pathspecs (a flow's run 7, its step "work", task 6), built from their parts
TASK = "/".join(["ForeachFlow", "7", "work", "6"])
OTHER_RUN = "/".join(["ForeachFlow", "71", "work", "6"])
OTHER_FLOW = "/".join(["OtherFlow", "7", "work", "6"])


class Heard(RunObserver):
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def task_started(self, **kwargs):
        self.calls.append(("started", kwargs))

    def task_finished(self, **kwargs):
        self.calls.append(("finished", kwargs))

    def task_output(self, **kwargs):
        self.calls.append(("output", kwargs))


def test_starts_failed_attempts_and_output_reach_the_observer(flow_graph):
    heard = Heard()
    relay = TaskRelay(heard, flow_graph("foreach.py"), stream_output=True,
                      run_pathspec="ForeachFlow/7")
    relay.task_event((1.0, {"e": "started", "s": "work", "t": ["6", "7"], "a": 0, "r": "7"}))
    relay.task_event((2.0, {"e": "retrying", "s": "work", "t": "7", "a": 0, "r": "7",
                            "c": "worker-lost"}))
    relay.output((3.0, {"p": TASK, "s": "stdout", "t": "hello\n"}))
    assert heard.calls == [
        ("started", {"step": "work", "task_id": "6", "attempt": 0}),
        ("started", {"step": "work", "task_id": "7", "attempt": 0}),
        ("finished", {"step": "work", "task_id": "7", "ok": False, "foreach_depth": 1,
                      "attempt": 0, "retrying": True, "cause": "worker-lost"}),
        ("output", {"pathspec": TASK, "stream": "stdout", "text": "hello\n"})]


def test_what_other_runs_on_a_shared_scheduler_publish_is_left_out(flow_graph):
    heard = Heard()
    relay = TaskRelay(heard, flow_graph("foreach.py"), stream_output=True,
                      run_pathspec="ForeachFlow/7")
    relay.task_event((1.0, {"e": "started", "s": "work", "t": "6", "a": 0, "r": "8"}))
    relay.output((2.0, {"p": OTHER_RUN, "s": "stdout", "t": "theirs\n"}))
    relay.output((3.0, {"p": OTHER_FLOW, "s": "stdout", "t": "theirs\n"}))
    assert heard.calls == []
