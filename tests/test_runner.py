"""Running flows in-process, from a script or notebook, without the CLI."""

from __future__ import annotations

import pytest

from daskflow import Runner
from daskflow.exceptions import ParameterError, RunFailed
from daskflow.runtime import load_flow

from .conftest import FLOWS


def test_runner_returns_the_run(workdir):
    run = Runner(str(FLOWS / "foreach.py"), quiet=True, max_num_splits=20).run(n=20)
    assert run.successful
    assert run["join"].task.data.total == 2 * sum(range(20))
    assert run.record["max_num_splits"] == 20


def test_flow_class_run_shortcut(workdir):
    flow_cls = load_flow(FLOWS / "switch.py")
    run = flow_cls.run(size=100)
    assert run.data.final == "took big"


def test_failed_run_raises_with_the_run_attached(workdir):
    with pytest.raises(RunFailed, match="raised ValueError: the answer is not 42") as info:
        Runner(str(FLOWS / "failing.py"), quiet=True).run()
    run = info.value.run
    assert not run.successful
    assert run["explode"].task.exception.type == "builtins.ValueError"


def test_bad_parameters_fail_before_anything_is_stored(workdir):
    runner = Runner(str(FLOWS / "foreach.py"), quiet=True)
    with pytest.raises(ParameterError, match="Unknown parameter 'nn'.*Did you mean 'n'"):
        runner.run(nn=3)
    with pytest.raises(ParameterError, match="parameter 'n': expected int"):
        runner.run(n=2.5)
    assert not (workdir / ".daskflow").exists()


def test_runner_on_an_existing_scheduler(workdir, scheduler):
    run = Runner(str(FLOWS / "nested_foreach.py"), scheduler_address=scheduler,
                 quiet=True).run(width=2)
    assert run["outer_join"].task.data.all_labels == ["x0", "x1", "y0", "y1"]


def test_an_observer_that_shows_starts_gets_a_start_per_task(workdir):
    from daskflow.runtime.events import PlainLog, RunObserver

    class Starts(RunObserver):
        def __init__(self) -> None:
            self.started: list[tuple[str, str]] = []

        def task_started(self, *, step, task_id, attempt=0, **extra):
            self.started.append((step, task_id))

    assert not PlainLog().wants_task_started()  # plain lines do not need the messages
    observer = Starts()
    assert observer.wants_task_started()
    run = Runner(str(FLOWS / "foreach.py"), observer=observer, max_num_splits=20).run(n=4)
    assert sorted(observer.started) == sorted((s.id, t.id) for s in run for t in s)


def test_a_failed_run_raised_in_process_shows_the_steps_traceback(workdir):
    import traceback

    with pytest.raises(RunFailed) as info:
        Runner(str(FLOWS / "failing.py"), quiet=True).run()
    cause = info.value.__cause__
    assert cause is not None and 'failing.py", line 15, in explode' in str(cause)
    shown = "".join(traceback.format_exception(info.value))
    assert shown.index("in explode") < shown.index("RunFailed")  # the step's code first


def test_import_daskflow_stays_light():
    # a notebook, `show` and `check` import daskflow: distributed and rich come only when
    # a run or a display needs them
    import subprocess
    import sys
    code = ("import sys, daskflow; print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('distributed', 'bokeh', 'rich', 's3fs', 'IPython')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
