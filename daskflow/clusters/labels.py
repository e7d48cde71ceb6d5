"""What every cluster daskflow starts says about itself: run, step, user, version, driver.

The runtime states the labels of the cluster it is about to open
(:func:`labelled`); each backend writes them where its own tools show them:
Kubernetes labels on the DaskCluster, tags on ECS task definitions, tasks and
EC2 instances, the SLURM job's ``--comment``, and the record of an in-driver
cluster (:mod:`.records`). ``daskflow clusters list`` reads them back from there.

A cluster opened outside a run (``backend.open(request)`` in a script) still
carries the user, daskflow's version and its driver.
"""

from __future__ import annotations

import contextvars
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

#: the Kubernetes label every daskflow DaskCluster carries, and ``list`` selects on
MANAGED_BY = ("app.kubernetes.io/managed-by", "daskflow")
#: prefix of daskflow's own Kubernetes label keys and AWS tag keys
K8S_PREFIX = "daskflow.dev/"
TAG_PREFIX = "daskflow-"
#: what a Kubernetes label value may be (at most 63 characters)
K8S_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
#: what an AWS tag value may hold (letters, digits, spaces and + - = . _ : / @)
AWS_VALUE_BAD = re.compile(r"[^\w +\-=.:/@]")
#: what a SLURM comment field may not hold: it is one shell word of ``;``-separated pairs
SLURM_BAD = re.compile(r"[;=\s'\"\\$`]")


@dataclass(frozen=True)
class ClusterLabels:
    """Who a cluster belongs to.

    >>> labels = ClusterLabels(run="HelloFlow/1764", step="train", user="ana",
    ...                        version="0.1.0", driver="host1:4242")
    >>> labels.slurm_comment()
    'daskflow;run=HelloFlow/1764;step=train;user=ana;version=0.1.0;driver=host1:4242'
    >>> ClusterLabels.from_slurm_comment(labels.slurm_comment()) == labels
    True
    """

    run: str | None = None        # the run's pathspec, Flow/run_id
    step: str | None = None       # the step(s) it serves; None: the run's default cluster
    user: str = ""
    version: str = ""             # daskflow's
    driver: str = ""              # host:pid of the process that started it
    datastore: str | None = None  # the run's datastore root (kept in local records only)

    FIELDS = ("run", "step", "user", "version", "driver")

    def items(self) -> Iterator[tuple[str, str]]:
        """The set labels as (name, value) pairs, in a fixed order."""
        for field in self.FIELDS:
            value = getattr(self, field)
            if value:
                yield field, str(value)

    @property
    def driver_host(self) -> str:
        return self.driver.rsplit(":", 1)[0] if ":" in self.driver else ""

    @property
    def driver_pid(self) -> int | None:
        tail = self.driver.rsplit(":", 1)[-1]
        return int(tail) if tail.isdigit() else None

    # -- in each backend's own terms ------------------------------------------------------
    def aws_tags(self) -> dict[str, str]:
        """ECS/EC2 tags: ``daskflow-run``, ``daskflow-step``, ... (values cleaned for AWS).

        >>> ClusterLabels(run="F/1", step="a,b", user="x y").aws_tags()
        {'daskflow-run': 'F/1', 'daskflow-step': 'a_b', 'daskflow-user': 'x y'}
        """
        return {TAG_PREFIX + k: AWS_VALUE_BAD.sub("_", v)[:256] for k, v in self.items()}

    @classmethod
    def from_aws_tags(cls, tags: dict[str, str]) -> ClusterLabels:
        return cls(**{k: tags[TAG_PREFIX + k] for k in cls.FIELDS if TAG_PREFIX + k in tags})

    def kubernetes_labels(self) -> dict[str, str]:
        """Valid Kubernetes labels (``daskflow.dev/flow``, ``/run-id``, ``/step``, ...).

        A label value is at most 63 letters, digits, ``-_.`` that start and end
        alphanumeric; the exact values go to :meth:`kubernetes_annotations`.

        >>> ClusterLabels(run="Flow/17", step="a,b", user="ana@x").kubernetes_labels()
        ... # doctest: +NORMALIZE_WHITESPACE
        {'app.kubernetes.io/managed-by': 'daskflow', 'daskflow.dev/flow': 'Flow',
         'daskflow.dev/run-id': '17', 'daskflow.dev/step': 'a_b', 'daskflow.dev/user': 'ana_x'}
        """
        values = dict(self.items())
        run = values.pop("run", None)
        if run:
            flow, _, run_id = run.partition("/")
            values = {"flow": flow, "run-id": run_id, **values}
        values.pop("driver", None)  # host:pid: an annotation, it selects nothing
        labels = {MANAGED_BY[0]: MANAGED_BY[1]}
        labels.update({K8S_PREFIX + k: label_value(v) for k, v in values.items()})
        return {k: v for k, v in labels.items() if v}

    def kubernetes_annotations(self) -> dict[str, str]:
        """The exact values, which labels may have had to change."""
        return {K8S_PREFIX + k: v for k, v in self.items()}

    @classmethod
    def from_kubernetes(cls, metadata: dict[str, Any]) -> ClusterLabels:
        """Back from a DaskCluster's metadata: annotations first, labels as a fallback."""
        found = {k[len(K8S_PREFIX):]: v for k, v in
                 {**(metadata.get("labels") or {}), **(metadata.get("annotations") or {})}.items()
                 if k.startswith(K8S_PREFIX)}
        if "run" not in found and "flow" in found:
            found["run"] = f"{found['flow']}/{found.get('run-id', '')}"
        return cls(**{k: found[k] for k in cls.FIELDS if k in found})

    def slurm_comment(self) -> str:
        """``daskflow;run=...;step=...``: one shell word, for ``#SBATCH --comment=``."""
        return ";".join(["daskflow", *(f"{k}={SLURM_BAD.sub('_', v)}" for k, v in self.items())])

    @classmethod
    def from_slurm_comment(cls, comment: str) -> ClusterLabels | None:
        """None for a job that is not daskflow's."""
        parts = comment.strip().split(";")
        if parts[0] != "daskflow":
            return None
        found = dict(part.split("=", 1) for part in parts[1:] if "=" in part)
        return cls(**{k: found[k] for k in cls.FIELDS if k in found})


def label_value(text: str) -> str:
    """``text`` as a valid Kubernetes label value: other characters become ``_``, cut to 63.

    >>> label_value("Flow/12 train"), label_value("-x-"), len(label_value("a" * 99))
    ('Flow_12_train', 'x', 63)
    """
    value = re.sub(r"[^-A-Za-z0-9_.]", "_", text)[:63]
    value = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", value)
    assert K8S_VALUE.fullmatch(value)
    return value


def this_driver() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def default_labels() -> ClusterLabels:
    """The labels of a cluster opened outside any run."""
    from .. import __version__
    from ..current import username
    return ClusterLabels(user=username(), version=__version__, driver=this_driver())


_current: contextvars.ContextVar[ClusterLabels | None] = contextvars.ContextVar(
    "daskflow_cluster_labels", default=None)
#: the labels of each run this process drives, by run id (step clusters start in threads)
_runs: dict[str, ClusterLabels] = {}


def current_labels() -> ClusterLabels:
    """The labels of the cluster being opened in this thread."""
    return _current.get() or default_labels()


@contextmanager
def labelled(labels: ClusterLabels) -> Iterator[ClusterLabels]:
    """Clusters opened in this block (in this thread) carry ``labels``."""
    token = _current.set(labels)
    try:
        yield labels
    finally:
        _current.reset(token)


def run_started(run_id: str, pathspec: str, datastore: str | None) -> ClusterLabels:
    """Note the labels of the run ``run_id`` that this process now drives."""
    labels = replace(default_labels(), run=pathspec, datastore=datastore)
    _runs[run_id] = labels
    return labels


def run_finished(run_id: str) -> None:
    _runs.pop(run_id, None)


@contextmanager
def labelled_step(run_id: str, step: str | None) -> Iterator[ClusterLabels]:
    """Clusters opened in this block serve ``step`` of the run ``run_id``."""
    base = _runs.get(run_id) or default_labels()
    with labelled(replace(base, step=step)) as labels:
        yield labels
