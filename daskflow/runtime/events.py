"""What a run reports as it goes, to whoever shows it.

The runtime calls a :class:`RunObserver`'s methods with keyword-only
arguments; a display (plain lines, a live progress view, a report writer)
subclasses it and overrides what it needs.  :class:`PlainLog` is the default:
one timestamped line per event, fit for CI logs and pipes;
:class:`~daskflow.runtime.progress.RichProgress` is the live view for an
interactive terminal.  :func:`~daskflow.runtime.display.choose_observer` picks between them.

Arguments marked *optional* below were added after the first version: the
runtime may leave them out, so an observer must give them defaults, and an
observer that overrides a method should accept ``**extra`` so that later
additions do not break it.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Collection, Sequence
from typing import Any


class RunObserver:
    """Receives a run's events; every method is optional to override.

    >>> class Count(RunObserver):
    ...     done = 0
    ...     def task_finished(self, *, step, task_id, ok, foreach_depth, **extra):
    ...         self.done += ok
    """

    def run_started(self, *, flow_name: str, run_id: str, datastore: str,
                    graph: Any = None, **extra: Any) -> None:
        """The run is recorded.  *optional* ``graph``: the :class:`FlowGraph`."""

    def cluster_started(self, *, name: str, description: str, dashboard: str | None,
                        step: str | None = None, backend: str | None = None,
                        workers: int | None = None, **extra: Any) -> None:
        """A cluster is up.  *optional*: the ``step`` it serves (None for the run's
        default cluster), its ``backend`` name and its number of ``workers``."""

    def cluster_stopped(self, *, name: str, seconds: float, **extra: Any) -> None:
        """The cluster ``name`` was closed after ``seconds``."""

    def task_submitted(self, *, step: str, task_id: str, foreach_depth: int,
                       **extra: Any) -> None:
        """The task is handed to Dask (it may wait there for its inputs)."""

    def task_started(self, *, step: str, task_id: str, attempt: int = 0,
                     **extra: Any) -> None:
        """*optional event*: the task's attempt began to run on a worker. Sent only to
        an observer that overrides this method: each one is a message from the worker
        through the scheduler, which a large foreach feels."""

    def wants_task_started(self) -> bool:
        return type(self).task_started is not RunObserver.task_started

    def task_finished(self, *, step: str, task_id: str, ok: bool, foreach_depth: int,
                      attempt: int | None = None, retrying: bool = False,
                      **extra: Any) -> None:
        """The task ended.  *optional*: its ``attempt``; ``retrying`` when it failed
        and another attempt follows (the task is not finished yet); ``cached`` (True)
        when it did not run but was taken from an earlier run by ``@cache``."""

    def task_caught(self, *, step: str, task_id: str, **extra: Any) -> None:
        """*optional event*: the task failed for good and ``@catch`` caught it; it is
        then reported finished (``ok``) as the flow goes on. Sent before that."""

    def tasks_submitted(self, *, step: str, task_ids: Sequence[str], foreach_depth: int,
                        **extra: Any) -> None:
        """Several tasks of ``step`` were handed to Dask at once (e.g. one batch of
        foreach splits).  The default calls :meth:`task_submitted` for each; a display
        that keeps counts overrides it to take the batch in one go."""
        for task_id in task_ids:
            self.task_submitted(step=step, task_id=task_id, foreach_depth=foreach_depth)

    def tasks_finished(self, *, step: str, task_ids: Sequence[str], foreach_depth: int,
                       failed: Collection[str] = (), **extra: Any) -> None:
        """Several tasks of ``step`` ended at once (e.g. one batch of foreach splits):
        ``task_ids`` all of them, ``failed`` those of them that failed for good (a
        failed attempt that is retried is still sent alone, as :meth:`task_finished`
        with ``retrying=True``).  The default calls :meth:`task_finished` for each.

        >>> class Count(RunObserver):
        ...     done = 0
        ...     def task_finished(self, *, step, task_id, ok, foreach_depth, **extra):
        ...         self.done += ok
        >>> view = Count()
        >>> view.tasks_finished(step="train", task_ids=["4", "5", "6"], foreach_depth=1,
        ...                     failed=["6"])
        >>> view.done
        2
        """
        failed = failed if isinstance(failed, (set, frozenset)) else set(failed)
        for task_id in task_ids:
            self.task_finished(step=step, task_id=task_id, ok=task_id not in failed,
                               foreach_depth=foreach_depth, **extra)

    def foreach_expanded(self, *, step: str, target: str, count: int, **extra: Any) -> None:
        """A foreach ``step`` fans out to ``count`` tasks of ``target``."""

    def task_output(self, *, pathspec: str, stream: str, text: str, **extra: Any) -> None:
        """Complete lines a task printed on ``stream`` (``stdout`` or ``stderr``)."""

    def run_finished(self, *, flow_name: str, run_id: str, successful: bool, tasks: int,
                     seconds: float, failure: Any = None, report: str | None = None,
                     **extra: Any) -> None:
        """The run ended.  *optional* ``report``: where its HTML run report is."""

    def close(self) -> None:
        """Release the display (idempotent); the runtime calls it last."""


class Observers(RunObserver):
    """Several observers heard as one: each event goes to each of them, in order (the
    run's display, and the feed of the flow page on the Dask dashboard).

    >>> class Count(RunObserver):
    ...     done = 0
    ...     def task_finished(self, *, step, task_id, ok, foreach_depth, **extra):
    ...         self.done += ok
    >>> a, b = Count(), Count()
    >>> Observers(a, b).task_finished(step="s", task_id="1", ok=True, foreach_depth=0)
    >>> a.done, b.done
    (1, 1)
    """

    def __init__(self, *observers: RunObserver) -> None:
        self.observers = observers

    def wants_task_started(self) -> bool:
        return any(o.wants_task_started() for o in self.observers)


def _to_each(name: str) -> Any:
    def event(self: Observers, **kwargs: Any) -> None:
        for observer in self.observers:
            getattr(observer, name)(**kwargs)
    event.__name__ = event.__qualname__ = name
    event.__doc__ = getattr(RunObserver, name).__doc__
    return event


for _name in ("run_started", "cluster_started", "cluster_stopped", "task_submitted",
              "task_started", "task_finished", "task_caught", "tasks_submitted",
              "tasks_finished", "foreach_expanded", "task_output", "run_finished", "close"):
    setattr(Observers, _name, _to_each(_name))


class PlainLog(RunObserver):
    """Timestamped lines on stdout; task output prefixed with its pathspec.

    ``quiet`` keeps only the tasks' own output and errors.  A wide step gets a few
    progress lines, never one per task: a foreach target's count at every tenth of
    its splits, another step inside a foreach at 1, 2, 5, 10, 20, 50, ... tasks, and
    at most ``MAX_LISTED`` failed attempts of a step are named one by one (the rest
    are counted, and the counts printed when the run ends).
    """

    MAX_LISTED = 10

    def __init__(self, quiet: bool = False, stream_output: bool = True) -> None:
        self.quiet = quiet
        self.stream_output = stream_output
        self.flow_name = ""
        self.run_id = ""
        self.foreach: dict[str, list[int]] = {}
        self.finished: dict[str, int] = {}        # per step inside a foreach, no known total
        self.listed: dict[str, int] = {}          # failed attempts named so far, per step
        self.unlisted: dict[str, list[int]] = {}  # per step: [failed, retried] not named
        self.caught: dict[str, set[str]] = {}     # per step: tasks @catch caught...
        self.caught_done: dict[str, int] = {}     # ... and how many of them finished
        self.retried: Counter[str] = Counter()    # attempts retried, by cause
        self.loops: set[str] = set()              # steps that may run again (no total)
        self.cached: dict[str, int] = {}          # per step: tasks taken from the cache

    def line(self, text: str) -> None:
        if not self.quiet:
            sys.stdout.write(f"{time.strftime('%H:%M:%S')} {text}\n")
            sys.stdout.flush()

    def run_started(self, *, flow_name: str, run_id: str, datastore: str,
                    graph: Any = None, **extra: Any) -> None:
        self.flow_name = flow_name
        self.run_id = run_id
        self.loops = {node.name for node in graph or () if node.recursive}
        self.line(f"Workflow starting (run-id {run_id}): {flow_name}, datastore {datastore}")

    def cluster_started(self, *, name: str, description: str, dashboard: str | None,
                        step: str | None = None, **extra: Any) -> None:
        where = f" for step '{step}'" if step else ""
        self.line(f"Cluster '{name}'{where} started: {description}; "
                  f"dashboard {dashboard or '(none)'}")

    def cluster_stopped(self, *, name: str, seconds: float, **extra: Any) -> None:
        self.line(f"Cluster '{name}' closed after {seconds:.1f}s.")

    def foreach_expanded(self, *, step: str, target: str, count: int, **extra: Any) -> None:
        progress = self.foreach.setdefault(target, [0, 0])
        progress[1] += count  # a nested foreach expands once per outer split
        self.line(f"Foreach '{step}' fans out to {count} tasks of '{target}'.")

    def task_finished(self, *, step: str, task_id: str, ok: bool, foreach_depth: int,
                      attempt: int | None = None, retrying: bool = False,
                      **extra: Any) -> None:
        pathspec = f"{self.run_id}/{step}/{task_id}"
        if retrying or not ok:
            cause = extra.get("cause")
            if retrying:
                self.retried[cause or "unknown"] += 1
            if self._named(step, retrying):
                which = attempt_words(attempt, cause)
                self.line(f"Task {pathspec} failed{which}; retrying."
                          if retrying else f"Task {pathspec} FAILED.")
            return
        caught = task_id in self.caught.get(step, ())
        if caught:
            self.caught_done[step] = self.caught_done.get(step, 0) + 1
        if extra.get("cached"):
            self.cached[step] = self.cached.get(step, 0) + 1
        if foreach_depth == 0:
            self.line(f"Task {pathspec} failed; @catch caught it and the flow goes on."
                      if caught else f"Task {pathspec} reused from the cache (@cache)."
                      if extra.get("cached") else f"Task {pathspec} finished.")
            return
        count = self.caught_done.get(step, 0)
        notes = [f"{count} of them failed, caught by @catch"] if count else []
        if self.cached.get(step):
            notes.append(f"{self.cached[step]} of them reused from the cache")
        of_them = f" ({'; '.join(notes)})" if notes else ""
        progress = None if step in self.loops else self.foreach.get(step)
        if progress is None:  # no known total: a step after a foreach's first, or a loop
            done = self.finished[step] = self.finished.get(step, 0) + 1
            if _milestone(done):
                self.line(f"Step '{step}': {done} tasks finished{of_them}.")
            return
        progress[0] += 1
        done, total = progress
        if done == total or done % max(1, total // 10) == 0:
            self.line(f"Step '{step}': {done}/{total} tasks finished{of_them}.")

    def task_caught(self, *, step: str, task_id: str, **extra: Any) -> None:
        self.caught.setdefault(step, set()).add(task_id)

    def _named(self, step: str, retrying: bool) -> bool:
        """Whether this failed attempt of ``step`` gets a line of its own."""
        listed = self.listed.get(step, 0)
        if listed < self.MAX_LISTED:
            self.listed[step] = listed + 1
            return True
        counts = self.unlisted.setdefault(step, [0, 0])
        if counts == [0, 0]:
            self.line(f"Step '{step}': more failed attempts; they are counted, "
                      f"not listed.")
        counts[1 if retrying else 0] += 1
        return False

    def task_output(self, *, pathspec: str, stream: str, text: str, **extra: Any) -> None:
        if not self.stream_output:
            return
        out = sys.stderr if stream == "stderr" else sys.stdout
        prefix = "[" + pathspec.split("/", 1)[1] + "]"
        out.write("".join(f"{prefix} {line}\n" for line in text.rstrip("\n").split("\n")))
        out.flush()

    def run_finished(self, *, flow_name: str, run_id: str, successful: bool, tasks: int,
                     seconds: float, failure: Any = None, report: str | None = None,
                     **extra: Any) -> None:
        for step, (failed, retried) in self.unlisted.items():
            self.line(f"Step '{step}': {failed} more task(s) failed and {retried} more "
                      f"attempt(s) were retried than listed above.")
        if self.retried:
            self.line(retried_note(self.retried))
        if successful:
            caught = sum(self.caught_done.values())
            self.line(f"Done! Run {flow_name}/{run_id} finished {tasks} tasks in "
                      f"{seconds:.1f}s{caught_note(caught)}{cached_note(self.cached)}.")
        for text in cluster_usage_lines(extra.get("clusters") or [],
                                        priced_only=not successful):
            self.line(text)
        if report:
            self.line(f"Run report: {report}")


def attempt_words(attempt: int | None, cause: str | None) -> str:
    """`` (attempt 0, out-of-memory)``: which attempt failed, and why, when known."""
    said = [f"attempt {attempt}"] if attempt is not None else []
    if cause:
        said.append(cause)
    return f" ({', '.join(said)})" if said else ""


def retried_note(retried: Counter[str]) -> str:
    """The end-of-run line on attempts that failed and were retried, by cause:
    ``Retried 3 failed attempts: 2 worker-lost, 1 out-of-memory.``"""
    total = sum(retried.values())
    causes = ", ".join(f"{count} {cause}" for cause, count in retried.most_common())
    return f"Retried {total} failed attempt{'s' if total != 1 else ''}: {causes}."


def _milestone(count: int) -> bool:
    """1, 2, 5, 10, 20, 50, 100, ...: a few progress lines however wide a step is."""
    digits = str(count)
    return digits[0] in "125" and digits[1:].strip("0") == ""


def caught_note(caught: int) -> str:
    """``, 2 of them failed and were caught by @catch`` (nothing for 0)."""
    if not caught:
        return ""
    return f", {caught} of them failed and {'was' if caught == 1 else 'were'} caught by @catch"


def cached_note(cached: dict[str, int]) -> str:
    """`` and reused 5 from the cache (start 1, work 4)`` per step (nothing for none).

    >>> cached_note({"start": 1, "work": 4})
    ' and reused 5 from the cache (start 1, work 4)'
    """
    total = sum(cached.values())
    if not total:
        return ""
    steps = ", ".join(f"{step} {count}" for step, count in cached.items() if count)
    return f" and reused {total} from the cache ({steps})"


def cluster_usage_lines(clusters: list[dict[str, Any]], *,
                        priced_only: bool = False) -> list[str]:
    """The end-of-run summary of each cluster: worker-seconds held and used, estimated cost.
    ``priced_only`` (after a failed run, where use says little): only clusters that cost
    something.

    >>> cluster_usage_lines([{"name": "step-1", "backend": "slurm", "step": "train",
    ...     "worker_seconds_held": 20.0, "worker_seconds_used": 5.0, "cost": 0.0111,
    ...     "currency": "USD"}])
    ['Cluster step-1 (slurm, train): 20.0 worker-s held, 5.0 used (25%), est. cost 0.0111 USD']
    """
    lines = []
    for c in clusters:
        held, used = c.get("worker_seconds_held"), c.get("worker_seconds_used")
        if held is None:
            continue
        share = f" ({100 * used / held:.0f}%)" if held and used is not None else ""
        cost = c.get("cost")
        if priced_only and not cost:
            continue
        if cost is None:
            money = ", no price configured"
        elif cost == 0:  # a free backend (local by default): nothing to say
            money = ""
        else:
            money = f", est. cost {cost:.4f} {c.get('currency') or ''}".rstrip()
        where = ", ".join(str(x) for x in (c.get("backend"), c.get("step")) if x)
        lines.append(f"Cluster {c.get('name')} ({where}): {held:.1f} worker-s held, "
                     f"{used if used is not None else 0:.1f} used{share}{money}")
    return lines


def interactive(stream: Any = None) -> bool:
    """True when ``stream`` (default stdout) is a terminal a person watches.

    Not in CI (``CI`` set), not with ``TERM=dumb``, not when piped.
    """
    stream = sys.stdout if stream is None else stream
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
    return tty and os.environ.get("TERM") != "dumb" and not os.environ.get("CI")
