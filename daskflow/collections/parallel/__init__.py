"""``parallel_map`` and ``parallel_imap_unordered``: Metaflow's helpers, run on Dask.

Inside a step they use the cluster the step runs on (through
``distributed.worker_client()``, so the step's own worker thread is handed
back while the map runs and cannot deadlock the cluster); outside a flow
they use the caller's current Dask client, or one ``LocalCluster`` the
process starts on first use and keeps until it exits (``session``).

Items travel in partitions, never one task per item, and never as literals
in the task graph (the scheduler walks every literal: ten million ints cost
seconds of graph handling before any work):

- a ``range`` is cut into ``range`` slices of a few bytes each; the workers
  build their items;
- a list, tuple or array is cut into slices, each pickled once on the
  caller's side into one ``bytes`` payload (opaque to the scheduler); a big
  one (over ``payload-limit``, 1 MiB) goes through a file in ``/dev/shm``
  that its worker reads when the workers are on this machine (checked), or
  is scattered to the workers otherwise.  The first partitions run while the
  rest are pickled;
- a set, dict or other sized collection is read in slices the same way;
- any other iterable (generators included) is read lazily, one partition at
  a time, with at most a few partitions in flight, so it is never held in
  memory whole.
- a Dask collection (a bag, an array, a DataFrame with ``per="partition"``)
  goes one partition per task: the partition's own tasks, cut from its graph
  without computing anything, travel pickled like a list's slice, and the
  worker computes the partition before mapping it.

``lazy=True`` returns a ``dask.bag.Bag`` of the results, one partition per
partition of the map, instead of running them (``lazy``).

Results come back pickled as one ``bytes`` per partition.  The function is
pickled once (cloudpickle: lambdas and closures work) and unpickled once per
worker, however many partitions there are.  The sizes and limits are
settings under ``daskflow.parallel-map`` (see ``daskflow.yaml``).

The modules, in the order a map goes through them: ``api`` (the public
functions), ``partitions`` (cutting the input; ``dask_input`` for a Dask
collection), ``pickling``, ``engine``
(futures on the cluster), ``transport`` (big partitions), ``worker`` (what
runs on the workers), ``errors``, ``progress``; ``lazy`` for ``lazy=True``.

>>> from daskflow.collections import parallel_map
>>> parallel_map(lambda x: x * x, range(5))                        # doctest: +SKIP
[0, 1, 4, 9, 16]
"""

from .api import parallel_imap_unordered, parallel_map
from .errors import ParallelMapError, ParallelMapInputError

__all__ = ["ParallelMapError", "ParallelMapInputError", "parallel_imap_unordered",
           "parallel_map"]
