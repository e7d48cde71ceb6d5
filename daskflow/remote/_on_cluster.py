"""What runs on a cluster that has no daskflow: it travels to the workers and scheduler by value.

:func:`daskflow.remote.install_code` registers this module with
``cloudpickle.register_pickle_by_value``, so the plugin and the scheduler's
installer are pickled with their code and unpickle where only the stock Dask
image's packages are (of the same Python minor version: bytecode does not travel
further, hence the environment check first). Hence: the standard library,
distributed and cloudpickle only, and no import of daskflow, here.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import os
import shutil
import sys
import tarfile
import uuid
from typing import Any

from distributed import WorkerPlugin

CODE_FOLDER = "daskflow-code"  # under each worker's local directory, one folder per sha


def unpack(data: bytes, dest: str) -> None:
    """Extract a code package into ``dest``: plain files and folders inside it, nothing else."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if not (member.isfile() or member.isdir()) or member.name.startswith("/") \
                    or ".." in parts:
                raise RuntimeError(f"code package member {member.name!r} is not a plain "
                                   f"file inside the package; refusing to extract it")
        if hasattr(tarfile, "data_filter"):  # Python 3.11.4+: no links, no odd modes
            tar.extractall(dest, filter="data")
        else:
            tar.extractall(dest)


def extract_archive(data: bytes, folder: str) -> None:
    """Unpack a code package into ``folder`` unless it is there: whole or not at all
    (a temporary name, then a rename)."""
    if os.path.isdir(folder):
        return
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".tmp-{uuid.uuid4().hex}")
    try:
        unpack(data, tmp)
        try:
            os.rename(tmp, folder)
        except OSError:  # another worker process sharing the folder got there first
            if not os.path.isdir(folder):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class CodeSource:
    """A code package to install: its sha256, and its bytes or the URL to read them from."""

    def __init__(self, sha: str, data: bytes | None = None, url: str | None = None,
                 storage_options: dict[str, Any] | None = None, behind: bool = False) -> None:
        self.sha = sha
        self.data = data
        self.url = url
        self.storage_options = dict(storage_options or {})
        # behind: last on a worker's sys.path, where the packages of a shared scheduler's
        # runs come first during each task (``_packages.py``); it serves only what is
        # imported outside them (the tasks of a dask collection a step computes)
        self.behind = behind

    async def activate(self, local_directory: str) -> str:
        """Unpack into ``<local_directory>/daskflow-code/<sha>`` (once) and put that first on
        ``sys.path``, in place of any earlier package; returns the folder."""
        import asyncio

        folder = os.path.join(local_directory, CODE_FOLDER, self.sha)
        await asyncio.get_running_loop().run_in_executor(None, self._unpack, folder)
        _forget_other_packages(os.path.dirname(folder), keep=folder)
        if folder in sys.path:
            sys.path.remove(folder)
        if self.behind:
            sys.path.append(folder)
        else:
            sys.path.insert(0, folder)
        importlib.invalidate_caches()
        return folder

    def _unpack(self, folder: str) -> None:
        if os.path.isdir(folder):
            return
        data = self.data if self.data is not None else self._fetch()
        sha = hashlib.sha256(data).hexdigest()
        if sha != self.sha:
            raise RuntimeError(f"the code package {self.url or ''} has sha256 {sha}, expected "
                               f"{self.sha}: it is corrupt or was replaced; rerun the flow")
        extract_archive(data, folder)

    def _fetch(self) -> bytes:
        import fsspec  # dask's dependency; s3fs/gcsfs come from the worker's image

        with fsspec.open(self.url, "rb", **self.storage_options) as f:
            return f.read()


def _forget_other_packages(parent: str, keep: str) -> None:
    """Drop an earlier run's package from ``sys.path`` and its modules from ``sys.modules``."""
    stale = [p for p in sys.path if os.path.dirname(p) == parent and p != keep]
    for path in stale:
        sys.path.remove(path)
        prefix = path + os.sep
        for name, module in list(sys.modules.items()):
            if (getattr(module, "__file__", None) or "").startswith(prefix):
                del sys.modules[name]


class InstallCode(WorkerPlugin):
    """Installs a code package on each worker: extracted, and first on ``sys.path``.

    A worker plugin, not a nanny plugin: ``setup`` runs in the worker process itself
    (a nanny's ``sys.path`` does not reach the worker processes it has already
    started), on every worker present when it is registered and on each worker
    that joins or restarts later, before that worker runs any task. The package
    goes under the worker's local directory, never its working directory.
    """

    name = "daskflow-code"  # one per scheduler: a new run's package replaces the last one

    def __init__(self, source: CodeSource) -> None:
        self.source = source
        self.folder: str | None = None

    async def setup(self, worker: Any) -> None:
        self.folder = await self.source.activate(worker.local_directory)


async def install_on_scheduler(source: bytes, driver: tuple[str, int],
                               dask_scheduler: Any = None) -> str | None:
    """``client.run_on_scheduler`` this: the scheduler unpickles every task graph, so it
    must import what the tasks' functions name too. ``source`` is a cloudpickled
    :class:`CodeSource` (arguments are pickled by reference otherwise). Skipped for a
    scheduler in the driver's own process (a LocalCluster's): it has the code already."""
    import socket

    import cloudpickle

    if (socket.gethostname(), os.getpid()) == tuple(driver):
        return None
    source = cloudpickle.loads(source)
    source.behind = False  # the scheduler runs no task: first on its path
    return await source.activate(dask_scheduler.local_directory)
