"""A flow as a Dask object: ``MyFlow.delayed(alpha=0.5)`` is a ``dask.delayed`` value.

Computing it runs the flow on the cluster that computes it and gives the run's
:class:`~daskflow.client.Run`:

- on a ``distributed`` cluster (``client.compute``, ``dask.compute`` with a
  Client), the task leaves its worker's thread pool while the flow runs
  (``worker_client``: secede, then rejoin) and drives the run through that
  worker's client, so the flow's own tasks go to the same cluster and can use
  the thread it left; several flows computed together run at once, each its own run;
- with dask's local schedulers (no Client), it runs as ``MyFlow.run`` does, on a
  local cluster of its own.

Parameters are checked when the value is made, as ``MyFlow.run`` checks them; one
given as another delayed value is checked when that is known, so a flow can be
one node of a larger graph.  The run is quiet: its tasks' output is stored with
them (``run["train"].task.stdout``); ``Runner(MyFlow, observer=...).delayed(...)``
watches it.  A failed run raises :class:`~daskflow.exceptions.RunFailed` from the
compute, naming the task that failed.

>>> import dask                                                    # doctest: +SKIP
>>> runs = dask.compute(*[TrainFlow.delayed(alpha=a) for a in (0.1, 0.5, 0.9)])
>>> best = max(runs, key=lambda run: run.data.score)
"""

from __future__ import annotations

import uuid
from typing import Any

import cloudpickle

from ..datastore import resolve_root
from ..parameters import resolve_parameters


def flow_delayed(runner_cls: type, flow_cls: type, options: dict[str, Any],
                 params: dict[str, Any]) -> Any:
    """A ``dask.delayed`` run of ``flow_cls`` with ``params``: ``runner_cls(flow_cls,
    **options)`` runs it where it is computed.

    The runner comes as an argument (the value carries it, by reference) so that this
    module, which :class:`~daskflow.runtime.runner.Runner` imports, need not import it.
    """
    import dask
    from dask.base import is_dask_collection

    later = frozenset(name for name, value in params.items() if is_dask_collection(value))
    resolve_parameters(flow_cls, params, pending=later)  # a bad one fails now, as in run()
    # The runs go where this process would look for them, whichever worker drives them.
    options = {**options, "datastore_root": resolve_root(options.get("datastore_root"))}
    # By cloudpickle, as the runtime ships it: plain pickle (what distributed tries
    # first) would name the flow's module, which a worker cannot import.
    flow = cloudpickle.dumps((runner_cls, flow_cls, options))
    return dask.delayed(run_where_computed, pure=False)(
        flow, params, dask_key_name=f"{flow_cls.__name__}-run-{uuid.uuid4().hex}")


def run_where_computed(flow: bytes, params: dict[str, Any]) -> Any:
    """Run the flow on the cluster computing this task (or a local one) and return its Run."""
    from ..dask_client import current_worker
    from .events import RunObserver

    runner_cls, flow_cls, options = cloudpickle.loads(flow)

    if options.get("observer") is None:  # quiet: nobody watches a worker's stdout
        options = {**options, "observer": RunObserver(), "stream_output": False}
    if current_worker() is None:
        return runner_cls(flow_cls, **options).run(**params)
    from distributed import worker_client

    with worker_client() as client:  # secedes: the flow's tasks may use this thread
        return runner_cls(flow_cls, client=client, **options).run(**params)
