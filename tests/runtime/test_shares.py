"""A run's share of a shared scheduler, from the entries the runs write there."""

from __future__ import annotations

import pytest

from daskflow.runtime.fanout import BatchSizer, Fanout
from daskflow.runtime.shares import (
    PRIORITY_LEVELS,
    FairShare,
    SharedRun,
    live_runs,
    shares_of,
)

pytestmark = pytest.mark.fast


def run(run_id: str, share: int = 1, beat: float = 100.0, flow: str = "Train") -> SharedRun:
    return SharedRun("ann", flow, run_id, share=share, beat=beat)


def test_alone_a_run_gets_every_thread_and_shares_them_as_runs_come_and_go():
    fair = FairShare("Train/1")
    assert fair.update([run("1")], 8) and fair.threads == 8
    assert fair.update([run("1"), run("2")], 8) and fair.threads == 4
    assert fair.update([run("1"), run("2"), run("3"), run("4")], 8) and fair.threads == 2
    assert not fair.update([run("1"), run("2"), run("3"), run("4")], 8)  # unchanged
    assert fair.update([run("2")], 8) and fair.threads == 4  # itself not listed yet: counts


def test_share_weighs_a_run_and_every_run_keeps_a_thread():
    assert [r["threads"] for r in shares_of([run("1", share=3), run("2")], 8)] == [6, 2]
    many = shares_of([run(str(i)) for i in range(5)], 2)
    assert {r["threads"] for r in many} == {1}       # more runs than threads: one each
    assert sum(r["fraction"] for r in many) == pytest.approx(1.0)


def test_entries_not_renewed_in_time_and_foreign_ones_are_left_out():
    entries = {"Train/1": {**run("1", beat=95.0).__dict__},
               "Train/2": {**run("2", beat=80.0).__dict__},    # gone: 20 s old
               "Train/3": None,                                # ended
               "Other/4": {"user": "bob", "something": "else"},
               "Train/5": {**run("5", beat=99.0).__dict__, "added_later": 1}}
    assert [r.run_id for r in live_runs(entries, now=100.0, expire_after=10.0)] == ["1", "5"]
    assert live_runs(None, 100.0, 10.0) == [] and live_runs("junk", 100.0, 10.0) == []


def test_priority_falls_one_level_per_round_of_the_runs_threads():
    fair = FairShare("Train/1")
    fair.update([run("1"), run("2")], 4)                      # 2 threads
    assert [fair.priority(ahead) for ahead in (0, 1, 2, 3, 4)] == [0, 0, -1, -1, -2]
    assert fair.priority(10_000) == -PRIORITY_LEVELS


def test_a_fanout_keeps_twice_its_share_of_batches_in_flight():
    specs = [_spec(i) for i in range(100)]
    fanout = Fanout("work", None, specs, BatchSizer(0.15, workers=4, most=1000))
    assert len(fanout.next_batches()) == 8
    fanout.resize(1)                        # another run came: nothing sent until room
    assert fanout.next_batches() == []
    for _ in range(7):
        fanout.finished(splits=2, seconds=0.2)
    assert len(fanout.next_batches()) == 1   # one finished above the new bound of 2
    fanout.resize(4)                         # it left again
    assert len(fanout.next_batches()) == 6


def _spec(index: int):
    from daskflow.inputs import ForeachFrame
    from daskflow.runtime.context import TaskSpec
    return TaskSpec("work", str(index + 2), (ForeachFrame("start", "1", 0, index, 100),))
