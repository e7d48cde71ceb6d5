"""The live terminal view (RichProgress): fed by hand, then for real in a tmux terminal."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from rich.console import Console

from daskflow.runtime import load_flow
from daskflow.runtime.display import choose_observer
from daskflow.runtime.events import PlainLog, interactive
from daskflow.runtime.progress import RichProgress

FLOWS = Path(__file__).parent.parent / "flows"


def view_on(buffer: io.StringIO, **kwargs) -> RichProgress:
    console = Console(file=buffer, force_terminal=True, width=110, height=40,
                      color_system="standard", legacy_windows=False)
    return RichProgress(console=console, refresh_per_second=20, **kwargs)


def plain(text: str) -> str:
    from rich.text import Text
    return Text.from_ansi(text).plain


def test_rows_follow_the_run():
    graph = load_flow(FLOWS / "report_demo.py")._flow_graph()
    buffer = io.StringIO()
    view = view_on(buffer)
    view.run_started(flow_name="ReportDemoFlow", run_id="7", datastore="/data", graph=graph)
    rows = _frame(view)
    assert all(f"· {s}" in rows for s in ("start", "train", "end"))  # waiting from the start
    view.cluster_started(name="default", description="local, 2 worker process(es)",
                         dashboard="http://127.0.0.1:8787/status")
    view.task_submitted(step="start", task_id="1", foreach_depth=0)
    assert "running" in _row(view, "start")
    view.task_finished(step="start", task_id="1", ok=True, foreach_depth=0)
    for task_id, step in (("2", "prepare"), ("3", "validate")):
        view.task_submitted(step=step, task_id=task_id, foreach_depth=0)
        view.task_finished(step=step, task_id=task_id, ok=True, foreach_depth=0)
    view.foreach_expanded(step="prepare", target="train", count=4)
    for i in range(4):
        view.task_submitted(step="train", task_id=str(4 + i), foreach_depth=1)
    view.task_submitted(step="collect", task_id="8", foreach_depth=0)
    assert "queued" in _row(view, "collect")  # handed to Dask, waiting for its inputs
    view.task_output(pathspec="ReportDemoFlow/7/train/4", stream="stdout",
                     text="epoch 1\nepoch 2\n")
    view.task_finished(step="train", task_id="4", ok=True, foreach_depth=1)
    view.task_finished(step="train", task_id="5", ok=True, foreach_depth=1)
    train = _row(view, "train")
    assert "running" in train and "2/4" in train
    view.task_finished(step="train", task_id="6", ok=False, foreach_depth=1)
    view.cluster_stopped(name="default", seconds=3.5)
    failure = type("F", (), {"pathspec": "ReportDemoFlow/7/train/6", "type_name": "ValueError"})
    view.run_finished(flow_name="ReportDemoFlow", run_id="7", successful=False, tasks=5,
                      seconds=3.0, failure=failure(), report="/data/_report.html")

    out = buffer.getvalue()
    text = plain(out)
    # Task output above the rows, prefixed with the task; failures in red with the pathspec.
    assert "[7/train/4] epoch 1" in text and "[7/train/4] epoch 2" in text
    assert "✘ Task ReportDemoFlow/7/train/6 failed." in text
    assert "\x1b[1;31m" in out  # bold red
    assert "Cluster default started: local, 2 worker process(es); dashboard " \
           "http://127.0.0.1:8787/status" in text
    assert "Run failed: task ReportDemoFlow/7/train/6 raised ValueError." in text
    assert "Run report: /data/_report.html" in text
    # The last frame stays on screen with the final states.
    last = text[text.rindex("ReportDemoFlow/7  "):]
    assert "✘ train    failed" in last and "3/4" in last and "1 cancelled" in last
    assert "– publish  not run" in last and "✔ prepare  done" in last
    assert "closed after 3.5s" in last


def test_without_a_graph_steps_appear_as_they_run():
    buffer = io.StringIO()
    view = view_on(buffer)
    view.run_started(flow_name="F", run_id="1", datastore="/d")
    view.task_submitted(step="start", task_id="1", foreach_depth=0)
    view.task_finished(step="start", task_id="1", ok=True, foreach_depth=0)
    view.run_finished(flow_name="F", run_id="1", successful=True, tasks=1, seconds=0.1)
    text = plain(buffer.getvalue())
    assert "✔ start done" in text and "Done! Run F/1 finished 1 tasks" in text


def test_retries_and_task_started_events():
    buffer = io.StringIO()
    view = view_on(buffer)
    view.run_started(flow_name="F", run_id="1", datastore="/d")
    view.task_submitted(step="a", task_id="1", foreach_depth=0)
    view.task_submitted(step="b", task_id="2", foreach_depth=0)
    view.task_started(step="a", task_id="1", attempt=0)
    assert "running" in _row(view, "a") and "queued" in _row(view, "b")
    view.task_finished(step="a", task_id="1", ok=False, foreach_depth=0, attempt=0,
                       retrying=True)
    assert "1 retried" in _row(view, "a")
    view.close()
    assert "↻ Task F/1/a/1 failed (attempt 0); retrying." in plain(buffer.getvalue())


def test_choose_observer(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setattr(sys, "stdout", Tty())
    assert interactive()
    assert isinstance(choose_observer(), RichProgress)
    assert isinstance(choose_observer(quiet=True), PlainLog)  # quiet: only task output
    monkeypatch.setenv("CI", "true")
    assert isinstance(choose_observer(), PlainLog)
    monkeypatch.delenv("CI")
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # piped
    assert isinstance(choose_observer(), PlainLog)


DRIVER = textwrap.dedent("""
    import sys
    from daskflow.runtime import Runner, load_flow
    from daskflow.runtime.display import choose_observer

    if __name__ == "__main__":  # Dask's worker processes import this file again
        flow = load_flow(sys.argv[1])
        observer = choose_observer()
        print("observer:", type(observer).__name__)
        if hasattr(observer, "_read_graph") and not observer.steps:
            observer._read_graph(flow._flow_graph())  # until Runner passes graph= itself
        try:
            Runner(flow, observer=observer).run(width=6, nap=0.5, fail=int(sys.argv[2]))
        except Exception as exc:
            print("raised", type(exc).__name__)
        print("EXITED")
""")


@pytest.mark.parametrize("fail", [-1, 3])
def test_live_view_in_a_real_terminal(tmux, tmp_path, fail):
    """Run a flow in a tmux terminal (a real TTY) and read the screen as a person would."""
    driver = tmp_path / "drive.py"
    driver.write_text(DRIVER)
    session = f"daskflow-test-{time.time_ns()}"
    cmd = f"cd {tmp_path} && {sys.executable} {driver} {FLOWS / 'report_demo.py'} {fail}; " \
          f"sleep 120"
    # pytest exports COLUMNS=80 and LINES=24; a person's shell has the real size.
    subprocess.run([tmux, "new-session", "-d", "-s", session, "-x", "120", "-y", "40",
                    "-e", "TERM=xterm-256color", "-e", "CI=", "-e", "COLUMNS=120",
                    "-e", "LINES=40", cmd], check=True)
    try:
        screens = []
        deadline = time.time() + 120
        while time.time() < deadline:
            screen = subprocess.run([tmux, "capture-pane", "-p", "-e", "-t", session],
                                    capture_output=True, text=True, check=True).stdout
            screens.append(screen)
            if "EXITED" in screen:
                break
            time.sleep(0.5)
    finally:
        subprocess.run([tmux, "kill-session", "-t", session], check=False)
    final = screens[-1]
    text = plain(final)
    assert "observer: RichProgress" in text
    assert "EXITED" in text, text
    # While it ran, a person saw the foreach step move with a spinner and a count.
    during = [plain(s) for s in screens if "running" in plain(s)]
    assert during, "never saw a step running"
    assert any("/6" in s for s in during)
    assert "Cluster default started: local" in text and "dashboard http://127.0.0.1:" in text
    if fail < 0:
        assert "[" in text and "/train/" in text and "] trained model" in text  # task output
        for step in ("start", "prepare", "validate", "collect", "join", "publish", "end"):
            assert f"✔ {step}" in text, step
        assert "6/6" in text
        assert "– retrain  skipped" in text
        assert "Done! Run ReportDemoFlow/" in text
    else:
        assert "✘ Task ReportDemoFlow/" in text and "/train/" in text
        assert "✘ train" in text and "failed" in text
        assert "Run failed: task ReportDemoFlow/" in text and "raised ValueError" in text
        line = next(raw for raw in final.splitlines() if "✘ Task" in raw)
        assert "31m" in line[:line.index("✘")]  # red (SGR 31), as the person sees it
    assert "○ cluster default" in text and "closed after" in text


def _frame(view: RichProgress) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=110, color_system=None).print(view._render_locked())
    return buffer.getvalue()


def _row(view: RichProgress, step: str) -> str:
    return next(line for line in _frame(view).splitlines()
                if line[2:].split(" ", 1)[0] == step)
