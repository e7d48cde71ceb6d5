"""What every cluster daskflow starts says about itself: run, step, user, version, driver.

The runtime states the labels of the cluster it is about to open
(:func:`labelled`); each backend writes them where its own tools show them, in
its own folder's ``labels.py``: Kubernetes labels on the DaskCluster, tags on ECS
task definitions, tasks and EC2 instances, the SLURM job's ``--comment``; and
every backend in the record of the cluster (:mod:`.records`). Its listing
(``daskflow clusters list``) reads them back from there.

A cluster opened outside a run (``backend.open(request)`` in a script) still
carries the user, daskflow's version and its driver.
"""

from __future__ import annotations

import contextvars
import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace

@dataclass(frozen=True)
class ClusterLabels:
    """Who a cluster belongs to.

    >>> labels = ClusterLabels(run="HelloFlow/1764", step="train", user="ana",
    ...                        version="0.1.0", driver="host1:4242")
    >>> dict(labels.items())["run"], labels.driver_pid
    ('HelloFlow/1764', 4242)
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

    @classmethod
    def from_fields(cls, found: Mapping[str, str]) -> ClusterLabels:
        """Back from what a backend read: the known fields of ``found``, the rest ignored."""
        return cls(**{k: found[k] for k in cls.FIELDS if k in found})

    @property
    def driver_host(self) -> str:
        return self.driver.rsplit(":", 1)[0] if ":" in self.driver else ""

    @property
    def driver_pid(self) -> int | None:
        tail = self.driver.rsplit(":", 1)[-1]
        return int(tail) if tail.isdigit() else None


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
