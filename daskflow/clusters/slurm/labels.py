"""A cluster's labels in SLURM's terms: the ``--comment`` of each of its jobs.

``squeue -o %k`` shows it, which is how ``daskflow clusters list`` finds
daskflow's jobs and their run (:mod:`.inventory`).
"""

from __future__ import annotations

import re

from ..labels import ClusterLabels

#: what a SLURM comment field may not hold: it is one shell word of ``;``-separated pairs
SLURM_BAD = re.compile(r"[;=\s'\"\\$`]")


def slurm_comment(labels: ClusterLabels) -> str:
    """``daskflow;run=...;step=...``: one shell word, for ``#SBATCH --comment=``.

    >>> labels = ClusterLabels(run="HelloFlow/1764", step="train", user="ana",
    ...                        version="0.1.0", driver="host1:4242")
    >>> slurm_comment(labels)
    'daskflow;run=HelloFlow/1764;step=train;user=ana;version=0.1.0;driver=host1:4242'
    >>> from_slurm_comment(slurm_comment(labels)) == labels
    True
    """
    return ";".join(["daskflow", *(f"{k}={SLURM_BAD.sub('_', v)}" for k, v in labels.items())])


def from_slurm_comment(comment: str) -> ClusterLabels | None:
    """The labels of a job's comment; None for a job that is not daskflow's."""
    parts = comment.strip().split(";")
    if parts[0] != "daskflow":
        return None
    return ClusterLabels.from_fields(dict(part.split("=", 1) for part in parts[1:] if "=" in part))
