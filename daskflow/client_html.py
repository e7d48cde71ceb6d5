"""How ``Flow``, ``Run``, ``Step`` and ``Task`` show themselves in Jupyter (``_repr_html_``).

Small tables in the spirit of Dask's ``Client`` widget: status, times, steps and task
counts, parameters, tags, and links to the run report and the Dask dashboard. Every
string that comes from a run (names, tags, values) is escaped.  A view reads a task's
record only for steps of at most ``MAX_READ`` tasks, so a run of 100,000 splits
shows itself in a notebook from a few listings.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

COLORS = {"success": "#2e7d32", "successful": "#2e7d32", "ok": "#2e7d32",
          "failed": "#c62828", "running": "#1565c0", "caught": "#b26a00"}
MAX_VALUE = 80
MAX_READ = 1000  # a step's tasks whose records a view reads for their states


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _status(status: str) -> str:
    color = COLORS.get(status, "#555")
    return f'<span style="color:{color};font-weight:bold">{_e(status)}</span>'


def _time(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S") if when else "—"


def _duration(start: datetime | None, end: datetime | None) -> str:
    if not (start and end):
        return "—"
    seconds = (end - start).total_seconds()
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _link(url: str | None, text: str) -> str:
    if not url:
        return "—"
    href = url if "://" in url else "file://" + url
    return f'<a href="{_e(href)}" target="_blank">{_e(text)}</a>'


def _value(value: Any) -> str:
    text = repr(value)
    return _e(text if len(text) <= MAX_VALUE else text[:MAX_VALUE] + "…")


def _table(title: str, rows: list[tuple[str, str]], extra: str = "") -> str:
    """``rows`` are (label, html) pairs whose html is already escaped."""
    body = "".join(f'<tr><th style="text-align:left;padding-right:1em">{_e(k)}</th>'
                   f'<td style="text-align:left">{v}</td></tr>' for k, v in rows)
    return (f'<div class="daskflow"><h4 style="margin:0.3em 0">{title}</h4>'
            f"<table>{body}</table>{extra}</div>")


def _tags(tags: frozenset[str]) -> str:
    return ", ".join(f"<code>{_e(t)}</code>" for t in sorted(tags)) or "—"


def run_html(run: Any) -> str:
    record = run.record
    steps = list(run.steps())[::-1]  # first step first
    counts = [len(s) for s in steps]  # one listing per step, no task read
    failed_step = _failed_step(record)
    step_rows = "".join(
        f"<tr><td>{_e(s.id)}</td><td>{count}</td>"
        f"<td>{_status(_step_state(s, count, run.status, failed_step)[0])}</td></tr>"
        for s, count in zip(steps, counts))
    step_table = (f'<table><tr><th style="text-align:left">step</th><th>tasks</th>'
                  f'<th style="text-align:left">status</th></tr>{step_rows}</table>'
                  if steps else "")
    try:
        parameters = run.parameters
    except Exception:  # noqa: BLE001  a parameter that no longer loads: show its text
        parameters = record.get("parameters", {})
    params = ", ".join(f"<code>{_e(k)}</code>={_value(v)}"
                       for k, v in sorted(parameters.items())) or "—"
    report_url = run._store.runs.stored_report(run.id)
    dashboard = record.get("dashboard") if run.status == "running" else None
    rows = [("Status", _status(run.status)),
            ("Started", _time(run.created_at)),
            ("Finished", _time(run.finished_at)),
            ("Duration", _duration(run.created_at, run.finished_at)),
            ("Steps / tasks", f"{len(steps)} / {sum(counts)}"),
            ("Parameters", params),
            ("Tags", _tags(run.user_tags)),
            ("System tags", _tags(run.system_tags)),
            ("Report", _link(report_url, "run report")),
            ("Dashboard", _link(dashboard, dashboard or ""))]
    if run.origin_run_id:
        rows.insert(1, ("Resumed from", _e(run.origin_pathspec)))
    return _table(f"Run <code>{_e(run.pathspec)}</code>", rows, step_table)


def _step_status(tasks: list[Any]) -> str:
    went_on = [t.successful or t._caught for t in tasks]  # @catch: the flow went on
    if any(t.finished and not ok for t, ok in zip(tasks, went_on)):
        return "failed"
    return "ok" if tasks and all(went_on) else "running"


def _failed_step(record: dict[str, Any]) -> str | None:
    """The step of the task that failed the run, from the run's record."""
    pathspec = str((record.get("failure") or {}).get("pathspec") or "")
    parts = pathspec.split("/")
    return parts[-2] if len(parts) >= 2 else None


def _step_state(step: Any, count: int, run_status: str,
                failed_step: str | None) -> tuple[str, int | None]:
    """A step's status and how many of its tasks succeeded (None: not read).

    A successful run's tasks all succeeded, so nothing is read; otherwise the tasks'
    records are read only for a step of at most ``MAX_READ`` tasks (a view in a
    notebook must not read 100,000 records); a wider one is ``failed`` when it holds
    the run's failure, else it shows the run's status."""
    if run_status == "success":
        return "ok", count
    if count <= MAX_READ:
        tasks = list(step)
        return _step_status(tasks), sum(t.successful for t in tasks)
    return ("failed" if step.id == failed_step else run_status), None


def step_html(step: Any) -> str:
    count = len(step)
    try:
        record = step._store.read_run(step.run_id)
    except Exception:  # noqa: BLE001  no run record (deleted): read the tasks
        record = {}
    run_status = record.get("status", "running")
    status, done = _step_state(step, count, run_status, _failed_step(record))
    tasks = (f"{count} ({done} successful)" if done is not None else
             f"{count} (too many to read here; the run report has their states)")
    rows = [("Status", _status(status)), ("Tasks", tasks)]
    return _table(f"Step <code>{_e(step.pathspec)}</code>", rows)


def task_html(task: Any) -> str:
    status = "running" if not task.finished else "ok" if task.successful else \
        "caught" if task._caught else "failed"
    started = task.created_at
    finished = datetime.fromtimestamp(task.finished_at) if task.finished_at else None
    rows = [("Status", _status(status)),
            ("Attempt", _e(task.current_attempt)),
            ("Started", _time(started)),
            ("Duration", _duration(started, finished)),
            ("Artifacts", ", ".join(f"<code>{_e(a.id)}</code> ({_e(a.type)})"
                                    for a in task.artifacts) or "—")]
    if task.index is not None:
        rows.insert(1, ("Foreach index", _e(task.index)))
    exception = task.exception
    if exception is not None:
        rows.append(("Exception", f"<code>{_e(exception)}</code>"))
    return _table(f"Task <code>{_e(task.pathspec)}</code>", rows)


def flow_html(flow: Any, limit: int = 10) -> str:
    runs = []
    for run in flow.runs():
        runs.append(run)
        if len(runs) == limit:
            break
    rows = "".join(
        f"<tr><td><code>{_e(r.id)}</code></td><td>{_status(r.status)}</td>"
        f"<td>{_time(r.created_at)}</td><td>{_duration(r.created_at, r.finished_at)}</td>"
        f"<td>{_tags(r.user_tags)}</td></tr>" for r in runs)
    table = (f'<table><tr><th>run</th><th>status</th><th>started</th><th>duration</th>'
             f"<th>tags</th></tr>{rows}</table>") if runs else "<p>No runs in this namespace.</p>"
    return (f'<div class="daskflow"><h4 style="margin:0.3em 0">Flow <code>{_e(flow.name)}'
            f"</code></h4><p>Latest runs (newest first, at most {limit}):</p>{table}</div>")
