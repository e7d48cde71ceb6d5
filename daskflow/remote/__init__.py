"""Where code runs: ship a run's code to any Dask cluster, check its workers' environment.

A cluster of a step may share nothing with the driver but the network. At run
start the driver builds one content-addressed code package (the flow's folder and
daskflow itself) and stores it with the run; each cluster of the run installs it
on its workers with a worker plugin and has its workers' versions checked
against the driver's before its first task.
"""

from .codepackage import CodeArchive, RunCode, build_code_package, code_url, flow_files, \
    run_code, store_code
from .environment import Mismatch, check_worker_environment
from .errors import (
    CodeInstallError,
    CodePackageTooLargeError,
    WorkerEnvironmentError,
    WorkerEnvironmentWarning,
)
from .install import install_code, prepare_cluster

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
