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
from collections.abc import Iterator
from contextlib import contextmanager

_owned = False


@contextmanager
def command() -> Iterator[None]:
    """The block runs this process's one command, after which it exits: freeze what it
    has imported, and in the block what the run imports (:func:`settled`). A process
    that does not exit after all (IPython catches the ``SystemExit`` of ``MyFlow()`` in
    a notebook cell) goes on as a notebook's: its later runs freeze nothing."""
    global _owned
    _owned = True
    gc.freeze()
    try:
        yield
    finally:
        _owned = False


def settled() -> None:
    """The run has imported and opened what lives as long as the process (its store,
    its cluster): in the command line's process, freeze it too."""
    if _owned:
        gc.freeze()
