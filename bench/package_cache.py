#!/usr/bin/env python
"""A shared scheduler's worker after many code versions: what it keeps on disk and in memory.

On a stock ``dask scheduler`` with one stock worker process (the venv
``.ci/setup-stock-worker.sh`` makes; no daskflow there), it ships ``--versions`` versions
of a project (``helpers.py`` returning its version, and daskflow itself, as every run's
code package holds) and runs one task of each, as a run's tasks go on a shared scheduler
(``daskflow.remote.calls.PackageCalls``). The task imports its helpers and daskflow's
task module. After each version it asks the worker for:

  disk       packages unpacked under its ``daskflow-packages/`` folder, and their size
  kept       packages the process holds (the active one and those set aside)
  modules    modules of those packages (in sys.modules or set aside); sys.modules' size
  objects    objects the garbage collector tracks, after a collection
  rss        the worker process's resident memory

The worker keeps at most ``--max-packages`` (``daskflow.code.max-packages``). Not a test.

Usage:
  python bench/package_cache.py
  python bench/package_cache.py --versions 20 --max-packages 10 --no-worker-profile
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def version_of(name: str) -> int:
    """A task of one version: its helpers and daskflow's task module, as a step imports."""
    import importlib

    import daskflow.runtime.task  # noqa: F401  what every step's task imports
    return importlib.import_module(name).VERSION


def worker_state(dask_worker) -> dict:
    """What the worker process holds, asked with ``client.run``."""
    import os
    import sys

    folder = os.path.join(dask_worker.local_directory, "daskflow-packages")
    unpacked = os.listdir(folder) if os.path.isdir(folder) else []
    size = sum(os.path.getsize(os.path.join(here, f))
               for name in unpacked for here, _, files in os.walk(os.path.join(folder, name))
               for f in files)
    state = sys.modules.get("_daskflow_packages_1")
    kept = dict(getattr(state, "packages", {}))
    active = getattr(state, "active", None)
    set_aside = sum(len(r["modules"]) for r in kept.values())
    in_use = sum(1 for m in list(sys.modules.values())
                 if active and active in (getattr(m, "__file__", None) or ""))
    import gc
    gc.collect()
    with open("/proc/self/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
    return {"disk": len(unpacked), "disk_mb": size / 2**20, "kept": len(kept),
            "modules": set_aside + in_use, "sys_modules": len(sys.modules),
            "objects": len(gc.get_objects()), "rss_mb": rss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--max-packages", type=int, default=10)
    parser.add_argument("--no-worker-profile", action="store_true",
                        help="turn off the worker's statistical profiler, which keeps a "
                             "tree of every code location it saw (each package's files are "
                             "other locations) for distributed.worker.profile's history")
    args = parser.parse_args()

    from distributed import Client

    from daskflow.datastore import ArtifactStore
    from daskflow.remote import build_code_package, code_url, store_code
    from daskflow.remote.calls import PackageCalls, package_of

    python = Path(os.environ.get("DASKFLOW_STOCK_PYTHON") or
                  Path.home() / ".cache" / "daskflow" / "stock-worker" / "bin" / "python")
    bare = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    if args.no_worker_profile:
        bare["DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED"] = "False"
    with tempfile.TemporaryDirectory(prefix="daskflow-bench-cache-") as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "work").mkdir()
        dask = str(python.parent / "dask")
        scheduler_file = tmp_path / "scheduler.json"
        processes = [subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address",
             "127.0.0.1:0", "--scheduler-file", str(scheduler_file)], cwd=tmp_path / "work",
            env=bare, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        while not scheduler_file.exists():
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        processes.append(subprocess.Popen(
            [dask, "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard"],
            cwd=tmp_path / "work", env=bare, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL))
        store = ArtifactStore(str(tmp_path / "store"), "CacheFlow")
        try:
            with Client(address, timeout=30) as client:
                client.wait_for_workers(1, timeout=60)
                print(f"{'version':>7} {'disk':>4} {'MiB':>6} {'kept':>4} {'modules':>7} "
                      f"{'sys.modules':>11} {'gc objects':>10} {'rss MiB':>7}")
                first = client.run(worker_state)
                for version in range(1, args.versions + 1):
                    project = tmp_path / f"v{version}"
                    project.mkdir()
                    (project / "helpers.py").write_text(f"VERSION = {version}\n")
                    (project / "flow.py").write_text("import helpers\n")
                    record = store_code(build_code_package(project / "flow.py"), store)
                    calls = PackageCalls(package_of(record["sha"], code_url(store, record),
                                                    max_packages=args.max_packages))
                    calls.install(client)
                    got = calls.submit(client, version_of, "helpers",
                                       key=f"version-{version}").result()
                    assert got == version, (got, version)
                    [state] = client.run(worker_state).values()
                    print(f"{version:>7} {state['disk']:>4} {state['disk_mb']:>6.1f} "
                          f"{state['kept']:>4} {state['modules']:>7} "
                          f"{state['sys_modules']:>11} {state['objects']:>10} "
                          f"{state['rss_mb']:>7.0f}")
                [before] = first.values()
                print(f"before any package: sys.modules {before['sys_modules']}, "
                      f"rss {before['rss_mb']:.0f} MiB")
        finally:
            for process in reversed(processes):
                process.terminate()
                process.wait(30)


if __name__ == "__main__":
    sys.exit(main())
