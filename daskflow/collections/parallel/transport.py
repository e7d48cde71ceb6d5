"""Getting big partitions to the workers without putting their bytes into the task graph.

A partition's pickled items up to ``daskflow.parallel-map.payload-limit`` go
into the graph as they are.  A bigger one goes through a file in a folder
that the caller and every worker see (``/dev/shm`` on one machine: a memory
copy), or, where some worker cannot see it, is scattered to the workers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import Any, NamedTuple

from dask.utils import parse_bytes

from ... import config
from ...scratch import owned_prefix

#: the folders of big partitions (named by their owner: a killed one's are swept later)
SHARED_PREFIX = "daskflow-parallel-map-"


class SharedFile(NamedTuple):
    """A partition's pickled items in a file its worker reads itself (same machine)."""

    path: str


def read_payload(payload: Any) -> Any:
    """On the worker: a partition's payload as sent, with a shared file read back."""
    if isinstance(payload, SharedFile):
        with open(payload.path, "rb") as f:
            return f.read()
    return payload


class SharedFolder:
    """A temporary folder the caller and the workers all see: big partitions go there.

    On one machine (a LocalCluster, or a step of a local run) a file in
    ``/dev/shm`` costs a memory copy; scattering the same bytes costs a round
    trip through the scheduler for every group of partitions, with every byte
    copied by the event loops of the caller and the scheduler.  Whether the
    workers see the folder is checked, not guessed, and the tasks that read it
    are pinned to the workers that do.
    """

    def __init__(self, path: str, workers: list[str]) -> None:
        self.path = path
        self.workers = workers
        self.count = 0

    @classmethod
    def open(cls, client: Any) -> SharedFolder | None:
        """A new folder, or None where the workers cannot see one (or it is turned off)."""
        setting = config.get("parallel-map.shared-folder")
        if setting in (False, None, "false", "off"):
            return None
        if setting == "auto":
            setting = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
        try:
            path = tempfile.mkdtemp(prefix=owned_prefix(SHARED_PREFIX), dir=str(setting))
        except OSError:
            return None
        probe = os.path.join(path, "probe")
        try:
            open(probe, "wb").close()
            seen = client.run(os.path.exists, probe)
        except Exception:
            seen = {}
        if not seen or not all(seen.values()):
            shutil.rmtree(path, ignore_errors=True)
            return None  # some worker is elsewhere: scatter instead
        return cls(path, sorted(seen))

    def put(self, data: bytes) -> SharedFile | None:
        """The file now holding ``data``; None if it does not fit (a small /dev/shm)."""
        self.count += 1
        path = os.path.join(self.path, f"part-{self.count}")
        try:
            with open(path, "wb") as f:
                f.write(data)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(path)
            return None
        return SharedFile(path)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


class Transport:
    """One map's way of sending payloads: inline, through a shared folder, or scattered.

    The folder is opened at the first big payload (most maps never need one)
    and removed by :meth:`close`; a task still running has its file open already.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.limit = parse_bytes(config.get("parallel-map.payload-limit"))
        self._folder: SharedFolder | None = None
        self._opened = False

    def send(self, payloads: list[Any]) -> tuple[list[Any], list[str] | None]:
        """The payloads to put into the graph, and the workers their tasks must run on
        (None: any)."""
        payloads = list(payloads)
        big = [i for i, p in enumerate(payloads)
               if isinstance(p, bytes) and len(p) > self.limit]
        if not big:
            return payloads, None
        if not self._opened:
            self._opened = True
            self._folder = SharedFolder.open(self.client)
        folder = self._folder
        if folder is not None:  # a file ...
            for i in big:
                payloads[i] = folder.put(payloads[i]) or payloads[i]
            big = [i for i in big if isinstance(payloads[i], bytes)]
        if big:  # ... or, from another machine, data scattered to the workers
            scattered = self.client.scatter([payloads[i] for i in big], hash=False)
            for i, future in zip(big, scattered):
                payloads[i] = future
        return payloads, folder.workers if folder is not None else None

    def close(self) -> None:
        if self._folder is not None:
            self._folder.close()
