"""The timeline of a run: one bar per task attempt, grouped by step.

Each step's attempts are packed into as few lanes as never overlap (a step of
1,000 foreach tasks run 16 at a time takes 16 lanes, not 1,000 rows), so the
picture stays readable at any width; positions are percentages of the run's
span, so it scales with the page.  Clusters get lanes of their own on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from .model import Attempt, ClusterSpan, RunData, format_seconds

TICKS = [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600,
         7200, 14400, 28800, 86400]


@dataclass
class Lanes:
    """``lane[i]`` is the lane of ``attempts[i]``; ``count`` lanes in all."""

    attempts: list[Attempt]
    lane: list[int]
    count: int


def pack(attempts: list[Attempt], end: float) -> Lanes:
    """Greedy interval packing: each attempt goes to the first lane free at its start."""
    def span(a: Attempt) -> tuple[float, float]:
        return (a.started_at if a.started_at is not None else end,
                a.finished_at if a.finished_at is not None else end)

    ordered = sorted(attempts, key=span)
    lane_end: list[float] = []
    lanes = []
    for a in ordered:
        start, stop = span(a)
        for i, free_at in enumerate(lane_end):
            if free_at <= start:
                lane_end[i] = stop
                lanes.append(i)
                break
        else:
            lane_end.append(stop)
            lanes.append(len(lane_end) - 1)
    return Lanes(ordered, lanes, len(lane_end))


def lane_height(count: int) -> float:
    """Lanes shrink when a step ran many tasks at once, so a group stays < ~150px."""
    if count <= 6:
        return 16.0
    return max(4.0, min(16.0, 130.0 / count))


def tick_step(span: float) -> float:
    return next((t for t in TICKS if span / t <= 8), TICKS[-1])


def tick_label(seconds: float) -> str:
    if seconds == 0:
        return "0"
    if seconds < 60:
        return f"{seconds:g}s"
    if seconds < 3600:
        m, s = divmod(int(round(seconds)), 60)
        return f"{m}m" + (f" {s:02d}s" if s else "")
    h, rest = divmod(int(round(seconds)), 3600)
    return f"{h}h" + (f" {rest // 60:02d}m" if rest // 60 else "")


def render_timeline(run: RunData, ids: dict[int, int]) -> str:
    """HTML of the timeline; ``ids`` maps ``id(attempt)`` to its index in the page data."""
    attempts = [a for a in run.attempts if not a.clone_of]  # reused ones ran before
    starts = [a.started_at for a in attempts if a.started_at]
    t0 = run.started_at or min(starts, default=0.0)
    t1 = run.end_time or t0
    t1 = max([t1] + [a.finished_at or 0.0 for a in attempts]
             + [c.stopped_at or 0.0 for c in run.clusters])
    span = max(t1 - t0, 1e-3)

    def pct(t: float | None, default: float) -> float:
        value = default if t is None else t
        return min(100.0, max(0.0, (value - t0) / span * 100))

    step = tick_step(span)
    ticks = []
    k = 0
    while k * step <= span + 1e-9:
        left = k * step / span * 100
        ticks.append(f'<div class="tl-tick" style="left:{left:.3f}%">'
                     f'<span>{tick_label(k * step)}</span></div>')
        k += 1
    grid = "".join(f'<div class="tl-grid" style="left:{k * step / span * 100:.3f}%"></div>'
                   for k in range(int(span / step) + 1))
    rows = [f'<div class="tl-row tl-axis"><div class="tl-label"></div>'
            f'<div class="tl-plot">{"".join(ticks)}</div></div>']
    if run.clusters:
        rows.append(_cluster_rows(run.clusters, pct, t0, t1))
    for name, summary in run.steps.items():
        if not summary.attempts:
            continue
        count = f"{summary.tasks} task{'s' if summary.tasks != 1 else ''}"
        if summary.cloned:
            count += f" ({summary.cloned} reused)"
        if not summary.ran:
            origin = summary.attempts[0].clone_of or ""
            rows.append(
                f'<div class="tl-row tl-reused" data-step="{escape(name)}"><div class="tl-label">'
                f'<span class="tl-step">{escape(name)}</span><span class="tl-count">{count}'
                f'</span></div><div class="tl-plot"><span class="tl-note">reused from run '
                f"{escape('/'.join(origin.split('/')[:2]))}, not run again</span></div></div>")
            continue
        lanes = pack(summary.ran, t1)
        height = lane_height(lanes.count)
        gap = 2.0 if height >= 8 else 1.0
        bars = []
        retried = {a.task_id for a in summary.ran if a.attempt > 0}
        for a, lane in zip(lanes.attempts, lanes.lane, strict=True):
            left = pct(a.started_at, t1)
            right = pct(a.finished_at, t1)
            label = f"#{a.attempt}" if a.task_id in retried else ""
            tip = (f"{a.pathspec} · attempt {a.attempt} · {a.outcome} · "
                   f"{format_seconds(a.seconds) if a.seconds is not None else 'no end'}"
                   + (f" · cluster {a.cluster}" if a.cluster else ""))
            bars.append(
                f'<div class="tl-bar o-{a.outcome}" data-i="{ids[id(a)]}" '
                f'data-step="{escape(a.step)}" style="left:{left:.3f}%;'
                f'width:{max(right - left, 0.0):.3f}%;top:{lane * (height + gap):.1f}px;'
                f'height:{height:.1f}px" title="{escape(tip)}">{label}</div>')
        plot_height = lanes.count * (height + gap) - gap
        rows.append(
            f'<div class="tl-row" data-step="{escape(name)}"><div class="tl-label">'
            f'<span class="tl-step">{escape(name)}</span><span class="tl-count">{count}'
            f"</span></div>"
            f'<div class="tl-plot" style="height:{plot_height:.1f}px">{grid}'
            f'{"".join(bars)}</div></div>')
    return (f'<div class="tl" style="--zoom:1"><div class="tl-inner">{"".join(rows)}</div>'
            f"</div>")


def _cluster_rows(clusters: list[ClusterSpan], pct, t0: float, t1: float) -> str:
    bars = []
    for i, c in enumerate(clusters):
        left = pct(c.started_at, t0)
        right = pct(c.stopped_at, t1)
        life = (format_seconds(c.stopped_at - c.started_at)
                if c.started_at and c.stopped_at else "lifetime not recorded")
        tip = f"cluster {c.name}: {c.description} · {life}"
        css = "tl-cluster" + ("" if c.recorded else " tl-approx")
        bars.append(f'<div class="{css}" style="left:{left:.3f}%;width:{right - left:.3f}%;'
                    f'top:{i * 20}px" title="{escape(tip)}"><span>{escape(c.name)}'
                    f'{" · " + escape(c.description) if c.description else ""}</span></div>')
    return (f'<div class="tl-row tl-clusters"><div class="tl-label"><span class="tl-step">'
            f'clusters</span><span class="tl-count">{len(clusters)}</span></div>'
            f'<div class="tl-plot" style="height:{len(clusters) * 20 - 2}px">'
            f'{"".join(bars)}</div></div>')
