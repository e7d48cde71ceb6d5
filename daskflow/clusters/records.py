"""The record of each live cluster this machine's drivers started: one small JSON file each.

A cluster whose scheduler runs inside the driver (local, SSH, a cluster class
given by dotted path) has no service to ask about it: its record, written when
it is up and removed at its teardown, is what ``daskflow clusters list`` reads.
It names the driver's pid, so a record whose driver was killed (``kill -9``
leaves it behind) is seen as such; its worker pids, so ``gc`` can end them.

Records live in ``daskflow.cluster.records-folder`` (``~/.daskflow/clusters``).
Every backend writes one (it also keeps the run's datastore root, which the
labels in SLURM, Kubernetes and AWS do not).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from typing import Any

from .. import config
from .labels import ClusterLabels


def folder() -> str:
    return os.path.expanduser(str(config.get("cluster.records-folder")))


def write(name: str, *, backend: str, labels: ClusterLabels, scheduler: str | None,
          pids: list[int], workers: int, started_at: float) -> None:
    """Note the live cluster ``name``; never fails the cluster (a read-only home, ...)."""
    record = {"name": name, "backend": backend, "labels": asdict(labels),
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
