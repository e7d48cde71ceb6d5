"""The record of each live cluster this machine's drivers started: one small JSON file each.

A cluster whose scheduler runs inside the driver (local, SSH, a cluster class
given by dotted path) has no service to ask about it: its record, written when
it is up and removed at its teardown, is what ``daskflow clusters list`` reads.
It names the driver's pid, so a record whose driver was killed (``kill -9``
leaves it behind) is seen as such; its worker pids, so ``gc`` can end them.

Records live in ``daskflow.cluster.records-folder`` (``~/.daskflow/clusters``).
Every backend writes one (it also keeps the run's datastore root, which the
labels in SLURM, Kubernetes and AWS do not), with the name of the backend that
lists it (``listed_by``): the records are the listing of a backend that has no
service to ask (:func:`live_clusters`, :func:`end`, the base class's defaults).
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict
from typing import Any

from .. import config
from .labels import ClusterLabels
from .live import LiveCluster
from .processes import alive, kill


def folder() -> str:
    return os.path.expanduser(str(config.get("cluster.records-folder")))


def write(name: str, *, backend: str, labels: ClusterLabels, scheduler: str | None,
          pids: list[int], workers: int, started_at: float, listed_by: str = "local") -> None:
    """Note the live cluster ``name``; never fails the cluster (a read-only home, ...).

    ``listed_by``: the backend whose listing shows it (``local``: these records).
    """
    record = {"name": name, "backend": backend, "listed_by": listed_by,
              "labels": asdict(labels),
              "scheduler": scheduler, "pids": sorted(pids), "workers": workers,
              "started_at": started_at, "written_at": time.time()}
    path = os.path.join(folder(), f"{name}.json")
    try:
        os.makedirs(folder(), mode=0o700, exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.replace(tmp, path)
    except OSError:
        pass


def remove(name: str) -> None:
    try:
        os.remove(os.path.join(folder(), f"{name}.json"))
    except OSError:
        pass


def read_all() -> list[dict[str, Any]]:
    """Every record, oldest first; a torn or foreign file is skipped."""
    found = []
    try:
        names = sorted(os.listdir(folder()))
    except OSError:
        return []
    for entry in names:
        if not entry.endswith(".json"):
            continue
        try:
            with open(os.path.join(folder(), entry)) as f:
                record = json.load(f)
            record["labels"] = ClusterLabels(**record["labels"])
            found.append(record)
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(found, key=lambda r: r.get("started_at") or 0)


def by_name() -> dict[str, dict[str, Any]]:
    return {record["name"]: record for record in read_all()}


# -- the listing of the backends that have no service to ask -------------------------------------
def live_clusters(listed_by: str = "local") -> list[LiveCluster]:
    """The recorded clusters ``listed_by`` lists, their worker processes checked.

    A record whose driver (on this machine) and workers are all gone is a stale note
    (a SIGKILLed driver's): removed, not listed.
    """
    found = []
    for record in read_all():
        if record.get("listed_by", "local") != listed_by:
            continue  # listed from its backend's service; the record only lends its datastore
        pids = record.get("pids") or []
        running = alive(pids)
        labels = record["labels"]
        driver_here = labels.driver_host == socket.gethostname()
        if driver_here and labels.driver_pid and not alive([labels.driver_pid]) \
                and pids and not running:
            remove(record["name"])
            continue
        state = "running" if (running or not pids) else "workers gone"
        found.append(LiveCluster(
            record["backend"], record["name"], labels, record.get("started_at"),
            len(running) if pids else record.get("workers"), state,
            handle={"pids": running}))
    return found


def end(cluster: LiveCluster) -> str:
    """Kill the recorded cluster's worker processes on this machine, remove its record."""
    pids = alive(cluster.handle.get("pids") or [])
    kill(pids)
    remove(cluster.name)
    return f"killed {len(pids)} worker process(es)" if pids else "removed its record"
