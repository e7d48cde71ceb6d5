"""Library use, in one process: parallel_map's first and second call (a script and a
notebook kernel) against multiprocessing.Pool and client.map on a warm cluster, and a
4-step flow run in-process (``MyFlow.run()``) against ``python flow.py run``.

Run: python bench/library_use.py [--repeat 3] [--items 200]

Every timing is printed with the 1-minute load average seen before it (the machine is
shared); the table gives medians over ``--repeat`` fresh processes (or kernels).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
FLOW = BENCH / "flows" / "linear_daskflow.py"
METAFLOW_PYTHON = BENCH / ".venv-metaflow" / "bin" / "python"

# One process: each line it prints is "name seconds".
MAP_SCRIPT = textwrap.dedent("""
    import json, multiprocessing, os, sys, time
    N = int(sys.argv[1])
    W = len(os.sched_getaffinity(0))

    def work(x):
        return x * x

    if __name__ == "__main__":  # for multiprocessing.Pool's sake, not daskflow's
        out = {}
        t = time.perf_counter()
        from daskflow import parallel_map
        parallel_map(work, range(N))
        out["parallel_map, 1st call"] = time.perf_counter() - t
        t = time.perf_counter()
        parallel_map(work, range(N))
        out["parallel_map, 2nd call"] = time.perf_counter() - t

        t = time.perf_counter()
        with multiprocessing.Pool(W) as pool:
            pool.map(work, range(N))
        out["multiprocessing.Pool (start + map)"] = time.perf_counter() - t

        from distributed import Client, LocalCluster
        with LocalCluster(n_workers=W, threads_per_worker=1, processes=True,
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            client.gather(client.map(work, range(N)))  # warm
            t = time.perf_counter()
            client.gather(client.map(work, range(N), pure=False))
            out["client.map, warm cluster"] = time.perf_counter() - t
        print("RESULT " + json.dumps(out))
""")

FLOW_SCRIPT = textwrap.dedent("""
    import json, sys, time
    t = time.perf_counter()
    from daskflow.runtime import load_flow
    flow = load_flow(sys.argv[1])
    out = {}
    flow.run(n=10)
    out["MyFlow.run() in-process, 1st (imports included)"] = time.perf_counter() - t
    t = time.perf_counter()
    flow.run(n=10)
    out["MyFlow.run() in-process, 2nd"] = time.perf_counter() - t
    print("RESULT " + json.dumps(out))
""")


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def run_script(source: str, *args: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "script.py"
        script.write_text(source)
        proc = subprocess.run([sys.executable, str(script), *args], cwd=folder,
                              capture_output=True, text=True, timeout=600,
                              env={**os.environ, "DASK_DASKFLOW__OUTPUT__STREAM_TASK_OUTPUT":
                                   "false"})
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode or line is None:
        raise SystemExit(f"bench script failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return json.loads(line[len("RESULT "):])


def run_kernel(source: str, *args: str) -> dict[str, float]:
    """The same code in a Jupyter kernel (nbclient): the notebook case."""
    import nbclient
    from nbformat.v4 import new_code_cell, new_notebook
    code = f"import sys\nsys.argv = ['notebook', *{list(args)!r}]\n" + source
    notebook = new_notebook(cells=[new_code_cell(code)])
    with tempfile.TemporaryDirectory() as folder:
        nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": folder}}).execute()
    text = "".join(o.get("text", "") for o in notebook.cells[0].outputs)
    line = next(x for x in text.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def whole_process(command: list[str], cwd: str) -> float:
    t = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    if proc.returncode:
        raise SystemExit(f"{command} failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - t


def flow_cli(repeat: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as folder:
            flow = Path(folder) / "flow.py"
            flow.write_text(FLOW.read_text())
            key = "python flow.py run (whole process)"
            times.setdefault(key, []).append(
                whole_process([sys.executable, str(flow), "--quiet", "run", "--n", "10"],
                              folder))
            print(f"  {key}: {times[key][-1]:.2f} s (load {load()})")
            if METAFLOW_PYTHON.exists():
                metaflow_flow = Path(folder) / "mf.py"
                metaflow_flow.write_text((BENCH / "flows" / "linear_metaflow.py").read_text())
                runner = ("from metaflow import Runner\n"
                          f"Runner({str(metaflow_flow)!r}, show_output=False).run(n=10)\n")
                key = "Metaflow Runner(...).run() (whole process)"
                times.setdefault(key, []).append(
                    whole_process([str(METAFLOW_PYTHON), "-c", runner], folder))
                print(f"  {key}: {times[key][-1]:.2f} s (load {load()})")
    if not METAFLOW_PYTHON.exists():
        print("  Metaflow Runner: skipped, bench/.venv-metaflow does not exist "
              "(python bench/foreach_peers.py makes it)")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--no-notebook", action="store_true")
    args = parser.parse_args()

    results: dict[str, dict[str, list[float]]] = {}
    for where, runner in (("script", run_script), ("notebook", run_kernel)):
        if where == "notebook" and args.no_notebook:
            continue
        for _ in range(args.repeat):
            got = runner(MAP_SCRIPT, str(args.items))
            print(f"{where}: " + ", ".join(f"{k} {v:.3f} s" for k, v in got.items())
                  + f" (load {load()})")
            for key, value in got.items():
                results.setdefault(f"{where}", {}).setdefault(key, []).append(value)
    for _ in range(args.repeat):
        got = run_script(FLOW_SCRIPT, str(FLOW))
        print("flow: " + ", ".join(f"{k} {v:.2f} s" for k, v in got.items())
              + f" (load {load()})")
        for key, value in got.items():
            results.setdefault("flow", {}).setdefault(key, []).append(value)
    for key, values in flow_cli(args.repeat).items():
        results.setdefault("flow", {})[key] = values

    print(f"\nmedians of {args.repeat}, {args.items} items for the maps")
    print("| where | what | median s |\n|---|---|---|")
    for where, rows in results.items():
        for key, values in rows.items():
            print(f"| {where} | {key} | {statistics.median(values):.3f} |")


if __name__ == "__main__":
    main()
