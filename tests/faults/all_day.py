"""One process that runs flows and maps all day, as a notebook or a service does.

``python tests/faults/all_day.py RESULT.json --runs R --maps M`` calls
``ForeachFlow.run(n=3)`` R times and ``parallel_map`` M times in this one process,
interleaved (one run, then the maps that keep pace), and after every block samples what
the process holds: resident memory, open files, threads, child processes (the session
cluster's workers count), files in its temporary folder (``TMPDIR``, which the caller
points at a folder of its own) and TLS credential folders.

With ``--trace N`` (frames per allocation) it also keeps tracemalloc snapshots after the
warm-up and at the end, and writes the allocations that grew most between them.

``tests/faults/test_all_day.py`` runs it at a size CI affords; ``bench/all_day.py`` at the
issue's (200 runs, 500 maps) and prints the curves' end points.
"""

from __future__ import annotations

import argparse
import gc
import glob
import json
import os
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

FLOWS = Path(__file__).resolve().parents[1] / "flows"


def square(x: int) -> int:
    return x * x


def fd_kinds() -> dict[str, int]:
    """This process's open files by kind (socket, pipe, anon_inode:..., or the file's path),
    so a failure says which grew."""
    kinds: dict[str, int] = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        kind = target.split(":", 1)[0] if target.startswith(("socket:", "pipe:")) else target
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def sample(process, step: int, runs: int, maps: int) -> dict:
    gc.collect()
    temp = tempfile.gettempdir()
    files = sum(len(names) + len(dirs) for _, dirs, names in os.walk(temp))
    tls = glob.glob(os.path.join(temp, "**", ".daskflow-tls-*"), recursive=True) + \
        glob.glob(".daskflow-tls-*") + glob.glob(".daskflow/**/.daskflow-tls-*", recursive=True)
    return {"step": step, "runs": runs, "maps": maps, "t": time.time(),
            "rss_mib": process.memory_info().rss / 2**20,
            "open_files": process.num_fds(), "threads": process.num_threads(),
            "children": len(process.children(recursive=True)),
            "temp_entries": files, "tls_folders": len(tls), "fds": fd_kinds(),
            "thread_names": sorted(t.name for t in threading.enumerate())}


def memory_growth(samples: list[dict], warmup: int) -> dict[str, float]:
    """The issue's rule, as the test and the benchmark both measure it: resident memory
    after ``warmup`` runs, halfway through the rest and at the end, and the growth (%)
    from the warm-up to the end and within the second half."""
    after = [s for s in samples if s["runs"] >= warmup]
    warm, end = after[0], after[-1]
    half = min(after, key=lambda s: abs(s["runs"] - (warm["runs"] + end["runs"]) / 2))
    return {"warm": warm["rss_mib"], "half": half["rss_mib"], "end": end["rss_mib"],
            "half_runs": half["runs"],
            "growth": 100 * (end["rss_mib"] - warm["rss_mib"]) / warm["rss_mib"],
            "second_half": 100 * (end["rss_mib"] - half["rss_mib"]) / half["rss_mib"]}


def top_growth(before, after, limit: int = 30) -> list[dict]:
    stats = after.compare_to(before, "traceback")
    return [{"kib": round(s.size_diff / 1024, 1), "count": s.count_diff,
             "where": [f"{f.filename}:{f.lineno}" for f in s.traceback][-6:]}
            for s in stats[:limit]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("result")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--maps", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=10, help="runs before the baseline")
    parser.add_argument("--every", type=int, default=5, help="sample every this many runs")
    parser.add_argument("--trace", type=int, default=0, metavar="FRAMES",
                        help="keep tracemalloc snapshots, with this many frames each")
    args = parser.parse_args()

    import psutil
    sys.path.insert(0, str(FLOWS))
    from foreach import ForeachFlow

    from daskflow import parallel_map

    process = psutil.Process()
    samples, growth, snapshot = [], [], None
    maps_done = 0
    if args.trace:
        tracemalloc.start(args.trace)
    for i in range(1, args.runs + 1):
        run = ForeachFlow.run(n=3)
        assert run.successful and run.data.total == 6
        while maps_done < args.maps * i // args.runs:
            assert parallel_map(square, range(20)) == [x * x for x in range(20)]
            maps_done += 1
        if i == args.warmup and args.trace:
            gc.collect()
            snapshot = tracemalloc.take_snapshot()
        if i % args.every == 0 or i == args.warmup or i == args.runs:
            samples.append(sample(process, i, i, maps_done))
            print(json.dumps(samples[-1]), flush=True)
    if snapshot is not None:
        gc.collect()
        growth = top_growth(snapshot, tracemalloc.take_snapshot())
    Path(args.result).write_text(json.dumps({"samples": samples, "growth": growth}))


if __name__ == "__main__":
    main()
