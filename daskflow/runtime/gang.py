"""Gangs (``num_parallel=N``): N tasks of one step, run and retried together.

A framework with a rendezvous of its own (torch.distributed, Horovod, ...) needs all
its nodes up at once: the gang gets a cluster of its own with one worker per node,
its nodes go out in one go, one per worker, and node 0's host and a port free there
are where the others meet it (``current.parallel``).  A node that fails while
``@retry`` has attempts left sends the whole gang again, on the cluster's restarted
workers: a lone node could never meet the others.  The futures of the replaced
round are *superseded*; their ends are ignored.  A round goes out once the cluster has
a worker per node again (the worker of a node that died comes back with its nanny).

:class:`Gangs` holds that state and the retry policy and touches no cluster;
:func:`send_gang` and :func:`rerun` are the Dask calls the driver makes for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import config
from ..clusters.errors import ClusterStartTimeoutError
from ..graph import FlowGraph
from .context import ParallelInfo, TaskSpec, submit_context


def is_gang(graph: FlowGraph, step: str) -> bool:
    """Whether ``step`` runs as a num_parallel gang."""
    return graph.is_gang(step)


@dataclass
class Gang:
    """A gang sent to its cluster: what it takes to send it again."""

    step: str
    specs: list[TaskSpec]
    parents: list[list[Any]]
    cluster: str
    base_keys: list[str]     # the nodes' Dask keys in round 0
    round: int = 0           # the gang's attempt
    done: dict[str, Any] = field(default_factory=dict)   # this round's nodes ended well

    @property
    def keys(self) -> list[str]:
        """The nodes' Dask keys in this round (``<key>-r<round>`` after the first)."""
        if not self.round:
            return list(self.base_keys)
        return [f"{key}-r{self.round}" for key in self.base_keys]


class Gangs:
    """The gangs of a run: which future belongs to which gang, and which were replaced.

    >>> gangs = Gangs(retries=lambda step: 1)
    >>> gang = Gang("train", [], [], "gang:train", ["train-2-7", "train-3-7"])
    >>> gangs.sent(gang)
    >>> gangs.retryable("train-3-7") is gang and gangs.next_round(gang)
    ['train-2-7', 'train-3-7']
    >>> gang.keys, gangs.superseded("train-2-7"), gangs.retryable("train-2-7-r1")
    (['train-2-7-r1', 'train-3-7-r1'], True, None)
    >>> gangs.finished("train-2-7-r1", "ref 2"), gangs.finished("train-3-7-r1", "ref 3")
    ([], [('train-2-7-r1', 'ref 2'), ('train-3-7-r1', 'ref 3')])
    """

    def __init__(self, retries: Callable[[str], int]) -> None:
        self.retries = retries              # a step's @retry times
        self.by_key: dict[str, Gang] = {}
        self.replaced: set[str] = set()     # keys of rounds that were sent again

    def sent(self, gang: Gang) -> None:
        for key in gang.keys:
            self.by_key[key] = gang

    def superseded(self, key: str) -> bool:
        """Whether ``key`` is a node of a round that was sent again (its end means nothing)."""
        return key in self.replaced

    def retryable(self, key: str) -> Gang | None:
        """The gang of the failed node ``key`` if it may run again; None: the run fails."""
        gang = self.by_key.get(key)
        if gang is None or gang.round >= self.retries(gang.step):
            return None
        return gang

    def finished(self, key: str, ref: Any) -> list[tuple[str, Any]]:
        """The node ``key`` ended well with ``ref``: ``(key, ref)`` of each node of its
        round once all of them have (what follows a gang takes one whole round, never a
        node of a round that is sent again), else []; a task of no gang: itself."""
        gang = self.by_key.get(key)
        if gang is None:
            return [(key, ref)]
        gang.done[key] = ref
        if set(gang.done) != set(gang.keys):
            return []
        return [(k, gang.done[k]) for k in gang.keys]

    def next_round(self, gang: Gang) -> list[str]:
        """Replace ``gang``'s round with the next; returns the replaced keys."""
        replaced = gang.keys
        self.replaced.update(replaced)
        gang.round += 1
        gang.done.clear()
        return replaced


def send_gang(client: Any, ctx_future: Any, gang: Gang) -> list[Any]:
    """One node per worker of the gang's cluster, all at once; node 0's host and a port
    free there are where the others meet it.  A node whose worker dies goes to another
    (its nanny's fresh process has a new address), where it finds its dead attempt: the
    gang is retried, or the node caught, not left waiting for a worker that is gone."""
    from .task import execute_task, free_port

    specs = gang.specs
    workers = node_workers(client, gang.step, len(specs))
    main = workers[0]
    main_ip = main.split("://")[-1].rsplit(":", 1)[0].strip("[]")
    port = client.run(free_port, workers=[main])[main]
    futures = []
    for index, (spec, plist, key, worker) in enumerate(zip(specs, gang.parents,
                                                           gang.keys, workers)):
        info = ParallelInfo(main_ip, len(specs), index, specs[0].task_id, port, gang.round)
        futures.append(client.submit(execute_task, ctx_future, spec._replace(parallel=info),
                                     *plist, key=key, pure=False, workers=[worker],
                                     allow_other_workers=True))
    return futures


def node_workers(client: Any, step: str, count: int) -> list[str]:
    """``count`` running workers of the gang's cluster, one per node, waited for (at most
    ``daskflow.cluster.start-timeout``): a restart waits only for the workers the
    scheduler knew, and the nanny of a node's dead worker may still be starting the next
    one.  A gang is never sent short of a node: that node would never run, and its gang
    never end."""
    from dask.utils import parse_timedelta
    timeout = parse_timedelta(config.get("cluster.start-timeout"))
    deadline = time.monotonic() + timeout
    while True:
        workers = sorted(address for address, worker in
                         client.scheduler_info(n_workers=-1)["workers"].items()
                         if worker.get("status", "running") == "running")
        if len(workers) >= count:
            return workers[:count]
        if time.monotonic() > deadline:
            raise ClusterStartTimeoutError(
                f"Step '{step}': its gang of {count} nodes runs one node per worker, but "
                f"only {len(workers)} of its cluster's workers were up within "
                f"daskflow.cluster.start-timeout ({timeout:g}s). Raise it if the backend "
                f"is just slow to start workers again.",
                expected=count, available=len(workers), timeout=timeout)
        time.sleep(0.1)


def rerun(cluster: Any, gang: Gang, replaced: list[Any], ctx_bytes: bytes,
          ctx_key: str) -> list[Any]:
    """Send ``gang`` again on its :class:`~daskflow.runtime.placement.StepCluster`: the
    ``replaced`` round's nodes stop where they are (its workers restart, and get the
    run's context again) and the new round's go out; returns their futures."""
    client = cluster.client
    client.cancel(replaced)
    client.restart(wait_for_workers=True)
    cluster.ctx_future = submit_context(client, ctx_bytes, ctx_key)
    return send_gang(client, cluster.ctx_future, gang)
