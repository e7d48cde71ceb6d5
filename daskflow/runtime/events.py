"""What a run reports as it goes, to whoever shows it.

The runtime calls a :class:`RunObserver`'s methods with keyword-only
arguments; a display (plain lines, a live progress view, a report writer)
subclasses it and overrides what it needs.  :class:`PlainLog` is the default:
one timestamped line per event, fit for CI logs and pipes.
"""

from __future__ import annotations

import sys
import time
from typing import Any


class RunObserver:
    """Receives a run's events; every method is optional to override."""

    def run_started(self, *, flow_name: str, run_id: str, datastore: str) -> None: ...

    def cluster_started(self, *, name: str, description: str, dashboard: str | None) -> None: ...

    def cluster_stopped(self, *, name: str, seconds: float) -> None: ...

    def task_submitted(self, *, step: str, task_id: str, foreach_depth: int) -> None: ...

    def task_finished(self, *, step: str, task_id: str, ok: bool,
                      foreach_depth: int) -> None: ...

    def foreach_expanded(self, *, step: str, target: str, count: int) -> None: ...

    def task_output(self, *, pathspec: str, stream: str, text: str) -> None: ...

    def run_finished(self, *, flow_name: str, run_id: str, successful: bool, tasks: int,
                     seconds: float, failure: Any = None) -> None: ...

    def close(self) -> None: ...


class PlainLog(RunObserver):
    """Timestamped lines on stdout; task output prefixed with its pathspec.

    ``quiet`` keeps only the tasks' own output and errors.
    """

    def __init__(self, quiet: bool = False, stream_output: bool = True) -> None:
        self.quiet = quiet
        self.stream_output = stream_output
        self.run_id = ""
        self.foreach: dict[str, list[int]] = {}

    def line(self, text: str) -> None:
        if not self.quiet:
            sys.stdout.write(f"{time.strftime('%H:%M:%S')} {text}\n")
            sys.stdout.flush()

    def run_started(self, *, flow_name: str, run_id: str, datastore: str) -> None:
        self.run_id = run_id
        self.line(f"Workflow starting (run-id {run_id}): {flow_name}, datastore {datastore}")

    def cluster_started(self, *, name: str, description: str, dashboard: str | None) -> None:
        self.line(f"Cluster '{name}' started: {description}; dashboard {dashboard}")

    def cluster_stopped(self, *, name: str, seconds: float) -> None:
        self.line(f"Cluster '{name}' closed after {seconds:.1f}s.")

    def foreach_expanded(self, *, step: str, target: str, count: int) -> None:
        self.foreach[target] = [0, count]
        self.line(f"Foreach '{step}' fans out to {count} tasks of '{target}'.")

    def task_finished(self, *, step: str, task_id: str, ok: bool, foreach_depth: int) -> None:
        progress = self.foreach.get(step)
        if foreach_depth == 0 or progress is None:
            self.line(f"Task {self.run_id}/{step}/{task_id} {'finished' if ok else 'FAILED'}.")
            return
        progress[0] += 1
        done, total = progress
        if done == total or done % max(1, total // 10) == 0:
            self.line(f"Step '{step}': {done}/{total} tasks finished.")

    def task_output(self, *, pathspec: str, stream: str, text: str) -> None:
        if not self.stream_output:
            return
        out = sys.stderr if stream == "stderr" else sys.stdout
        prefix = "[" + pathspec.split("/", 1)[1] + "]"
        out.write("".join(f"{prefix} {line}\n" for line in text.rstrip("\n").split("\n")))
        out.flush()

    def run_finished(self, *, flow_name: str, run_id: str, successful: bool, tasks: int,
                     seconds: float, failure: Any = None) -> None:
        if successful:
            self.line(f"Done! Run {flow_name}/{run_id} finished {tasks} tasks in "
                      f"{seconds:.1f}s.")
