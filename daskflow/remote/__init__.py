"""Where code runs: ship a run's code to any Dask cluster, check its workers' environment.

A cluster of a step may share nothing with the driver but the network. At run
start the driver builds one content-addressed code package (the flow's folder and
daskflow itself) and stores it with the run; each cluster of the run installs it
on its workers with a worker plugin and has its workers' versions checked
against the driver's before its first task.

The names below are imported when first asked for: most of this package needs
distributed (worker plugins), and a run that hashes its flow's files, or reuses every
task from the cache, starts no cluster and need not import it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "CodeArchive": "codepackage", "RunCode": "codepackage",
    "build_code_package": "codepackage", "code_url": "codepackage",
    "flow_files": "codepackage", "run_code": "codepackage", "store_code": "codepackage",
    "Mismatch": "environment", "check_worker_environment": "environment",
    "CodeInstallError": "errors", "CodePackageTooLargeError": "errors",
    "WorkerEnvironmentError": "errors", "WorkerEnvironmentWarning": "errors",
    "install_code": "install", "prepare_cluster": "install",
}

__all__ = [
    "CodeArchive",
    "CodeInstallError",
    "CodePackageTooLargeError",
    "Mismatch",
    "RunCode",
    "WorkerEnvironmentError",
    "WorkerEnvironmentWarning",
    "build_code_package",
    "check_worker_environment",
    "code_url",
    "flow_files",
    "install_code",
    "prepare_cluster",
    "run_code",
    "store_code",
]

if TYPE_CHECKING:
    from .codepackage import CodeArchive, RunCode, build_code_package, code_url, \
        flow_files, run_code, store_code
    from .environment import Mismatch, check_worker_environment
    from .errors import (
        CodeInstallError,
        CodePackageTooLargeError,
        WorkerEnvironmentError,
        WorkerEnvironmentWarning,
    )
    from .install import install_code, prepare_cluster


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
