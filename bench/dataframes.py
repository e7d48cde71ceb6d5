"""Store and load a big pandas DataFrame artifact: Parquet vs pickle, time and peak memory.

    python bench/dataframes.py                      # ~1 GB DataFrame, 3 repetitions
    python bench/dataframes.py --rows 2000000 --reps 1
    python bench/dataframes.py --json results.json

Every measurement is its own process, so one case's memory never counts
against another's:

- ``store``: builds the DataFrame (not timed), then ``ArtifactStore.put_artifact``.
  Memory is the peak RSS *above* the RSS with the DataFrame built (the kernel's
  peak counter is reset just before storing: /proc/self/clear_refs), i.e. what
  storing costs on top of the data.
- ``load``: a fresh process runs ``ArtifactStore.get_artifact``.  Memory is the
  process's peak RSS minus its RSS before loading (pandas and pyarrow already
  imported), so it includes the DataFrame itself.

Cases:

- ``parquet``: what daskflow does for a DataFrame (pyarrow, 64 MiB row groups
  streamed to the file, snappy).
- ``pickle``: daskflow's fallback, cloudpickle protocol 5 streamed to the file.
- ``pickle-bytes``: ``cloudpickle.dumps`` then write the bytes, as Metaflow does
  and daskflow did before (one extra full copy while storing).

Cases run interleaved, rotating which goes first.  Not a test: nothing here
asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

CASES = ("parquet", "pickle", "pickle-bytes")


# -- the child processes -------------------------------------------------------------------

def make_frame(rows: int, seed: int = 7) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    words = np.array([f"customer-{i:05d}" for i in range(50_000)], dtype=object)
    return pd.DataFrame({
        "id": np.arange(rows, dtype=np.int64),
        "amount": rng.normal(100, 30, rows),
        "ratio": rng.random(rows),
        "when": pd.date_range("2024-01-01", periods=rows, freq="s", tz="Europe/Paris"),
        "count": pd.array(rng.integers(0, 1000, rows), dtype="Int64"),
        "region": pd.Categorical.from_codes(rng.integers(0, 6, rows),
                                            ["n", "s", "e", "w", "c", "i"]),
        "flag": rng.random(rows) < 0.5,
        "customer": pd.array(words[rng.integers(0, len(words), rows)], dtype="str"),
    })


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child_store(root: str, case: str, rows: int) -> dict[str, Any]:
    import cloudpickle

    from daskflow.datastore import ArtifactStore, dataframes

    df = make_frame(rows)
    data_bytes = int(df.memory_usage(deep=True).sum())
    store = ArtifactStore(root, "Bench")
    if case != "parquet":
        dataframes.pandas_kind = lambda value: None  # the store's pickle fallback
    base = rss_bytes()
    exact = reset_peak()
    started = time.perf_counter()
    if case == "pickle-bytes":
        data = cloudpickle.dumps(df, protocol=5)
        path = f"{store.layout.data}/bench-{case}"
        store.files.write(path, data)
        ref = {"sha": None, "path": path, "size": len(data), "fmt": "pickle"}
        del data
    else:
        found = store.put_artifact(df, "df")
        ref = {"sha": found.sha, "path": store.blobs.path(found.sha), "size": found.size,
               "fmt": found.fmt}
    seconds = time.perf_counter() - started
    peak = peak_bytes()
    return {"seconds": seconds, "extra_peak": max(0, peak - base) if exact else None,
            "data_bytes": data_bytes, "ref": ref}


def child_load(root: str, case: str, ref: dict[str, Any]) -> dict[str, Any]:
    import cloudpickle
    import pandas  # noqa: F401  (imported before measuring, as in any worker)
    import pyarrow.parquet  # noqa: F401

    from daskflow.datastore import ArtifactRef, ArtifactStore

    store = ArtifactStore(root, "Bench")
    base = rss_bytes()
    exact = reset_peak()
    started = time.perf_counter()
    if case == "pickle-bytes":
        with open(ref["path"], "rb") as f:
            df = cloudpickle.loads(f.read())
    else:
        df = store.get_artifact(ArtifactRef(ref["sha"], ref["fmt"], "DataFrame", ref["size"]))
    seconds = time.perf_counter() - started
    peak = peak_bytes()
    return {"seconds": seconds, "peak": (peak - base) if exact else peak, "rows": len(df)}


# -- the driver ----------------------------------------------------------------------------

def run_child(*args: str, timeout: float) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
         os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", *args],
                          capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args[:2]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=16_000_000,
                        help="rows of the DataFrame (16M: about 1 GB in memory)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--json", help="also write the results here ('-': stdout)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        kind, root, case, extra = args.child
        result = child_store(root, case, int(extra)) if kind == "store" else \
            child_load(root, case, json.loads(extra))
        print(json.dumps(result))
        return 0

    results: dict[str, list[dict[str, Any]]] = {case: [] for case in args.cases}
    data_bytes = 0
    for rep in range(args.reps):
        order = args.cases[rep % len(args.cases):] + args.cases[:rep % len(args.cases)]
        for case in order:
            root = tempfile.mkdtemp(prefix="daskflow-bench-")
            try:
                stored = run_child("store", root, case, str(args.rows), timeout=args.timeout)
                loaded = run_child("load", root, case, json.dumps(stored["ref"]),
                                   timeout=args.timeout)
            finally:
                shutil.rmtree(root, ignore_errors=True)
            assert loaded["rows"] == args.rows
            data_bytes = stored["data_bytes"]
            results[case].append({"store_s": stored["seconds"], "store_extra": stored["extra_peak"],
                                  "load_s": loaded["seconds"], "load_peak": loaded["peak"],
                                  "file": stored["ref"]["size"]})
            print(f"rep {rep + 1}/{args.reps} {case}: store {stored['seconds']:.2f}s, "
                  f"load {loaded['seconds']:.2f}s", file=sys.stderr)

    mb = 2**20
    print(f"\nDataFrame: {args.rows:,} rows x 8 columns, {data_bytes / mb:,.0f} MiB in memory "
          f"(pandas deep); median of {args.reps} run(s), one process per measurement")
    header = ("case", "store s", "store +MiB", "load s", "load peak MiB", "file MiB")
    rows = []
    summary: dict[str, dict[str, float]] = {}
    for case, runs in results.items():
        med = {key: statistics.median(r[key] for r in runs if r[key] is not None)
               for key in runs[0] if any(r[key] is not None for r in runs)}
        summary[case] = med
        rows.append((case, f"{med['store_s']:.2f}", f"{med.get('store_extra', 0) / mb:,.0f}",
                     f"{med['load_s']:.2f}", f"{med['load_peak'] / mb:,.0f}",
                     f"{med['file'] / mb:,.0f}"))
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for line in (header, tuple("-" * w for w in widths), *rows):
        print("  ".join(str(x).rjust(w) for x, w in zip(line, widths)))
    if "parquet" in summary and "pickle" in summary:
        p, k = summary["parquet"], summary["pickle"]
        print(f"\nparquet / pickle: store time {p['store_s'] / k['store_s']:.2f}x, "
              f"load time {p['load_s'] / k['load_s']:.2f}x, "
              f"load peak {p['load_peak'] / k['load_peak']:.2f}x, "
              f"file size {p['file'] / k['file']:.2f}x")
    if args.json:
        payload = json.dumps({"rows": args.rows, "data_bytes": data_bytes, "reps": args.reps,
                              "median": summary, "runs": results}, indent=2)
        if args.json == "-":
            print(payload)
        else:
            with open(args.json, "w") as f:
                f.write(payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
