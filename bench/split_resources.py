#!/usr/bin/env python
"""What resources per foreach split cost, next to a plain foreach of the same size.

Two measures, printed as tables:

  whole process  ``python flows/split_resources_flow.py run --n N --max-workers W`` with
                 the step's memory fixed in ``@resources`` ("fixed") and computed per
                 split by a function that gives every split that same size
                 ("per-split"): the same clusters start, so the difference is the
                 sizing (one task on the default cluster, the check of each size, the
                 grouping). "two sizes" adds a second cluster (split by parity).
                 Repetitions are interleaved; medians of wall seconds and of the CPU
                 seconds of the flow's process tree (less moved by a shared machine).
  sizing alone   :func:`daskflow.runtime.splits.size_splits` in this process, over a
                 stored foreach list of M items (read from the datastore, one function
                 call per item, the compact answer): seconds and the answer's pickled
                 size, which is what travels back to the driver.

Usage:
  python bench/split_resources.py                       # N=100, W=2, 3 reps, M=100000
  python bench/split_resources.py --n 200 --reps 5 --items 10000

Not a pytest test. The machine is shared: the 1-minute load average is printed.
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
FLOW = HERE / "flows" / "split_resources_flow.py"
MODES = {"fixed": "0", "per-split": "1", "two sizes": "2"}


def run_once(mode: str, n: int, workers: int) -> tuple[float, float]:
    """Wall seconds and CPU seconds (the flow's whole process tree) of one run."""
    env = dict(os.environ, BENCH_PER_SPLIT=MODES[mode],
               PYTHONPATH=os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]))
    with tempfile.TemporaryDirectory() as folder:
        cpu_before = _children_cpu()
        started = time.perf_counter()
        done = subprocess.run([sys.executable, str(FLOW), "--quiet", "run", "--n", str(n),
                               "--max-num-splits", str(n), "--max-workers", str(workers)],
                              cwd=folder, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        cpu = _children_cpu() - cpu_before
    if done.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{done.stderr[-2000:]}")
    return seconds, cpu


def _children_cpu() -> float:
    """User + system seconds of finished child processes (and the children they waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sizing_alone(items: int) -> tuple[float, int]:
    """Seconds of size_splits over ``items`` stored items, and its answer's pickled bytes."""
    sys.path.insert(0, str(HERE.parent))
    os.environ["BENCH_PER_SPLIT"] = "2"
    from daskflow.runtime.context import RunContext, TaskRef
    from daskflow.runtime.plan import plan_steps
    from daskflow.runtime import load_flow
    from daskflow.runtime.splits import size_splits

    flow_cls = load_flow(str(FLOW))
    graph = flow_cls._flow_graph()
    with tempfile.TemporaryDirectory() as root:
        ctx = RunContext(flow_cls, graph, root, "1", {}, plans=plan_steps(flow_cls, graph))
        ctx.store().write_foreach_items("1", "start", "1", 0, list(range(items)), "items")
        parent = TaskRef("start", "1", 0, {}, ())
        started = time.perf_counter()
        sizes = size_splits(ctx, parent, "work")
        seconds = time.perf_counter() - started
    assert len(sizes.of) == items and len(sizes.requests) == 2, sizes.refused
    return seconds, len(pickle.dumps(sizes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100, help="splits of the whole-process runs")
    parser.add_argument("--workers", type=int, default=2, help="--max-workers")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--items", type=int, default=100_000, help="items for sizing alone")
    args = parser.parse_args()
    print(f"load average (1 min) before: {os.getloadavg()[0]:.2f}")
    times: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
    for rep in range(args.reps):
        order = list(MODES)[rep % len(MODES):] + list(MODES)[:rep % len(MODES)]
        for mode in order:
            times[mode].append(run_once(mode, args.n, args.workers))
    fixed = [statistics.median(t[i] for t in times["fixed"]) for i in (0, 1)]
    print(f"\nwhole process, foreach of {args.n}, --max-workers {args.workers}, "
          f"{args.reps} reps (medians; CPU: the flow's process tree)")
    print(f"{'mode':<10} {'wall s':>7} {'vs fixed':>9} {'CPU s':>7} {'vs fixed':>9}   all wall")
    for mode, values in times.items():
        wall, cpu = (statistics.median(t[i] for t in values) for i in (0, 1))
        print(f"{mode:<10} {wall:7.2f} {wall - fixed[0]:+9.2f} {cpu:7.2f} "
              f"{cpu - fixed[1]:+9.2f}   " + " ".join(f"{t[0]:.2f}" for t in values))
    seconds, size = sizing_alone(args.items)
    print(f"\nsizing alone: {args.items} items in {seconds:.3f} s "
          f"({seconds / args.items * 1e6:.1f} us per item); answer {size / 1024:.0f} KiB pickled")
    print(f"load average (1 min) after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
