"""The timeline of a run: one bar per task attempt, grouped by step.

Each step's attempts are packed into as few lanes as never overlap (a step of
1,000 foreach tasks run 16 at a time takes 16 lanes, not 1,000 rows), so the
picture stays readable at any width; positions are percentages of the run's
span, so it scales with the page.  Clusters get lanes of their own on top.

A step that ran more than ``model.WIDE_STEP`` attempts (a foreach of 100,000
splits) is drawn in aggregate instead, so the page stays small: a band of how
many of its tasks ran at each moment, its duration percentiles, and bars only
for the attempts worth a look (``StepSummary.drawn``): the slowest, and the
failed, retried and unfinished ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from .model import OK, Attempt, ClusterSpan, RunData, StepSummary, format_seconds, \
    percentiles

BAND_BINS = 400      # time bins of an aggregated step's band

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


def band(attempts: list[Attempt], t0: float, t1: float, end: float,
         bins: int = BAND_BINS) -> list[float]:
    """How many of ``attempts`` ran on average in each of ``bins`` slices of
    [t0, t1] (one pass; an attempt without an end runs until ``end``)."""
    width = max(t1 - t0, 1e-9) / bins
    level = [0.0] * bins
    steps = [0.0] * (bins + 1)    # +1/-1 where a run of whole bins starts/stops
    for a in attempts:
        if a.started_at is None:
            continue
        start = min(max(a.started_at, t0), t1) - t0
        stop = min(max(a.finished_at if a.finished_at is not None else end, t0), t1) - t0
        if stop <= start:
            continue
        first, last = min(int(start / width), bins - 1), min(int(stop / width), bins - 1)
        if first == last:
            level[first] += (stop - start) / width
            continue
        level[first] += (first + 1) - start / width
        level[last] += stop / width - last
        steps[first + 1] += 1
        steps[last] -= 1
    running = 0.0
    for i in range(bins):
        running += steps[i]
        level[i] += running
    return level


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


def _reused_note(summary: StepSummary, links: dict[str, str]) -> str:
    """Where a step's reused tasks come from: the origin run of a resume, or the runs
    ``@cache`` took them from, each linked to its report when it has one."""
    runs = sorted({(a.clone_of or "").split("/")[1] for a in summary.attempts
                   if a.clone_of and "/" in a.clone_of})
    flow = (summary.attempts[0].clone_of or "").split("/")[0]
    named = []
    for run_id in runs[:3]:
        text = escape(f"{flow}/{run_id}")
        link = links.get(run_id)
        named.append(f'<a href="{escape(link)}">{text}</a>' if link else text)
    more = f" and {len(runs) - 3} more" if len(runs) > 3 else ""
    if summary.cached:
        return f"from the cache: run{'s' if len(runs) > 1 else ''} {', '.join(named)}{more}"
    return f"reused from run {', '.join(named)}{more}"


def render_timeline(run: RunData, ids: dict[int, int],
                    links: dict[str, str] | None = None) -> str:
    """HTML of the timeline; ``ids`` maps ``id(attempt)`` to its index in the page data,
    ``links`` the runs ``@cache`` took tasks from to their reports."""
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
            count += f" ({summary.cloned} {'from the cache' if summary.cached else 'reused'})"
        if not summary.ran:
            rows.append(
                f'<div class="tl-row tl-reused" data-step="{escape(name)}"><div class="tl-label">'
                f'<span class="tl-step">{escape(name)}</span><span class="tl-count">{count}'
                f'</span></div><div class="tl-plot"><span class="tl-note">'
                f"{_reused_note(summary, links or {})}, not run again</span></div></div>")
            continue
        activity = activity_bar(run.activity.get(name))
        if summary.wide:
            rows.append(_wide_row(name, summary, count, ids, pct, t0, t1, grid, activity))
            continue
        lanes = pack(summary.ran, t1)
        plot_height = lanes.count * (lane_height(lanes.count) + _gap(lanes.count)) \
            - _gap(lanes.count)
        rows.append(
            f'<div class="tl-row" data-step="{escape(name)}"><div class="tl-label">'
            f'<span class="tl-step">{escape(name)}</span><span class="tl-count">{count}'
            f"</span>{activity}</div>"
            f'<div class="tl-plot" style="height:{plot_height:.1f}px">{grid}'
            f'{_bars(summary, lanes, ids, pct, t1)}</div></div>')
    return (f'<div class="tl" style="--zoom:1"><div class="tl-inner">{"".join(rows)}</div>'
            f"</div>")


def _gap(lanes: int) -> float:
    return 2.0 if lane_height(lanes) >= 8 else 1.0


def _bars(summary: StepSummary, lanes: Lanes, ids: dict[int, int], pct,
          t1: float, top: float = 0.0) -> str:
    height, gap = lane_height(lanes.count), _gap(lanes.count)
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
            f'width:{max(right - left, 0.0):.3f}%;top:{top + lane * (height + gap):.1f}px;'
            f'height:{height:.1f}px" title="{escape(tip)}">{label}</div>')
    return "".join(bars)


BAND_HEIGHT = 40.0


def _wide_row(name: str, summary: StepSummary, count: str, ids: dict[int, int], pct,
              t0: float, t1: float, grid: str, activity: str = "") -> str:
    """A step of many attempts: a band of how many ran when, and bars for the few
    worth a look (``StepSummary.drawn``)."""
    ran = summary.ran
    starts = [a.started_at for a in ran if a.started_at is not None]
    lo = min(starts, default=t0)
    hi = max([a.finished_at or t1 for a in ran] + [lo])
    level = band(ran, lo, hi, t1)
    failed = band([a for a in ran if a.outcome != OK], lo, hi, t1)
    peak = max(level + [1e-9])
    left, right = pct(lo, t0), pct(hi, t1)

    def path(values: list[float]) -> str:
        step = 1000.0 / len(values)
        points = " ".join(f"L{i * step:.1f},{BAND_HEIGHT * (1 - v / peak):.1f} "
                          f"L{(i + 1) * step:.1f},{BAND_HEIGHT * (1 - v / peak):.1f}"
                          for i, v in enumerate(values))
        return f"M0,{BAND_HEIGHT:.0f} {points} L1000,{BAND_HEIGHT:.0f} Z"

    durations = summary.durations()
    stats = percentiles(durations) if durations else None
    shown = summary.drawn()
    slow = sum(1 for a in shown if a.outcome == OK)
    note = (f"{len(ran)} attempts drawn in aggregate: the band is how many ran at once "
            f"(peak {peak:.0f}); bars are the {slow} slowest"
            + (f" and {len(shown) - slow} failed, retried or unfinished" if len(shown) > slow
               else "") + ".")
    summary_text = f"up to {peak:.0f} at once" + ("; durations " + ", ".join(
        f"{k} {format_seconds(v)}" for k, v in stats.items()) if stats else "")
    lanes = pack(shown, t1)
    bars_top = BAND_HEIGHT + 4
    plot_height = bars_top + lanes.count * (lane_height(lanes.count) + _gap(lanes.count))
    svg = (f'<svg class="tl-band" viewBox="0 0 1000 {BAND_HEIGHT:.0f}" '
           f'preserveAspectRatio="none" style="left:{left:.3f}%;width:{right - left:.3f}%;'
           f'height:{BAND_HEIGHT:.0f}px" role="img" aria-label="{escape(note)}">'
           f"<title>{escape(note)}</title>"
           f'<path class="tl-band-all" d="{path(level)}"/>'
           + (f'<path class="tl-band-bad" d="{path(failed)}"/>' if any(failed) else "")
           + "</svg>")
    return (
        f'<div class="tl-row tl-wide" data-step="{escape(name)}"><div class="tl-label">'
        f'<span class="tl-step">{escape(name)}</span><span class="tl-count">{count}'
        f'</span><span class="tl-count tl-stats">{escape(summary_text)}</span>{activity}</div>'
        f'<div class="tl-plot" style="height:{plot_height:.1f}px" title="{escape(note)}">'
        f'{grid}{svg}{_bars(summary, lanes, ids, pct, t1, top=bars_top)}</div></div>')


#: how a step's time by activity is drawn: its colour class and its words
ACTIVITY_PARTS = (("compute", "compute"), ("transfer", "transfer"), ("spill", "spill"),
                  ("idle", "idle or other spans"))


def activity_bar(figures: dict | None) -> str:
    """A thin bar under a step's name: its time by activity as Dask's span of the step
    measured it (compute, transfer, spill, idle), the seconds in its tooltip; "" when the
    run's clusters recorded none."""
    if not figures:
        return ""
    total = sum(float(figures.get(key) or 0.0) for key, _ in ACTIVITY_PARTS)
    if total <= 0:
        return ""
    words = [f"{label} {format_seconds(float(figures.get(key) or 0.0))}"
             + (f" (CPU {format_seconds(float(figures.get('cpu') or 0.0))})"
                if key == "compute" else "") for key, label in ACTIVITY_PARTS]
    tip = " · ".join(words) + (f" · Dask span {figures['span']}" if figures.get("span")
                               else "")
    shares = [(key, 100 * float(figures.get(key) or 0.0) / total) for key, _ in ACTIVITY_PARTS]
    parts = "".join(f'<i class="a-{key}" style="width:{share:.2f}%"></i>'
                    for key, share in shares)
    return f'<span class="tl-activity" title="{escape(tip)}">{parts}</span>'


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
