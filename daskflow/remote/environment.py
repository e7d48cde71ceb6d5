"""Compare a cluster's workers (and scheduler) with the driver before the first task.

A task is a pickle: the driver's objects must unpickle on the scheduler and the
workers, and the workers' results and errors on the driver. Some differences
break that (another Python minor version, another cloudpickle major version, any
other dask or distributed, a package the worker lacks); those are refused before
anything is submitted. Others (a pandas patch release) should not, and are a
warning; Python patch releases are not mentioned at all.

The versions come from distributed's own ``get_versions`` (a message, no pickled
code), so the check works against a worker whose Python could not even load the
code package's plugin: run it before :func:`~daskflow.remote.install_code`.

It compares every package distributed's own check does too, so distributed's
``VersionMismatchWarning`` (a table printed when a client connects) is left out while
daskflow connects its clients (:func:`our_version_check`): each difference is said once,
here, with the cluster and the step, as a warning or a refusal.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from distributed.versions import VersionMismatchWarning, get_versions

from .errors import WorkerEnvironmentError, WorkerEnvironmentWarning

PACKAGES = ["dask", "distributed", "cloudpickle", "pandas", "numpy", "pyarrow"]
#: what distributed's own check compares besides: a difference is a warning, never fatal
DISTRIBUTED_CHECKS = ["msgpack", "tornado", "toolz", "lz4"]
STORAGE_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs"}

# How many leading parts of a version must be equal for pickles to load across
# (None: all of it). Beyond those, a difference is a warning.
MUST_MATCH: dict[str, int | None] = {
    "python": 2, "dask": None, "distributed": None, "cloudpickle": 1,
    "pandas": 1, "numpy": 1, "pyarrow": 0, "s3fs": 0, "gcsfs": 0,
    **{package: 0 for package in DISTRIBUTED_CHECKS},
}
_CONNECTING = threading.Lock()


@contextmanager
def our_version_check() -> Iterator[None]:
    """Connect a client of daskflow's in this block: distributed's version warning is
    left out (warnings filters are global: one such block at a time), since
    :func:`check_worker_environment` says the same, naming the cluster and step."""
    with _CONNECTING, warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=VersionMismatchWarning)
        yield
_WHY = {None: "must match exactly", 1: "the major version must match",
        2: "the minor version must match"}


@dataclass
class Mismatch:
    """One package whose version differs between the driver and some workers."""

    package: str
    driver: str
    workers: dict[str | None, list[str]] = field(default_factory=dict)  # version -> addresses
    fatal: bool = False

    def describe(self) -> str:
        parts = []
        for version, addresses in sorted(self.workers.items(), key=lambda i: str(i[0])):
            shown = addresses[0] + (f" and {len(addresses) - 1} more" if len(addresses) > 1
                                    else "")
            what = "not installed" if version is None else version
            parts.append(f"{what} on {shown}")
        rule = "" if not self.fatal else (
            ", which the datastore or the tasks need" if None in self.workers
            else f"; {_WHY.get(MUST_MATCH.get(self.package), 'it must match')}")
        return f"{self.package} {', '.join(parts)} vs {self.driver} on the driver{rule}"


def driver_environment(packages: list[str]) -> dict[str, str | None]:
    """This process's Python and package versions, as the workers report theirs."""
    return _versions(get_versions(packages))


def _versions(report: dict[str, Any]) -> dict[str, str | None]:
    """``{"python": "3.11.7", "dask": ..., missing: None}`` from a ``get_versions`` report."""
    versions = dict(report["packages"])
    versions["python"] = ".".join(str(versions["python"]).split(".")[:3])
    return versions


def packages_for(datastore_root: str | None) -> list[str]:
    """The packages a worker needs: the stock ones, and the datastore's filesystem."""
    scheme = datastore_root.split("://", 1)[0] if datastore_root and "://" in datastore_root \
        else None
    extra = STORAGE_PACKAGES.get(scheme or "")
    return PACKAGES + ([extra] if extra else []) + DISTRIBUTED_CHECKS


def check_worker_environment(client: Any, *, cluster: str, step: str,
                             datastore_root: str | None = None,
                             driver_versions: dict[str, str | None] | None = None
                             ) -> list[Mismatch]:
    """Refuse a cluster whose workers cannot unpickle the driver's tasks; warn on the rest.

    Asks the scheduler and every worker for their versions (``client.get_versions``;
    nothing of daskflow runs there) and compares Python's minor version and each
    package of :data:`PACKAGES` (and s3fs or gcsfs when ``datastore_root`` needs
    it) with ``driver_versions`` (default: this process). Raises
    :class:`WorkerEnvironmentError` naming the package, both versions, the cluster
    and the step; returns every mismatch found (each harmless one also issued as
    a :class:`WorkerEnvironmentWarning`).

    >>> check_worker_environment(client, cluster="local", step="train")  # doctest: +SKIP
    []
    """
    packages = packages_for(datastore_root)
    driver = driver_versions or driver_environment(packages)
    answer = client.get_versions(packages=packages)
    reports = {f"the scheduler {client.scheduler.address}": _versions(answer["scheduler"])}
    reports.update({address: _versions(report) for address, report in
                    answer["workers"].items() if isinstance(report, dict)})
    found = compare(driver, reports, packages)
    fatal = [m for m in found if m.fatal]
    if fatal:
        details = "; ".join(m.describe() for m in fatal)
        pins = " ".join(f"'{m.package}=={m.driver}'" for m in fatal if m.package != "python")
        python = driver.get("python") or "?"
        raise WorkerEnvironmentError(
            f"Cluster '{cluster}' cannot run step '{step}': its workers' environment differs "
            f"from the driver's in a way that breaks unpickling: {details}. Give the workers "
            f"the driver's versions (Python {'.'.join(python.split('.')[:2])}"
            f"{', pip install ' + pins if pins else ''}; for an image, "
            f"ghcr.io/dask/dask:{driver.get('dask')}-py{'.'.join(python.split('.')[:2])}), "
            f"or run the driver in the workers' environment.", found)
    for mismatch in found:
        warnings.warn(f"Cluster '{cluster}' (step '{step}'): {mismatch.describe()}; tasks "
                      f"should still work, but align the versions if results differ.",
                      WorkerEnvironmentWarning, stacklevel=2)
    return found


def compare(driver: dict[str, str | None], reports: dict[str, dict[str, str | None]],
            packages: list[str]) -> list[Mismatch]:
    """Every package whose version on some worker differs from the driver's."""
    found = []
    for package in ["python", *packages]:
        mine = driver.get(package)
        if mine is None:  # the driver does without it: nothing to compare with
            continue
        mismatch = Mismatch(package, mine)
        for address, report in sorted(reports.items()):
            theirs = report.get(package)
            if theirs != mine:
                mismatch.workers.setdefault(theirs, []).append(address)
                # a package the tasks need must be there; distributed's others may not
                mismatch.fatal |= package not in DISTRIBUTED_CHECKS if theirs is None \
                    else _breaks(package, mine, theirs)
        if mismatch.workers and (mismatch.fatal or package != "python"):
            found.append(mismatch)
    return found


def _breaks(package: str, mine: str, theirs: str) -> bool:
    parts = MUST_MATCH.get(package, 0)
    if parts is None:
        return True
    return mine.split(".")[:parts] != theirs.split(".")[:parts]
