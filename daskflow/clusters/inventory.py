"""The live clusters of every configured backend, read from the backends, and their clean-up.

``daskflow clusters list`` and ``daskflow clusters gc`` are built on this:

- :func:`live_clusters` asks each backend what of daskflow's still runs: the
  records of in-driver clusters (local, SSH; :mod:`.records`), ``squeue`` for
  SLURM (jobs whose ``--comment`` is daskflow's), ECS tasks and EC2 instances
  by their tags (:mod:`.aws_inventory`), DaskCluster resources by label
  selector (:mod:`.kubernetes_inventory`);
- :func:`judge` says whether a cluster's run is still alive: its run record's
  status and heartbeat (:mod:`daskflow.liveness`), else its driver's pid when
  that ran on this machine;
- :func:`end` closes one: kills its worker processes, ``scancel``, StopTask,
  TerminateInstances, deletes the DaskCluster.

A backend that cannot be asked (no credentials, its service down) gives a note,
never a failure of the whole listing.
"""

from __future__ import annotations

import getpass
import importlib
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field, replace
from typing import Any

from .. import config
from ..exceptions import ConfigurationError
from .labels import ClusterLabels

#: where each backend's listing lives: backend -> "module:function" (list, end)
SOURCES: dict[str, tuple[str, str]] = {
    "local": ("daskflow.clusters.inventory:list_records", "daskflow.clusters.inventory:end_record"),
    "slurm": ("daskflow.clusters.inventory:list_slurm", "daskflow.clusters.inventory:end_slurm"),
    "aws": ("daskflow.clusters.aws_inventory:list_aws", "daskflow.clusters.aws_inventory:end_aws"),
    "kubernetes": ("daskflow.clusters.kubernetes_inventory:list_kubernetes",
                   "daskflow.clusters.kubernetes_inventory:end_kubernetes"),
}
#: backends whose clusters only their driver's machine knows of: listed from records
RECORDED = ("local", "ssh")


@dataclass
class LiveCluster:
    """One cluster daskflow started that still runs somewhere."""

    backend: str
    name: str
    labels: ClusterLabels
    started_at: float | None
    workers: int | None
    state: str
    #: the run is still running (True), is over or lost its driver (False), unknown (None)
    run_alive: bool | None = None
    why: str = ""                  # how run_alive was decided
    #: what :func:`end` needs: pids, job ids, task ARNs, ... (backend-specific)
    handle: dict[str, Any] = field(default_factory=dict)

    @property
    def age(self) -> float | None:
        return None if self.started_at is None else max(0.0, time.time() - self.started_at)

    def as_json(self) -> dict[str, Any]:
        return {"backend": self.backend, "name": self.name, "run": self.labels.run,
                "step": self.labels.step, "user": self.labels.user,
                "version": self.labels.version, "driver": self.labels.driver,
                "started_at": self.started_at, "age": self.age, "workers": self.workers,
                "state": self.state, "run_alive": self.run_alive, "why": self.why}


def chosen_backends(names: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """The sources to ask: ``names``, else ``daskflow.cluster.list-backends`` (auto: what
    this machine is set up for)."""
    setting = list(names or []) or config.get("cluster.list-backends")
    if setting in (None, "auto"):
        found = ["local"]
        if shutil.which("squeue"):
            found.append("slurm")
        if _aws_configured():
            found.append("aws")
        if os.environ.get("KUBECONFIG") or os.path.exists(os.path.expanduser("~/.kube/config")):
            found.append("kubernetes")
        return found
    if isinstance(setting, str):
        setting = [setting]
    chosen = []
    for name in setting:
        source = "local" if name in RECORDED or "." in name else \
            "aws" if name.startswith("aws") else name  # a dotted-path class: recorded
        if source not in SOURCES:
            raise ConfigurationError(
                f"Cannot list clusters of backend '{name}': known are "
                f"{', '.join(sorted({*SOURCES, *RECORDED}))} (daskflow.cluster.list-backends "
                f"or --backend).")
        if source not in chosen:
            chosen.append(source)
    return chosen


def live_clusters(backends: list[str] | tuple[str, ...] | None = None,
                  datastore_root: str | None = None) -> tuple[list[LiveCluster], list[str]]:
    """Every live cluster of the chosen backends, judged; and a note per backend not asked."""
    found: list[LiveCluster] = []
    notes: list[str] = []
    for source in chosen_backends(backends):
        try:
            found += _function(SOURCES[source][0])()
        except Exception as exc:  # noqa: BLE001  one backend down: the others still list
            notes.append(f"{source}: not listed: {type(exc).__name__}: {exc}")
    roots = _datastore_roots(datastore_root)
    from . import records
    noted = records.by_name()  # a record made here knows the run's datastore root
    for cluster in found:
        record = noted.get(cluster.name)
        if cluster.labels.datastore is None and record is not None:
            cluster.labels = replace(cluster.labels, datastore=record["labels"].datastore)
        cluster.run_alive, cluster.why = judge(cluster, roots)
    return found, notes


def end(cluster: LiveCluster) -> str:
    """Close ``cluster`` with its backend's own means; what was done, in words."""
    source = "local" if cluster.backend in RECORDED or cluster.handle.get("recorded") \
        else "aws" if cluster.backend.startswith("aws") else cluster.backend
    return str(_function(SOURCES[source][1])(cluster))


# -- is its run alive? ---------------------------------------------------------------------------
def judge(cluster: LiveCluster, roots: list[str]) -> tuple[bool | None, str]:
    """(run alive?, why) from the run's record, else from the driver's pid on this machine."""
    from ..liveness import driver_lost
    labels = cluster.labels
    if labels.run and "/" in labels.run:
        flow, run_id = labels.run.split("/", 1)
        for root in [r for r in (labels.datastore, *roots) if r]:
            record = _run_record(root, flow, run_id)
            if record is None:
                continue
            status = record.get("status")
            if status != "running":
                return False, f"run {status}"
            if driver_lost(record):
                return False, "driver gone"
            return True, "heartbeat fresh"
    pid = labels.driver_pid
    if labels.driver_host == socket.gethostname() and pid:
        if pid_alive(pid):
            return True, f"driver pid {pid} alive"
        return False, f"driver pid {pid} gone"
    return None, "run record not found (give --datastore-root)" if labels.run else \
        "not started by a run, driver elsewhere"


def _run_record(root: str, flow: str, run_id: str) -> dict[str, Any] | None:
    from ..datastore import ArtifactStore
    try:
        return ArtifactStore(root, flow).read_run(run_id)
    except Exception:  # noqa: BLE001  not in this datastore
        return None


def _datastore_roots(given: str | None) -> list[str]:
    from ..datastore import resolve_root
    try:
        return [resolve_root(given)]
    except Exception:  # noqa: BLE001
        return []


def pid_alive(pid: int) -> bool:
    import psutil
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


# -- in-driver clusters: their records -----------------------------------------------------------
def list_records() -> list[LiveCluster]:
    """Clusters with a record here whose backend has no service to ask (local, SSH, ...)."""
    from . import records
    remote = {"slurm", "kubernetes"}
    found = []
    for record in records.read_all():
        backend = record["backend"]
        if backend in remote or backend.startswith("aws"):
            continue  # listed from their backend; the record only lends its datastore
        pids = record.get("pids") or []
        alive = [pid for pid in pids if pid_alive(pid)]
        driver = record["labels"].driver_pid
        driver_here = record["labels"].driver_host == socket.gethostname()
        if driver_here and driver and not pid_alive(driver) and pids and not alive:
            records.remove(record["name"])  # all of it ended with its driver: a stale note
            continue
        state = "running" if (alive or not pids) else "workers gone"
        found.append(LiveCluster(
            backend, record["name"], record["labels"], record.get("started_at"),
            len(alive) if pids else record.get("workers"), state,
            handle={"pids": alive, "recorded": True}))
    return found


def end_record(cluster: LiveCluster) -> str:
    from . import records
    from .processes import alive, kill
    pids = alive(cluster.handle.get("pids") or [])
    kill(pids)
    records.remove(cluster.name)
    return f"killed {len(pids)} worker process(es)" if pids else "removed its record"


# -- SLURM: squeue ---------------------------------------------------------------------------------
SQUEUE_FORMAT = "%i|%j|%T|%S|%V|%k"


def list_slurm() -> list[LiveCluster]:
    """The user's daskflow jobs in squeue, one cluster per job name."""
    out = _slurm("squeue", "-h", "-u", getpass.getuser(), "-o", SQUEUE_FORMAT)
    return parse_squeue(out)


def parse_squeue(text: str) -> list[LiveCluster]:
    """``squeue -o '%i|%j|%T|%S|%V|%k'`` lines as clusters (jobs of one name: one cluster).

    >>> [c.name for c in parse_squeue("7|daskflow-1a|RUNNING|2026-01-01T10:00:00|"
    ...     "2026-01-01T09:59:59|daskflow;run=F/1;step=a\\n8|other|RUNNING|N/A|N/A|x")]
    ['daskflow-1a']
    """
    clusters: dict[str, LiveCluster] = {}
    for line in text.splitlines():
        parts = line.strip().split("|", 5)
        if len(parts) != 6:
            continue
        job_id, name, state, start, submit, comment = parts
        labels = ClusterLabels.from_slurm_comment(comment)
        if labels is None:
            continue
        cluster = clusters.setdefault(name, LiveCluster(
            "slurm", name, labels, None, 0, "PENDING", handle={"jobs": []}))
        cluster.handle["jobs"].append(job_id)
        when = _slurm_time(start) or _slurm_time(submit)
        if when is not None:
            cluster.started_at = min(cluster.started_at or when, when)
        if state == "RUNNING":
            cluster.workers = (cluster.workers or 0) + 1
            cluster.state = "RUNNING"
    return list(clusters.values())


def end_slurm(cluster: LiveCluster) -> str:
    jobs = list(cluster.handle.get("jobs") or [])
    if jobs:
        _slurm("scancel", *jobs)
    return f"scancel {len(jobs)} job(s)"


def _slurm(*args: str) -> str:
    from dask.utils import parse_timedelta
    timeout = parse_timedelta(config.get("cluster.slurm.command-timeout"))
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"'{' '.join(args)}' failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def _slurm_time(text: str) -> float | None:
    try:
        return time.mktime(time.strptime(text.strip(), "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


# -- helpers ---------------------------------------------------------------------------------------
def _function(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _aws_configured() -> bool:
    try:
        import botocore.session  # what the aws backends use (daskflow[aws] names it)
    except ImportError:
        return False
    session = botocore.session.get_session()
    return session.get_credentials() is not None and \
        bool(session.get_config_variable("region"))


def as_rows(clusters: list[LiveCluster]) -> list[dict[str, str]]:
    """The table ``daskflow clusters list`` prints, one dict of column -> text per cluster."""
    rows = []
    for c in clusters:
        rows.append({"BACKEND": c.backend, "NAME": c.name, "RUN": c.labels.run or "-",
                     "STEP": c.labels.step or ("(default)" if c.labels.run else "-"),
                     "AGE": _age(c.age), "WORKERS": "?" if c.workers is None else str(c.workers),
                     "STATE": c.state,
                     "RUN ALIVE": {True: "yes", False: "no", None: "?"}[c.run_alive]
                     + f" ({c.why})"})
    return rows


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


__all__ = ["LiveCluster", "as_rows", "chosen_backends", "end", "judge",
           "live_clusters", "parse_squeue"]
