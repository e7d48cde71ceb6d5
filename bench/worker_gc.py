#!/usr/bin/env python
"""What a worker's garbage collections cost while splits run, with its modules frozen or not.

A local worker forks from a server that imported distributed and daskflow (and s3fs
for a datastore on S3; its worker then makes an S3 client). Splits allocate as they run,
and each of the collector's full passes walks every object still tracked: the modules'
ones too, unless they were frozen (``gc.freeze``), as the fork server and the worker's
store opener now do. This times a loop of split-sized allocations (each a few dozen
small objects in cycles) in a fresh process, in each of four states:

  local            distributed and daskflow imported
  s3               and s3fs, with an S3 client made (no request is sent)
  ... + frozen     the same, then ``gc.freeze()``

Usage: python bench/worker_gc.py [--splits 5000] [--reps 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

CHILD = r"""
import gc, sys, time
import daskflow, distributed, distributed.worker, daskflow.runtime.task
if sys.argv[1] == "s3":
    import s3fs
    s3fs.S3FileSystem(key="bench", secret="bench", skip_instance_cache=True).connect()
if sys.argv[2] == "frozen":
    gc.freeze()
spent, began = [0.0, 0], [0.0]
def timed(phase, info):
    if phase == "start":
        began[0] = time.perf_counter()
    else:
        spent[0] += time.perf_counter() - began[0]
        spent[1] += 1
gc.callbacks.append(timed)
class Node:
    def __init__(self):
        self.me, self.value = self, {"a": [1, 2, 3], "b": {"x": 1}}
kept, start = [], time.perf_counter()
for i in range(int(sys.argv[3])):
    made = [Node() for _ in range(60)]
    kept.append({"task_id": str(i), "record": {"frames": list(range(5))}})
print(time.perf_counter() - start, spent[0], spent[1], len(gc.get_objects()), gc.get_freeze_count())
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--splits", type=int, default=5000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    print(f"{'state':<14} {'loop s':>7} {'in gc s':>8} {'passes':>7} {'tracked':>8} {'frozen':>8}")
    for store in ("local", "s3"):
        for freeze in ("live", "frozen"):
            runs = []
            for _ in range(args.reps):
                out = subprocess.run([sys.executable, "-c", CHILD, store, freeze,
                                      str(args.splits)], capture_output=True, text=True,
                                     check=True).stdout.split()
                runs.append([float(x) for x in out])
            loop, gc_s, passes, tracked, frozen = (statistics.median(r[i] for r in runs)
                                                   for i in range(5))
            name = store + (" + frozen" if freeze == "frozen" else "")
            print(f"{name:<14} {loop:7.3f} {gc_s:8.3f} {passes:7.0f} {tracked:8.0f} "
                  f"{frozen:8.0f}")
    print(f"medians of {args.reps} fresh processes, {args.splits} split-sized allocations each")
    return 0


if __name__ == "__main__":
    sys.exit(main())
