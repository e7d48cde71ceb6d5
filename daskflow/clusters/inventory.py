"""The live clusters of every registered backend, read from the backends, and their clean-up.

``daskflow clusters list`` and ``daskflow clusters gc`` are built on this. It
knows no backend by name: it asks the registry for each backend's listing (the
hooks of :class:`~daskflow.clusters.base.ClusterBackend`: ``listed_by``,
``set_up_here``, ``live_clusters``, ``end_cluster``), so a backend added by
following ``clusters/README.md`` (or from another package's entry point) is
listed with the rest.

- :func:`live_clusters` asks each listing what of daskflow's still runs: the
  records of in-driver clusters by default (:mod:`.records`), ``squeue``, the
  AWS API, the Kubernetes API server for the backends whose clusters live there;
- :func:`judge` says whether a cluster's run is still alive: its run record's
  status and heartbeat (:mod:`daskflow.liveness`), else its driver's pid when
  that ran on this machine;
- :func:`end` closes one, by the backend that listed it.

A backend that cannot be asked (not installed, no credentials, its service
down) gives a note, never a failure of the whole listing.
"""

from __future__ import annotations

import socket
import warnings
from dataclasses import replace
from typing import Any

from .. import config
from ..exceptions import ConfigurationError, did_you_mean
from .live import LiveCluster
from .processes import alive
from .registry import available_backends, get_backend, get_backend_class

#: the listing of every backend without a service of its own: this machine's records
RECORDS = "local"


def chosen_listings(names: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """The backends to ask, by the name of their listing: those of ``names``, else of
    ``daskflow.cluster.list-backends`` (auto: every known backend set up here)."""
    setting = list(names or []) or config.get("cluster.list-backends")
    if setting in (None, "auto"):
        return _set_up_listings()
    if isinstance(setting, str):
        setting = [setting]
    chosen: list[str] = []
    for name in setting:
        listing = listing_of(name)
        if listing not in chosen:
            chosen.append(listing)
    return chosen


def listing_of(name: str) -> str:
    """Which backend lists the clusters of backend ``name`` (a dotted-path class: the records).

    An installed backend's class says (``listed_by``); one that cannot be imported is
    asked under its own name, and says why in the listing's note.
    """
    if name not in available_backends():
        if "." in name:  # a Dask cluster class by dotted path: recorded where it ran
            return RECORDS
        raise ConfigurationError(
            f"Cannot list clusters of backend '{name}'.{did_you_mean(name, available_backends())}"
            f" Known are {', '.join(available_backends())} (daskflow.cluster.list-backends "
            f"or --backend).")
    try:
        return _backend_class(name).listed_by
    except Exception:  # noqa: BLE001  not installed: asking it gives the note
        return name


def live_clusters(backends: list[str] | tuple[str, ...] | None = None,
                  datastore_root: str | None = None) -> tuple[list[LiveCluster], list[str]]:
    """Every live cluster of the chosen backends, judged; and a note per backend not asked."""
    found: list[LiveCluster] = []
    notes: list[str] = []
    for listing in chosen_listings(backends):
        try:
            listed = get_backend(listing).live_clusters()
        except Exception as exc:  # noqa: BLE001  one backend down: the others still list
            notes.append(f"{listing}: not listed: {type(exc).__name__}: {exc}")
            continue
        for cluster in listed:
            cluster.listed_by = listing
        found += listed
    roots = _datastore_roots(datastore_root)
    from . import records
    noted = records.by_name()  # a record made here knows the run's datastore root
    for cluster in found:
        record = noted.get(cluster.name)
        if cluster.labels.datastore is None and record is not None:
            cluster.labels = replace(cluster.labels, datastore=record["labels"].datastore)
        cluster.run_alive, cluster.why = judge(cluster, roots)
    return found, notes


def end(cluster: LiveCluster) -> str:
    """Close ``cluster`` with the means of the backend that listed it; what was done, in words."""
    return str(get_backend(cluster.listed_by or cluster.backend).end_cluster(cluster))


def _set_up_listings() -> list[str]:
    """Every listing that a known backend uses and that is set up on this machine."""
    chosen = [RECORDS]
    for name in available_backends():
        try:
            listing = _backend_class(name).listed_by
            if listing not in chosen and _backend_class(listing).set_up_here():
                chosen.append(listing)
        except Exception:  # noqa: BLE001  not installed here: nothing of it to list
            continue
    return chosen


def _backend_class(name: str) -> Any:
    """The backend's class, imported now; its package's import warnings are not this
    listing's business (asyncssh's about DSA keys, ...)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_backend_class(name)


# -- is its run alive? ---------------------------------------------------------------------------
def judge(cluster: LiveCluster, roots: list[str]) -> tuple[bool | None, str]:
    """(run alive?, why) from the run's record, else from the driver's pid on this machine."""
    from ..liveness import driver_lost
    labels = cluster.labels
    if labels.run and "/" in labels.run:
        flow, run_id = labels.run.split("/", 1)
        for root in [r for r in (labels.datastore, *roots) if r]:
            record = _run_record(root, flow, run_id)
            if record is None:
                continue
            status = record.get("status")
            if status != "running":
                return False, f"run {status}"
            if driver_lost(record):
                return False, "driver gone"
            return True, "heartbeat fresh"
    pid = labels.driver_pid
    if labels.driver_host == socket.gethostname() and pid:
        if alive([pid]):
            return True, f"driver pid {pid} alive"
        return False, f"driver pid {pid} gone"
    return None, "run record not found (give --datastore-root)" if labels.run else \
        "not started by a run, driver elsewhere"


def _run_record(root: str, flow: str, run_id: str) -> dict[str, Any] | None:
    from ..datastore import ArtifactStore
    try:
        return ArtifactStore(root, flow).read_run(run_id)
    except Exception:  # noqa: BLE001  not in this datastore
        return None


def _datastore_roots(given: str | None) -> list[str]:
    from ..datastore import resolve_root
    try:
        return [resolve_root(given)]
    except Exception:  # noqa: BLE001
        return []


# -- the table -----------------------------------------------------------------------------------
def as_rows(clusters: list[LiveCluster]) -> list[dict[str, str]]:
    """The table ``daskflow clusters list`` prints, one dict of column -> text per cluster."""
    rows = []
    for c in clusters:
        rows.append({"BACKEND": c.backend, "NAME": c.name, "RUN": c.labels.run or "-",
                     "STEP": c.labels.step or ("(default)" if c.labels.run else "-"),
                     "AGE": _age(c.age), "WORKERS": "?" if c.workers is None else str(c.workers),
                     "STATE": c.state,
                     "RUN ALIVE": {True: "yes", False: "no", None: "?"}[c.run_alive]
                     + f" ({c.why})"})
    return rows


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


__all__ = ["LiveCluster", "as_rows", "chosen_listings", "end", "judge", "listing_of",
           "live_clusters"]
