"""Install a run's code package on every worker of a Dask cluster, now and as workers join."""

from __future__ import annotations

import os
from typing import Any

import cloudpickle

from . import _on_worker
from .codepackage import CodeArchive
from .errors import CodeInstallError


def install_code(client: Any, archive: CodeArchive | str, *, sha: str | None = None,
                 storage_options: dict[str, Any] | None = None,
                 cluster: str | None = None) -> None:
    """Register the worker plugin that puts ``archive`` first on each worker's ``sys.path``.

    ``archive`` is a built :class:`CodeArchive` (its bytes travel with the plugin
    through the scheduler), or the URL of a stored one (each worker reads it from
    the datastore with fsspec and checks its sha256, taken from the file name
    ``<sha>.tar.gz`` unless ``sha`` is given). Workers present now get it before
    this returns; workers that join or restart later get it before their first
    task. The workers need no daskflow: the plugin travels by value.

    >>> install_code(client, build_code_package("flow.py"))        # doctest: +SKIP
    """
    cloudpickle.register_pickle_by_value(_on_worker)
    if isinstance(archive, CodeArchive):
        plugin = _on_worker.InstallCode(archive.sha, data=archive.data)
    else:
        name = os.path.basename(archive)
        sha = sha or name.removesuffix(".tar.gz")
        plugin = _on_worker.InstallCode(sha, url=archive, storage_options=storage_options)
    try:
        client.register_plugin(plugin)
    except Exception as exc:
        where = f"cluster '{cluster}'" if cluster else f"the cluster at {client.scheduler.address}"
        raise CodeInstallError(
            f"Installing the code package {plugin.sha[:12]} on the workers of {where} failed: "
            f"{type(exc).__name__}: {exc}. Check that the workers can write their local "
            f"directory (and read the datastore, when the package is given by URL).") from exc
