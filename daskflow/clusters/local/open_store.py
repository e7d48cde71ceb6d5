"""A local worker opens the run's datastore as it starts, before its first task asks.

On an object store a process's first request also makes its client (botocore loads
the service's model and endpoints: about 0.1 s of CPU, several times that on a busy
machine). Every worker would pay it in its first task, the run's first step among
them; :class:`OpenStore` has each worker of a local cluster pay it in a thread while
the driver still starts the run, then freezes the client's objects out of the worker's
garbage collections, as the fork server froze what it imported. A datastore on a local
folder needs nothing opened.

>>> store_opener("/tmp/runs") is None, store_opener("s3://bucket/runs").root
(True, 's3://bucket/runs')
"""

from __future__ import annotations

import gc
import logging
import threading
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from ...datastore.files import connect, filesystem_modules

logger = logging.getLogger(__name__)


class OpenStore(WorkerPlugin):
    """Open the datastore ``root`` in a thread of the worker, as the worker starts."""

    name = "daskflow-open-store"

    def __init__(self, root: str) -> None:
        self.root = root

    def setup(self, worker: Any) -> None:
        threading.Thread(target=_open, args=(self.root, worker), daemon=True,
                         name="daskflow-open-store").start()


def _open(root: str, worker: Any) -> None:
    try:
        connect(root)
    except Exception as exc:  # noqa: BLE001  the first task opens it again and says why
        logger.debug("daskflow: the datastore %s could not be opened ahead: %s", root, exc)
        return
    # The client's objects (botocore's models) live as long as the worker: out of the
    # collector's reach, as the fork server's imports are (a wide foreach's batches
    # collect often). Not while a task runs: what it holds would never be collected.
    state = getattr(worker, "state", None)
    if state is not None and not state.executing:
        gc.freeze()


def store_opener(root: str | None) -> OpenStore | None:
    """The plugin that opens ``root`` on each worker, or None where nothing needs it."""
    return OpenStore(root) if root and filesystem_modules(root) else None
