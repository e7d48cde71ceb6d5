"""The live view and the plain log at 100,000 splits: counts per step, never a row,
a line or a kept object per task."""

from __future__ import annotations

import io
import tracemalloc

from rich.console import Console
from rich.text import Text

from daskflow.runtime.events import PlainLog, RunObserver
from daskflow.runtime.progress import MAX_LISTED, RichProgress, TaskBits

N = 100_000


def view_on(buffer: io.StringIO) -> RichProgress:
    console = Console(file=buffer, force_terminal=True, width=120, height=40,
                      color_system="standard", legacy_windows=False)
    return RichProgress(console=console, refresh_per_second=20)


def frame(view: RichProgress) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=120, color_system=None).print(view._render_locked())
    return buffer.getvalue()


def row(view: RichProgress, step: str) -> str:
    return next(line for line in frame(view).splitlines()
                if line[2:].split(" ", 1)[0] == step)


def test_task_bits_is_a_set_of_ids():
    bits = TaskBits()
    assert bits.add("3") and not bits.add("3") and "3" in bits and "4" not in bits
    assert bits.add("100000") and "100000" in bits and "99999" not in bits
    assert bits.discard("3") and not bits.discard("3") and "3" not in bits
    assert not bits.discard("123456789")  # beyond what it holds
    assert bits.add("gang-a") and "gang-a" in bits and bits.discard("gang-a")
    assert bits.nbytes <= 2 * (100_000 // 8 + 1)


def test_a_wide_foreach_is_one_row_of_counts_and_keeps_no_object_per_task():
    buffer = io.StringIO()
    view = view_on(buffer)
    view.run_started(flow_name="F", run_id="1", datastore="/d")
    view.close()  # no live refresh thread: frames are drawn by hand below
    view.task_submitted(step="start", task_id="1", foreach_depth=0)
    view.task_finished(step="start", task_id="1", ok=True, foreach_depth=0)
    view.foreach_expanded(step="start", target="fan", count=N)
    ids = [str(i) for i in range(2, N + 2)]
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for task_id in ids:
        view.task_submitted(step="fan", task_id=task_id, foreach_depth=1)
    for task_id in ids[:N // 2]:
        view.task_started(step="fan", task_id=task_id)
        view.task_finished(step="fan", task_id=task_id, ok=True, foreach_depth=1)
    for task_id in ids[N // 2:N // 2 + 4]:
        view.task_started(step="fan", task_id=task_id)
    grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    # Three bits per task id (submitted, running, ended), well under 100 kB for 100,000
    # tasks; a set of their ids would be megabytes.
    assert grown < 200_000, grown
    text = frame(view)
    assert len(text.splitlines()) < 10  # header, two rows: never one per task
    work = row(view, "fan")
    assert f"{N // 2}/{N}" in work and "4 running" in work
    assert "50000 in flight" in text


def test_batched_events_give_the_same_counts_as_single_ones():
    one, many = view_on(io.StringIO()), view_on(io.StringIO())
    ids = [str(i) for i in range(1, 1001)]
    failed = ids[10:20]
    for view in (one, many):
        view.foreach_expanded(step="start", target="fan", count=1000)
    for task_id in ids:
        one.task_submitted(step="fan", task_id=task_id, foreach_depth=1)
        one.task_finished(step="fan", task_id=task_id, ok=task_id not in failed,
                          foreach_depth=1)
    for start in range(0, 1000, 50):  # batches of 50, as a batching driver sends them
        batch = ids[start:start + 50]
        many.tasks_submitted(step="fan", task_ids=batch, foreach_depth=1)
        many.tasks_finished(step="fan", task_ids=batch, foreach_depth=1,
                            failed=[t for t in batch if t in failed])
    a, b = one.steps["fan"], many.steps["fan"]
    assert (a.ok, a.failed, a.pending, a.first_failed) == \
           (b.ok, b.failed, b.pending, b.first_failed) == \
           (990, 10, 0, [f"//fan/{t}" for t in failed[:MAX_LISTED]])  # no run_started: no names


def test_the_default_batched_entry_calls_the_single_one():
    seen = []

    class Record(RunObserver):
        def task_submitted(self, *, step, task_id, foreach_depth, **extra):
            seen.append(("submitted", step, task_id))

        def task_finished(self, *, step, task_id, ok, foreach_depth, **extra):
            seen.append(("finished", step, task_id, ok))

    observer = Record()
    observer.tasks_submitted(step="w", task_ids=["1", "2"], foreach_depth=1)
    observer.tasks_finished(step="w", task_ids=["1", "2"], foreach_depth=1, failed=["2"])
    assert seen == [("submitted", "w", "1"), ("submitted", "w", "2"),
                    ("finished", "w", "1", True), ("finished", "w", "2", False)]


def test_failures_and_retries_are_listed_up_to_a_few_then_counted():
    buffer = io.StringIO()
    view = view_on(buffer)
    view.run_started(flow_name="F", run_id="1", datastore="/d")
    view.close()
    ids = [str(i) for i in range(1, 1001)]
    view.tasks_submitted(step="fan", task_ids=ids, foreach_depth=1)
    for task_id in ids:
        view.task_finished(step="fan", task_id=task_id, ok=False, foreach_depth=1,
                           attempt=0, retrying=True)
    view.tasks_finished(step="fan", task_ids=ids, foreach_depth=1, failed=ids[:300])
    out = buffer.getvalue()
    assert out.count("retrying.") == MAX_LISTED and out.count(" failed.") == MAX_LISTED
    assert "more retried tasks of fan" in out and "more failed tasks of fan" in out
    work = row(view, "fan")
    assert "1000 retried" in work and "F/1/fan/1 (+299 more)" in work
    assert "1000/1000" in work


def test_a_late_started_message_does_not_bring_a_finished_task_back():
    view = view_on(io.StringIO())
    view.task_submitted(step="a", task_id="1", foreach_depth=0)
    view.task_finished(step="a", task_id="1", ok=True, foreach_depth=0)
    view.task_started(step="a", task_id="1")  # through the scheduler, after the result
    assert view.steps["a"].pending == 0 and "done" in row(view, "a")


def test_a_reused_task_finishes_without_being_submitted():
    view = view_on(io.StringIO())
    view.foreach_expanded(step="start", target="fan", count=3)
    view.task_finished(step="fan", task_id="2", ok=True, foreach_depth=1)  # resume's clone
    view.tasks_submitted(step="fan", task_ids=["3", "4"], foreach_depth=1)
    assert view.steps["fan"].pending == 2 and "1/3" in row(view, "fan")


def test_plain_log_prints_a_few_lines_for_a_wide_step(capsys):
    log = PlainLog()
    log.run_started(flow_name="F", run_id="1", datastore="/d")
    log.foreach_expanded(step="start", target="fan", count=N)
    ids = [str(i) for i in range(2, N + 2)]
    log.tasks_finished(step="fan", task_ids=ids, foreach_depth=1)
    log.tasks_finished(step="inner", task_ids=ids, foreach_depth=1)  # no known total
    for task_id in ids[:1000]:
        log.task_finished(step="fan", task_id=task_id, ok=False, foreach_depth=1,
                          attempt=0, retrying=True)
    log.run_finished(flow_name="F", run_id="1", successful=True, tasks=2 * N + 1,
                     seconds=1.0)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) < 60, len(lines)
    assert any(f"Step 'fan': {N}/{N} tasks finished." in line for line in lines)
    assert any(f"Step 'inner': {N} tasks finished." in line for line in lines)
    assert sum("retrying." in line for line in lines) == PlainLog.MAX_LISTED
    assert any("0 more task(s) failed and 990 more attempt(s) were retried" in line
               for line in lines)


def test_rate_and_time_left_come_from_the_last_seconds():
    from daskflow.runtime.progress import _clock, _rate, _Step

    step = _Step("fan")
    step.ok = 100
    assert step.rate(1000.0) is None  # one sample: no rate yet
    step.ok = 600
    assert step.rate(1002.0) == 250.0
    step.ok = 700
    assert step.rate(1020.0) == 100 / 18  # older than the window: only the last two count
    assert (_rate(250.0), _rate(2.5), _rate(0.1)) == ("250/s", "2.5/s", "6/min")
    assert _clock(99_400 / 250.0) == "0:06:37"


def test_a_retried_gang_node_without_an_attempt_number_is_a_retry():
    buffer = io.StringIO()
    view = view_on(buffer)
    view.run_started(flow_name="F", run_id="1", datastore="/d")
    view.close()
    view.task_submitted(step="train", task_id="3", foreach_depth=0)
    view.task_finished(step="train", task_id="3", ok=False, foreach_depth=0, retrying=True)
    out = Text.from_ansi(buffer.getvalue()).plain
    assert "F/1/train/3 failed; retrying." in out and "failed." not in out
    assert view.steps["train"].failed == 0 and view.steps["train"].pending == 1
