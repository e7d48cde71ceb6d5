#!/usr/bin/env python
"""What the run's displays cost the driver per task, at 100,000 tasks.

Feeds each observer the events of a foreach of N splits, in one process, and prints
the time per call and the memory the observer kept:

  rich      RichProgress drawing live (8 frames a second) to a terminal-like console
            writing to /dev/null, one task_submitted and one task_finished per split
  rich-bat  the same, with tasks_submitted / tasks_finished per batch of --batch splits
  plain     PlainLog (stdout to /dev/null), one call per split
  plain-bat PlainLog, one call per batch (its default loops over the splits)
  page      the flow page's feed (FlowPageFeed: the counts it sends the schedulers a few
            times a second), one call per split; page-bat one call per batch

`tracemalloc` runs in a second pass only (it slows every allocation), to report what
the observer still holds when all N tasks are submitted and half are done.

  python bench/observer_cost.py --n 100000
  PYTHONPATH=/path/to/other/checkout python bench/observer_cost.py --n 100000

Not a pytest test.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
import tracemalloc


def observers(batched: bool):
    from rich.console import Console

    from daskflow.runtime.events import PlainLog
    from daskflow.runtime.progress import RichProgress

    devnull = open(os.devnull, "w")  # noqa: SIM115 - closed at exit
    console = Console(file=devnull, force_terminal=True, width=120, height=40)
    yield "rich" + ("-bat" if batched else ""), RichProgress(console=console)
    yield "plain" + ("-bat" if batched else ""), PlainLog()
    yield "page" + ("-bat" if batched else ""), page_feed()


def page_feed():
    import importlib.util
    from pathlib import Path

    from daskflow.graph import FlowGraph
    from daskflow.runtime.flowpage import FlowPageFeed

    spec = importlib.util.spec_from_file_location(
        "foreach_daskflow", Path(__file__).parent / "flows" / "foreach_daskflow.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # as a module: its __main__ guard keeps its CLI out
    return FlowPageFeed(FlowGraph.from_class(module.ForeachFlow))


def feed(view, ids, batch: int, batched: bool, upto: int | None = None) -> tuple[float, float]:
    """Submit every id, finish the first ``upto``; seconds spent in each kind of call."""
    view.foreach_expanded(step="start", target="work", count=len(ids))
    upto = len(ids) if upto is None else upto
    t0 = time.perf_counter()
    if batched and hasattr(view, "tasks_submitted"):
        for i in range(0, len(ids), batch):
            view.tasks_submitted(step="work", task_ids=ids[i:i + batch], foreach_depth=1)
    else:
        for task_id in ids:
            view.task_submitted(step="work", task_id=task_id, foreach_depth=1)
    t1 = time.perf_counter()
    if batched and hasattr(view, "tasks_finished"):
        for i in range(0, upto, batch):
            view.tasks_finished(step="work", task_ids=ids[i:min(i + batch, upto)],
                                foreach_depth=1)
    else:
        for task_id in ids[:upto]:
            view.task_finished(step="work", task_id=task_id, ok=True, foreach_depth=1)
    return t1 - t0, time.perf_counter() - t1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=50)
    args = ap.parse_args(argv)
    ids = [str(i) for i in range(2, args.n + 2)]
    print(f"observer_cost: N={args.n}, batch={args.batch}, Python {sys.version.split()[0]}")
    print(f"{'observer':10} {'submit us/task':>15} {'finish us/task':>15} {'kept kB':>9}")
    for batched in (False, True):
        for name, view in observers(batched):
            with contextlib.redirect_stdout(io.StringIO()):
                view.run_started(flow_name="F", run_id="1", datastore="/d")
                submit, finish = feed(view, ids, args.batch, batched)
                view.run_finished(flow_name="F", run_id="1", successful=True,
                                  tasks=args.n, seconds=1.0)
            view.close()
            kept = held(name, batched, ids, args.batch)
            print(f"{name:10} {submit / args.n * 1e6:15.2f} {finish / args.n * 1e6:15.2f} "
                  f"{kept / 1024:9.1f}")
    return 0


def held(name: str, batched: bool, ids: list[str], batch: int) -> int:
    """Bytes a fresh observer of this kind holds with every task submitted, half done."""
    view = dict(observers(batched))[name]
    if name.startswith("page"):  # it keeps its counts from the run's start
        view.run_started(flow_name="F", run_id="1", datastore="/d")
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    with contextlib.redirect_stdout(io.StringIO()):
        feed(view, ids, batch, batched, upto=len(ids) // 2)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    view.close()
    return sum(s.size_diff for s in after.compare_to(before, "filename"))


if __name__ == "__main__":
    sys.exit(main())
