"""Install a run's code package on every worker of a Dask cluster, now and as workers join."""

from __future__ import annotations

import os
import socket
from typing import Any

import cloudpickle

from . import _on_cluster
from .codepackage import CodeArchive
from .errors import CodeInstallError


def install_code(client: Any, archive: CodeArchive | str, *, sha: str | None = None,
                 storage_options: dict[str, Any] | None = None,
                 cluster: str | None = None, behind: bool = False) -> None:
    """Put ``archive`` first on ``sys.path`` on the scheduler and every worker of ``client``.

    ``archive`` is a built :class:`CodeArchive` (its bytes travel with the plugin
    through the scheduler), or the URL of a stored one (each worker reads it from
    the datastore with fsspec and checks its sha256, taken from the file name
    ``<sha>.tar.gz`` unless ``sha`` is given). The scheduler gets it first (it
    unpickles each task graph, so it imports what the tasks name); workers present
    now get it before this returns; workers that join or restart later get it
    before their first task. Neither needs daskflow: the plugin travels by value.
    ``behind``: last on the workers' ``sys.path``, behind the packages that a shared
    scheduler's tasks bring (``remote/calls.py``).

    >>> install_code(client, build_code_package("flow.py"))        # doctest: +SKIP
    """
    cloudpickle.register_pickle_by_value(_on_cluster)
    if isinstance(archive, CodeArchive):
        source = _on_cluster.CodeSource(archive.sha, data=archive.data, behind=behind)
    else:
        sha = sha or os.path.basename(archive).removesuffix(".tar.gz")
        source = _on_cluster.CodeSource(sha, url=archive, storage_options=storage_options,
                                        behind=behind)
    plugin = _on_cluster.InstallCode(source)
    try:
        client.run_on_scheduler(_on_cluster.install_on_scheduler, cloudpickle.dumps(source),
                                (socket.gethostname(), os.getpid()))
        client.register_plugin(plugin)
    except Exception as exc:
        try:  # leave no plugin that fails every worker that joins later
            client.unregister_worker_plugin(plugin.name)
        except Exception:
            pass
        where = f"cluster '{cluster}'" if cluster else f"the cluster at {client.scheduler.address}"
        raise CodeInstallError(
            f"Installing the code package {source.sha[:12]} on {where} failed: "
            f"{type(exc).__name__}: {exc}. Check that the workers can write their local "
            f"directory (and read the datastore, when the package is given by URL).") from exc


def prepare_cluster(client: Any, code: CodeArchive | str, *, cluster: str, step: str,
                    datastore_root: str | None = None) -> list:
    """What a run does once per cluster before its first task: check, then install.

    The environment check comes first: it needs nothing of daskflow on the cluster,
    while the plugin that installs the code package only loads on workers of the
    driver's Python minor version. Returns the harmless mismatches found.

    >>> prepare_cluster(client, archive, cluster="slurm-1", step="train",
    ...                 datastore_root="s3://bucket/flows")          # doctest: +SKIP
    []
    """
    from .environment import check_worker_environment

    found = check_worker_environment(client, cluster=cluster, step=step,
                                     datastore_root=datastore_root)
    install_code(client, code, cluster=cluster)
    return found
