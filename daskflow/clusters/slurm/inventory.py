"""daskflow's live SLURM jobs, found in ``squeue`` by their ``--comment``, and how ``gc`` ends them.

Every job of a daskflow cluster carries the cluster's name as its job name and
the run's labels in its comment (:mod:`.labels`). Listing is one ``squeue`` of
the user's jobs (:func:`parse_squeue` reads it: jobs of one name are one
cluster); ending one is ``scancel`` of its jobs. The slurm backend's
``live_clusters`` and ``end_cluster`` run them through its bounded ``command``.
"""

from __future__ import annotations

import time

from ..live import LiveCluster
from .labels import from_slurm_comment

#: job id, name, state, start and submit time, comment
SQUEUE_FORMAT = "%i|%j|%T|%S|%V|%k"


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
        labels = from_slurm_comment(comment)
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


def _slurm_time(text: str) -> float | None:
    try:
        return time.mktime(time.strptime(text.strip(), "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None
