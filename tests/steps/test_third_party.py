"""A third-party step decorator, found through its package's entry point, runs its hooks."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from daskflow import Flow

PLUGIN = '''
"""A package outside daskflow that adds @stamp through the daskflow.step_decorators group."""
from contextlib import contextmanager
from dataclasses import dataclass

from daskflow.steps import StepDecorator, StepDecoratorError


class Stamp(StepDecorator):
    name = "stamp"

    @dataclass
    class Options:
        label: str = "none"
        rescue: bool = False

    def validate(self):
        if not self.options.label.isidentifier():
            raise StepDecoratorError(f"@stamp(label={self.options.label!r}) must be a name.")

    def plan(self, *, step):
        step.env["STAMP_LABEL"] = self.options.label   # on the driver, before the run

    @contextmanager
    def around_task(self, *, task):
        task.flow.stamp_before = task.step              # on the worker, around the body
        yield
        task.flow.stamp_after = f"{task.step}/{task.attempt}"

    def task_exception(self, *, task, error):
        if self.options.rescue:
            return {"rescued": error.type}
        return None


stamp = Stamp.decorator()
'''

FLOW = '''
import os
from daskflow import FlowSpec, step


class StampedFlow(FlowSpec):
    @step
    def start(self):
        self.label_seen = os.environ.get("STAMP_LABEL")
        self.next(self.boom)

    @step
    def boom(self):
        raise ValueError("boom")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    StampedFlow()
'''


def _install_plugin(folder: Path) -> None:
    """A real distribution on the path: its metadata and entry point, as pip leaves them."""
    (folder / "stampdeco.py").write_text(textwrap.dedent(PLUGIN))
    info = folder / "stampdeco-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: stampdeco\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[daskflow.step_decorators]\nstamp = stampdeco:Stamp\n")


def test_a_decorator_from_an_entry_point_runs_its_hooks(workdir, tmp_path_factory):
    plugins = tmp_path_factory.mktemp("site")
    _install_plugin(plugins)
    flow = workdir / "stamped.py"
    flow.write_text(FLOW)
    import os
    env = {**os.environ,  # the plugin's folder first; the user's own path kept
           "PYTHONPATH": os.pathsep.join(filter(None, [str(plugins),
                                                       os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, str(flow), "run", "--with",
                             "stamp:label=hello,rescue=true"], cwd=workdir, env=env,
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    run = Flow("StampedFlow").latest_run
    start = run["start"].task.data
    assert start.label_seen == "hello"                     # plan: the step's environment
    assert (start.stamp_before, start.stamp_after) == ("start", "start/0")  # around_task
    assert run["boom"].task.data.rescued == "builtins.ValueError"   # task_exception
    assert run["boom"].task.data.stamp_before == "boom"    # kept from the failed attempt

    bad = subprocess.run([sys.executable, str(flow), "run", "--with", "stamp:label=a b"],
                         cwd=workdir, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert "@stamp(label='a b') must be a name." in bad.stderr
    assert "Traceback" not in bad.stderr
    listed = subprocess.run([sys.executable, "-c", "from daskflow.steps import "
                             "known_step_decorators as k; print(k())"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert "'stamp'" in listed.stdout
