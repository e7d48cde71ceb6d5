"""Each cluster's worker-seconds held and used, and its estimated cost from the price table.

A run with a 2-worker step cluster whose task sleeps 3 s, priced at 3.6 per
worker-hour (a worker-second costs 0.001): the record, ``run.clusters``, the
end-of-run summary and the report agree, and the held seconds match the time the
cluster had its workers (from when it was ready until it was closed) within a second.
"""

from __future__ import annotations

import re

from daskflow import Flow

PRICE = {"DASK_DASKFLOW__CLUSTER__PRICES__LOCAL__WORKER_HOUR": "3.6"}


def test_held_used_and_cost_of_each_cluster(run_flow, workdir) -> None:
    result = run_flow("orphan_flow.py", "run", "--wait", "3", env=PRICE)
    assert result.returncode == 0, result.stderr
    run = Flow("OrphanFlow").latest_run
    records = {c["name"]: c for c in run.record["clusters"]}
    uses = {c.name: c for c in run.clusters}
    assert set(uses) == {"default", "step-1"}
    step = uses["step-1"]
    assert (step.step, step.backend, step.workers) == ("hold", "local", 2)
    for name, use in uses.items():
        record = records[name]
        had_workers = record["stopped_at"] - record["ready_at"]
        assert abs(use.held_seconds / use.workers - had_workers) < 1.0, (name, record)
        assert use.held_seconds <= use.workers * use.seconds
        assert 0 <= use.used_seconds <= use.held_seconds
        assert use.price_per_worker_hour == 3.6 and use.currency == "USD"
        assert use.cost == round(use.held_seconds * 0.001, 4)
    # one of the step's two workers ran the task (which slept 3 s), the other nothing;
    # the meter samples every 0.5 s (cluster.meter-interval), so a start or an end may
    # be counted up to that late
    assert 3 - 0.5 <= step.used_seconds <= step.held_seconds / 2 + 1, step
    summary = re.search(r"Cluster step-1 \(local, hold\): ([\d.]+) worker-s held, ([\d.]+) "
                        r"used \(\d+%\), est\. cost ([\d.]+) USD", result.stdout)
    assert summary, result.stdout
    assert float(summary[1]) == round(step.held_seconds, 1)
    assert float(summary[3]) == round(step.cost, 4)
    report = re.search(r"Run report: (\S+)", result.stdout)[1]
    with open(report) as f:
        page = f.read()
    assert f'<td class="df-cost">{step.cost:.4f} USD</td>' in page
