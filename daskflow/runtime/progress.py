"""A live view of a run in an interactive terminal (rich).

One row per step with its state, a done/total bar, rate and time left for steps
inside a foreach, every cluster with its dashboard link, and the run's clock.
What tasks print, and the first failures of each step, are printed above the
live rows, so they scroll like ordinary output and stay readable.  A step of
100,000 splits is one row of counts: the view keeps no object per task (a few
bits per task id, see :class:`TaskBits`), and each event costs the same however
wide the run is.  :func:`~daskflow.runtime.display.choose_observer`
picks this view when stdout is a terminal and :class:`PlainLog` otherwise.

>>> from rich.console import Console                              # doctest: +SKIP
>>> view = RichProgress(console=Console(force_terminal=True))
>>> Runner(MyFlow, observer=view).run()
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from .events import RunObserver, cached_note, caught_note, cluster_usage_lines

MAX_LISTED = 5        # failed (or retried) attempts of a step printed one by one
RATE_WINDOW = 10.0    # seconds of finished tasks the rate is measured over
RATE_SAMPLES = 64

WAITING, QUEUED, RUNNING, DONE, FAILED = "waiting", "queued", "running", "done", "failed"
SKIPPED, NOT_RUN, CANCELLED = "skipped", "not run", "cancelled"

_ICONS = {WAITING: ("·", "dim"), QUEUED: ("·", "dim"), DONE: ("✔", "green"),
          FAILED: ("✘", "bold red"), SKIPPED: ("–", "dim"), NOT_RUN: ("–", "dim"),
          CANCELLED: ("■", "yellow")}
_STATE_STYLE = {WAITING: "dim", QUEUED: "dim", RUNNING: "cyan", DONE: "green",
                FAILED: "bold red", SKIPPED: "dim", NOT_RUN: "dim", CANCELLED: "yellow"}


class TaskBits:
    """A set of task ids in one bit each (a run numbers its tasks 1, 2, 3, ...).

    At 100,000 tasks that is 12.5 kB, where a ``set`` of their id strings is
    several MB.  An id that is not a number (none today) goes to a small set.

    >>> bits = TaskBits()
    >>> bits.add("12"), bits.add("12"), "12" in bits, bits.discard("12"), "12" in bits
    (True, False, True, True, False)
    """

    __slots__ = ("_bits", "_other")

    def __init__(self) -> None:
        self._bits = bytearray()
        self._other: set[str] = set()

    def add(self, task_id: str) -> bool:
        """Add ``task_id``; True when it was not there yet."""
        if not task_id.isdigit():
            new = task_id not in self._other
            self._other.add(task_id)
            return new
        n = int(task_id)
        byte, bit = n >> 3, 1 << (n & 7)
        if byte >= len(self._bits):
            self._bits.extend(bytes(max(byte + 1 - len(self._bits), len(self._bits))))
        if self._bits[byte] & bit:
            return False
        self._bits[byte] |= bit
        return True

    def discard(self, task_id: str) -> bool:
        """Remove ``task_id``; True when it was there."""
        if not task_id.isdigit():
            if task_id in self._other:
                self._other.discard(task_id)
                return True
            return False
        n = int(task_id)
        byte, bit = n >> 3, 1 << (n & 7)
        if byte >= len(self._bits) or not self._bits[byte] & bit:
            return False
        self._bits[byte] &= ~bit & 0xFF
        return True

    def __contains__(self, task_id: str) -> bool:
        if not task_id.isdigit():
            return task_id in self._other
        n = int(task_id)
        return n >> 3 < len(self._bits) and bool(self._bits[n >> 3] & (1 << (n & 7)))

    @property
    def nbytes(self) -> int:
        return len(self._bits)


@dataclass
class _Step:
    """What the view knows of one step: counts, never one entry per task."""

    name: str
    kind: str = ""                 # foreach / split / switch / join, from the graph
    depth: int = 0                 # how many foreach splits it sits in
    in_funcs: list[str] = field(default_factory=list)
    closes: str | None = None      # a join: the split it closes
    fans_out: int = 0              # a foreach target: splits announced so far
    pending: int = 0               # submitted, not finished
    started: int = 0               # began on a worker, not finished
    ok: int = 0
    failed: int = 0
    first_failed: list[str] = field(default_factory=list)  # pathspecs, MAX_LISTED at most
    retries: int = 0
    caught: int = 0                # finished ok after @catch caught their failure
    cached: int = 0                # finished ok without running: taken by @cache
    cluster: str | None = None
    samples: deque[tuple[float, int]] = field(
        default_factory=lambda: deque(maxlen=RATE_SAMPLES))  # (when, done), for the rate

    @property
    def submitted(self) -> int:
        return self.pending + self.ok + self.failed

    @property
    def done(self) -> int:
        return self.ok + self.failed

    def rate(self, now: float) -> float | None:
        """Tasks finished per second over the last ``RATE_WINDOW`` seconds, or None."""
        if not self.samples or self.samples[-1][0] < now - 0.2:
            self.samples.append((now, self.done))
        while len(self.samples) > 2 and self.samples[0][0] < now - RATE_WINDOW:
            self.samples.popleft()
        (t0, d0), (t1, d1) = self.samples[0], self.samples[-1]
        if t1 - t0 < 1.0 or d1 <= d0:
            return None
        return (d1 - d0) / (t1 - t0)


@dataclass
class _Cluster:
    name: str
    description: str
    dashboard: str | None
    step: str | None
    started: float
    seconds: float | None = None   # set when it closed


class RichProgress(RunObserver):
    """Live rows of steps and clusters, with task output and failures above them.

    Parameters
    ----------
    console : rich.console.Console, optional
        Where to draw (default: a console on stdout).
    stream_output : bool
        Print what tasks print (prefixed with ``step/task_id``).
    refresh_per_second : float
        How often the rows (and their spinners) are redrawn.
    graph : FlowGraph, optional
        Lists every step from the start (the runtime may also pass it to
        ``run_started``); without it a step appears when its first task does.
    """

    def __init__(self, console: Console | None = None, *, stream_output: bool = True,
                 refresh_per_second: float = 8, graph: Any = None) -> None:
        self.console = console or Console()
        self.stream_output = stream_output
        self.refresh_per_second = refresh_per_second
        self.flow_name = ""
        self.run_id = ""
        self.steps: dict[str, _Step] = {}
        self.clusters: list[_Cluster] = []
        self.started_at = time.monotonic()
        self.finished: bool | None = None   # None while running, then successful
        self.seconds: float | None = None
        self.saw_task_started = False
        self._lock = threading.RLock()     # output arrives on the client's event-loop thread
        self._live: Live | None = None
        self._spinners: dict[str, Spinner] = {}
        # Which tasks are submitted (not finished), running, finished: a bit per task id.
        self._pending, self._started, self._ended = TaskBits(), TaskBits(), TaskBits()
        if graph is not None:
            self._read_graph(graph)

    # -- events -------------------------------------------------------------------

    def run_started(self, *, flow_name: str, run_id: str, datastore: str,
                    graph: Any = None, **extra: Any) -> None:
        with self._lock:
            self.flow_name, self.run_id = flow_name, run_id
            self.started_at = time.monotonic()
            if graph is not None and not self.steps:
                self._read_graph(graph)
        # Never call the console while holding self._lock: the live view's refresh
        # thread holds the console's lock while it asks for the rows (self._lock).
        self.console.print(Text.assemble(
            ("Workflow starting ", "bold"), (f"{flow_name}/{run_id}", "bold cyan"),
            (f"  datastore {datastore}", "dim")))
        live = Live(console=self.console, get_renderable=self._render,
                    refresh_per_second=self.refresh_per_second, transient=False,
                    redirect_stdout=True, redirect_stderr=True)
        self._live = live
        live.start()

    def _read_graph(self, graph: Any) -> None:
        for node in graph.sorted_nodes():
            kind = {"foreach": f"foreach {node.foreach_var}", "split": "branches",
                    "switch": f"switch on {node.condition_var}"}.get(node.transition, "")
            if node.is_join:
                kind = "join" + (f" · {kind}" if kind else "")
            self.steps[node.name] = _Step(
                node.name, kind=kind, depth=graph.foreach_depth(node.name),
                in_funcs=list(node.in_funcs),
                closes=node.matching_split if node.is_join else None)

    def _step(self, name: str) -> _Step:
        step = self.steps.get(name)
        if step is None:
            step = self.steps[name] = _Step(name)
        return step

    def cluster_started(self, *, name: str, description: str, dashboard: str | None,
                        step: str | None = None, **extra: Any) -> None:
        with self._lock:
            self.clusters.append(_Cluster(name, description, dashboard, step,
                                          time.monotonic()))
            if step is not None:
                self._step(step).cluster = name
        link = Text(dashboard, f"underline cyan link {dashboard}") if dashboard \
            else Text("(none)", "dim")
        self.console.print(Text.assemble(
            "Cluster ", (name, "bold magenta"), (f" for step {step}" if step else ""),
            f" started: {description}; dashboard ", link))

    def cluster_stopped(self, *, name: str, seconds: float, **extra: Any) -> None:
        with self._lock:
            for cluster in reversed(self.clusters):
                if cluster.name == name and cluster.seconds is None:
                    cluster.seconds = seconds
                    break

    def task_submitted(self, *, step: str, task_id: str, foreach_depth: int,
                       **extra: Any) -> None:
        with self._lock:
            state = self.steps.get(step) or self._step(step)
            if foreach_depth > state.depth:
                state.depth = foreach_depth
            state.pending += self._pending.add(task_id)

    def tasks_submitted(self, *, step: str, task_ids: Sequence[str], foreach_depth: int,
                        **extra: Any) -> None:
        with self._lock:
            state = self._step(step)
            state.depth = max(state.depth, foreach_depth)
            add = self._pending.add
            state.pending += sum(1 for task_id in task_ids if add(task_id))

    def task_caught(self, *, step: str, task_id: str, **extra: Any) -> None:
        with self._lock:
            self._step(step).caught += 1

    def task_started(self, *, step: str, task_id: str, attempt: int = 0,
                     **extra: Any) -> None:
        with self._lock:
            self.saw_task_started = True
            if task_id in self._ended:  # its "started" message came after its result
                return
            state = self._step(step)
            state.pending += self._pending.add(task_id)
            state.started += self._started.add(task_id)

    def task_finished(self, *, step: str, task_id: str, ok: bool, foreach_depth: int,
                      attempt: int | None = None, retrying: bool = False,
                      **extra: Any) -> None:
        if retrying:
            with self._lock:
                state = self._step(step)
                state.retries += 1
                state.started -= self._started.discard(task_id)
                listed = state.retries
            self._say_failed(step, task_id, listed, retrying=True, attempt=attempt)
            return
        if not ok:
            self.tasks_finished(step=step, task_ids=(task_id,), foreach_depth=foreach_depth,
                                failed=(task_id,))
            return
        with self._lock:  # the common case, without the batch's loops
            state = self.steps.get(step) or self._step(step)
            state.pending -= self._pending.discard(task_id)
            state.started -= self._started.discard(task_id)
            self._ended.add(task_id)
            state.ok += 1
            state.cached += bool(extra.get("cached"))

    def tasks_finished(self, *, step: str, task_ids: Sequence[str], foreach_depth: int,
                       failed: Collection[str] = (), **extra: Any) -> None:
        with self._lock:
            state = self._step(step)
            pending, started, ended = self._pending, self._started, self._ended
            for task_id in task_ids:
                state.pending -= pending.discard(task_id)
                state.started -= started.discard(task_id)
                ended.add(task_id)
            state.ok += len(task_ids) - len(failed)
            listed = []
            for task_id in failed:
                state.failed += 1
                if len(state.first_failed) < MAX_LISTED:
                    state.first_failed.append(self._pathspec(step, task_id))
                listed.append(state.failed)
        for task_id, count in zip(failed, listed):
            self._say_failed(step, task_id, count, retrying=False)

    def _pathspec(self, step: str, task_id: str) -> str:
        return f"{self.flow_name}/{self.run_id}/{step}/{task_id}"

    def _say_failed(self, step: str, task_id: str, count: int, *, retrying: bool,
                    attempt: int | None = None) -> None:
        """Print the ``count``-th failed (or ``retrying``) attempt of ``step`` above the
        rows; past ``MAX_LISTED`` of a kind only the step's row counts them."""
        kind = "retried" if retrying else "failed"
        if count > MAX_LISTED:
            if count == MAX_LISTED + 1:
                self.console.print(Text(
                    f"… more {kind} tasks of {step}: counted in its row, not listed.",
                    "yellow" if retrying else "red"))
            return
        pathspec = self._pathspec(step, task_id)
        if retrying:
            self.console.print(Text.assemble(
                ("↻ Task ", "yellow"), (pathspec, "bold yellow"),
                (" failed" + (f" (attempt {attempt})" if attempt is not None else "")
                 + "; retrying.", "yellow")))
        else:
            self.console.print(Text.assemble(("✘ Task ", "bold red"),
                                             (pathspec, "bold red underline"),
                                             (" failed.", "bold red")))

    def foreach_expanded(self, *, step: str, target: str, count: int, **extra: Any) -> None:
        with self._lock:
            self._step(target).fans_out += count

    def task_output(self, *, pathspec: str, stream: str, text: str, **extra: Any) -> None:
        if not self.stream_output:
            return
        prefix = "[" + pathspec.split("/", 1)[-1] + "]"
        style = "yellow" if stream == "stderr" else "blue"
        for line in text.rstrip("\n").split("\n"):
            # a progress bar redrawn with \r: show what it shows last
            line = line.rstrip("\r").rsplit("\r", 1)[-1]
            self.console.print(Text.assemble((prefix, style), " ", Text.from_ansi(line)),
                               soft_wrap=True, highlight=False)

    def run_finished(self, *, flow_name: str, run_id: str, successful: bool, tasks: int,
                     seconds: float, failure: Any = None, report: str | None = None,
                     **extra: Any) -> None:
        with self._lock:
            self.finished = successful
            self.seconds = time.monotonic() - self.started_at  # the clock stops here
        self.close()  # draws the last frame, with the final states
        if successful:
            caught = sum(s.caught for s in self.steps.values())
            cached = {s.name: s.cached for s in self.steps.values()}
            self.console.print(Text.assemble(
                ("Done! ", "bold green"),
                f"Run {flow_name}/{run_id} finished {tasks} tasks in {seconds:.1f}s"
                f"{caught_note(caught)}{cached_note(cached)}."))
        elif failure is not None:
            self.console.print(Text.assemble(
                ("Run failed: ", "bold red"), "task ",
                (str(getattr(failure, "pathspec", "?")), "bold red"),
                f" raised {getattr(failure, 'type_name', 'an error')}."))
        for line in cluster_usage_lines(extra.get("clusters") or [],
                                        priced_only=not successful):
            self.console.print(Text(line), highlight=False)
        if report:
            self.console.print(Text.assemble("Run report: ",
                                             (report, f"cyan link file://{report}")))

    def close(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.stop()   # leaves the last frame on screen

    # -- what the rows show ----------------------------------------------------------

    def step_state(self, step: _Step) -> str:
        """The state a person sees for ``step`` now."""
        if step.failed:
            return FAILED
        if self.finished is not None and step.pending:
            return CANCELLED
        if step.pending:
            if step.started:
                return RUNNING
            # Without task_started events, guess: foreach splits are submitted only
            # once their parent finished; other tasks once submitted wait for inputs.
            if not self.saw_task_started and (step.fans_out or self._inputs_done(step)):
                return RUNNING
            return QUEUED
        if step.ok:
            total = self._total(step)
            if total is not None and step.ok < total and self.finished is None:
                return RUNNING   # more splits of this step are still to come
            return DONE
        if self.finished is not None:  # a switch did not choose it, or the run stopped
            return SKIPPED if self.finished else NOT_RUN
        return WAITING

    def _inputs_done(self, step: _Step) -> bool:
        """No task of a step it reads from is still pending (so its tasks can run)."""
        return all(not self.steps[s].pending for s in step.in_funcs if s in self.steps)

    def _total(self, step: _Step, seen: frozenset[str] = frozenset()) -> int | None:
        """How many tasks the step will run, as far as is known now."""
        if step.fans_out:
            return step.fans_out
        if step.depth == 0 or step.name in seen:
            return None
        seen = seen | {step.name}
        source = step.closes if step.closes else (step.in_funcs[0] if step.in_funcs else None)
        if source is None or source not in self.steps:
            return None
        upstream = self.steps[source]
        if step.closes:  # one join task per task of the split it closes
            return self._total(upstream, seen) or upstream.submitted or None
        if upstream.kind.startswith("switch"):
            return None
        return self._total(upstream, seen)

    def _render(self) -> RenderableType:
        with self._lock:
            return self._render_locked()

    def _render_locked(self) -> RenderableType:
        rows = Table.grid(padding=(0, 1))
        rows.add_column(width=1)                 # icon
        rows.add_column(no_wrap=True)            # step
        rows.add_column(no_wrap=True)            # state
        rows.add_column(no_wrap=True)            # bar
        rows.add_column(no_wrap=True, overflow="ellipsis")  # detail
        steps = list(self.steps.values())
        budget = max(4, self.console.size.height - 6 - len(self.clusters))
        collapsed = 0
        if len(steps) > budget:  # keep what moves; fold the finished ones into one line
            done = [s for s in steps if self.step_state(s) in (DONE, SKIPPED)]
            hide = {s.name for s in done[: len(steps) - budget + 1]}
            collapsed = len(hide)
            steps = [s for s in steps if s.name not in hide]
        if collapsed:
            rows.add_row(Text("✔", "green"), Text(f"{collapsed} more steps", "dim"),
                         Text("done", "green"), "", "")
        name_width = max((len(s.name) for s in self.steps.values()), default=4)
        for step in steps:
            rows.add_row(*self._row(step, name_width))
        parts: list[RenderableType] = [self._header(), rows]
        if self.clusters:
            parts.append(self._clusters())
        return Group(*parts)

    def _row(self, step: _Step, name_width: int) -> list[RenderableType]:
        state = self.step_state(step)
        icon: RenderableType
        if state == RUNNING:  # one spinner per step, so that it turns between frames
            icon = self._spinners.setdefault(step.name, Spinner("dots", style="cyan"))
        else:
            glyph, style = _ICONS[state]
            icon = Text(glyph, style)
        name = Text(step.name.ljust(name_width), "bold" if state == RUNNING else "")
        label = Text(state.ljust(9), _STATE_STYLE[state])
        total = self._total(step)
        bar: RenderableType = Text("")
        detail = Text("")
        if total is not None or step.submitted and step.depth > 0:
            total = max(total or 0, step.submitted, 1)
            done = step.done
            bar = ProgressBar(total=total, completed=done, width=24,
                              complete_style="red" if step.failed else "green",
                              finished_style="red" if step.failed else "green")
            detail.append(f"{done}/{total}", "bold" if done < total else "green")
            if step.started and total > 1:
                detail.append(f"  {step.started} running", "cyan")
            rate = step.rate(time.monotonic()) if state == RUNNING else None
            if rate is not None:
                detail.append(f"  {_rate(rate)}", "dim")
                detail.append(f"  ETA {_clock((total - done) / rate)}", "dim")
        if step.kind:
            detail.append(("  " if detail else "") + step.kind, "dim")
        if step.cluster:
            detail.append(f"  on {step.cluster}", "magenta")
        if step.retries:
            detail.append(f"  {step.retries} retried", "yellow")
        if step.caught:
            detail.append(f"  {step.caught} caught by @catch", "yellow")
        if step.cached:
            detail.append(f"  {step.cached} from the cache", "green")
        if self.finished is not None and step.pending:
            detail.append(f"  {step.pending} cancelled", "yellow")
        if step.failed:
            more = f" (+{step.failed - 1} more)" if step.failed > 1 else ""
            detail.append(f"  {step.first_failed[0]}{more}", "bold red")
        return [icon, name, label, bar, detail]

    def _header(self) -> Text:
        elapsed = self.seconds if self.seconds is not None \
            else time.monotonic() - self.started_at
        done = sum(s.ok for s in self.steps.values())
        failed = sum(s.failed for s in self.steps.values())
        running = sum(s.pending for s in self.steps.values())
        caught = sum(s.caught for s in self.steps.values())
        cached = sum(s.cached for s in self.steps.values())
        head = Text.assemble((self.flow_name, "bold"), ("/", "dim"),
                             (self.run_id, "bold cyan"), ("  ", ""),
                             (_clock(elapsed), "bold"),
                             (f"  {done} tasks done", "green"))
        if running and self.finished is None:
            head.append(f", {running} in flight", "cyan")
        if caught:
            head.append(f", {caught} caught by @catch", "yellow")
        if cached:
            head.append(f" ({cached} from the cache)", "green")
        if failed:
            head.append(f", {failed} failed", "bold red")
        return head

    def _clusters(self) -> Table:
        table = Table.grid(padding=(0, 1))
        table.add_column(width=1)
        table.add_column(no_wrap=True)
        table.add_column(overflow="fold")
        for cluster in self.clusters:
            if cluster.seconds is None:
                icon: RenderableType = Text("●", "green")
                life = f"up {_clock(time.monotonic() - cluster.started)}"
            else:
                icon = Text("○", "dim")
                life = f"closed after {cluster.seconds:.1f}s"
            link = cluster.dashboard
            text = Text.from_markup(
                f"{escape(cluster.description)}  [dim]{life}[/]"
                + (f"  [cyan link={escape(link)}]{escape(link)}[/]" if link else ""))
            name = f"cluster {cluster.name}" + (f" ({cluster.step})" if cluster.step else "")
            table.add_row(icon, Text(name, "magenta"), text)
        return table


def _rate(per_second: float) -> str:
    """``850/s``, ``12/s``, ``1.5/s``, ``12/min``."""
    if per_second >= 10:
        return f"{per_second:,.0f}/s"
    if per_second >= 1:
        return f"{per_second:.1f}/s"
    return f"{per_second * 60:.0f}/min"


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
