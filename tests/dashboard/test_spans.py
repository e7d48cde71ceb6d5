"""Each step's tasks in the Dask span ``flow/run/step``: after a run, Dask's span metrics
exist for every step on the scheduler, the run's record keeps each step's figures from
them, and the run report shows them."""

from __future__ import annotations

from daskflow import Flow, namespace

STEPS = ["start", "work", "join", "end"]


def spans_of(address: str, run_id: str) -> dict[str, dict]:
    """What the scheduler's spans extension holds for the run, by span name."""
    from distributed import Client

    def read(dask_scheduler=None):
        extension = dask_scheduler.extensions["spans"]
        found = {}
        for name, spans in extension.spans_search_by_name.items():
            if run_id in name:
                found["/".join(name)] = {
                    "compute": sum(s.all_durations.get("compute", 0.0) for s in spans),
                    "metrics": sum(v for s in spans for k, v in
                                   s.cumulative_worker_metrics.items()
                                   if k[0] == "execute" and k[-1] == "seconds"),
                    "tasks": sum(sum(s.states.values()) for s in spans)}
        return found

    with Client(address, timeout=30) as client:
        return client.run_on_scheduler(read)


def test_every_step_is_a_span_with_its_metrics_kept_in_the_record_and_report(
        scheduler, run_flow, workdir):
    result = run_flow("page_flow.py", "run", "--scheduler-address", scheduler,
                      "--width", "6", "--nap", "0.2")
    assert result.returncode == 0, result.stdout + result.stderr
    namespace(None)
    run = Flow("PageFlow", _root=str(workdir / ".daskflow")).latest_run

    spans = spans_of(scheduler, run.id)
    for step in STEPS:
        span = spans[f"PageFlow/{run.id}/{step}"]
        assert span["tasks"] >= 1 and span["compute"] > 0 and span["metrics"] > 0, span
    assert spans[f"PageFlow/{run.id}/work"]["compute"] >= 6 * 0.2   # six naps of 0.2 s

    [cluster] = run.record["clusters"]
    figures = cluster["steps"]
    assert sorted(figures) == sorted(STEPS)
    assert figures["work"]["compute"] >= 6 * 0.2
    assert figures["work"]["span"] == f"PageFlow/{run.id}/work"
    assert all(set(f) >= {"compute", "cpu", "transfer", "spill", "idle"}
               for f in figures.values())

    report = (workdir / ".daskflow" / "PageFlow" / run.id / "_report.html").read_text()
    assert "Time by activity (Dask spans)" in report
    assert f"PageFlow/{run.id}/work" in report
