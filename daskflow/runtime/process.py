"""Whether this process runs one command and exits: then what it imports is frozen.

The command line (``python flow.py run``) runs one command, then exits: the modules it
has imported, and the clients it has made, live as long as it does. Python's collector
need not walk them again and again, so the command line freezes them (``gc.freeze``)
as it starts, and the run freezes what it imported since once its store and its
cluster are open (:func:`settled`): the datastore's filesystem (s3fs and botocore's
models), distributed and a local cluster's scheduler. Before, a 5,000-split run on S3
spent 0.35 s of its driver in the collector, walking them (``bench/worker_gc.py``
measures the same in a worker).

A notebook or a script that starts runs goes on after them: there nothing is frozen, or
what a run left in reference cycles would never be collected.
"""

from __future__ import annotations

import gc

_owned = False


def own() -> None:
    """This process runs one command, then exits: freeze what it has imported."""
    global _owned
    _owned = True
    gc.freeze()


def settled() -> None:
    """The run has imported and opened what lives as long as the process (its store,
    its cluster): in the command line's process, freeze it too."""
    if _owned:
        gc.freeze()
