"""What processes of daskflow that died without cleaning up left on this machine.

A driver killed with ``kill -9`` (and the workers that die with it) cannot remove its
temporary files.  Each kind carries its owner's pid (:mod:`daskflow.scratch`), so any
later process can find the orphans and remove them:

==========================================  ============================================
``.daskflow-tls-<pid>-*``                   TLS credential files of a SLURM or SSH cluster
                                            (a private key): in the SLURM log folder
                                            (``cluster.slurm.log-directory``) and the
                                            working folder
``daskflow-spool-<uid>/<pid>-*``            a running task's output as it came: stored
                                            as that attempt's log first, where the task
                                            said which attempt it was and none is stored
``daskflow-artifact-<pid>-*``               an artifact serialized before its upload
``daskflow-parallel-map-<pid>-*``           a ``parallel_map``'s big partitions (also in
                                            ``/dev/shm``)
``daskflow-run-<pid>-*``, ``-cell-<pid>-*``  an ``async_run``'s output, a notebook cell's
                                            flow file
==========================================  ============================================

(all but the first in the temporary folder).  :func:`sweep` runs in the background when
a run starts, beside the datastore's own sweep of half-written files, and in
``daskflow clusters gc``.
"""

from __future__ import annotations

import os
import tempfile
from collections import defaultdict

from .. import config
from ..clusters.security import TLS_PREFIX
from ..collections.parallel.transport import SHARED_PREFIX
from ..datastore.files import ARTIFACT_TEMP
from ..scratch import alive, orphans, owner, remove
from .capture import remove_spool, spool_note
from .executing import RUN_LOGS
from .flowfile import CELL_PREFIX


def sweep(dry_run: bool = False) -> list[str]:
    """Remove what owners that are gone left here; return the paths removed (with
    ``dry_run``: that would be)."""
    found = []
    for folder, prefix in _places():
        found += [path for path in orphans(folder, prefix) if dry_run or remove(path)]
    return found + _sweep_spools(dry_run)


def _places() -> list[tuple[str, str]]:
    temp = tempfile.gettempdir()
    places = [(temp, ARTIFACT_TEMP), (temp, SHARED_PREFIX), (temp, RUN_LOGS),
              (temp, CELL_PREFIX), ("/dev/shm", SHARED_PREFIX), (os.getcwd(), TLS_PREFIX)]
    logs = config.get("cluster.slurm.log-directory")
    if logs:
        places.append((os.path.abspath(str(logs)), TLS_PREFIX))
    return list(dict.fromkeys(places))


def _sweep_spools(dry_run: bool) -> list[str]:
    """The spools of dead processes: each kept as its attempt's log, then removed."""
    from .capture import spool_folder
    folder = spool_folder()
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    spools: dict[str, list[str]] = defaultdict(list)
    for name in names:
        pid = owner(name, "")
        if pid is not None and not alive(pid):
            spools[os.path.join(folder, name.split(".", 1)[0])].append(name)
    for spool in spools if not dry_run else ():
        _keep_as_log(spool)
        remove_spool(spool)
    return sorted(os.path.join(folder, n) for found in spools.values() for n in found)


def _keep_as_log(spool: str) -> None:
    """Store the spool's output as its attempt's log unless the attempt has one."""
    note = spool_note(spool)
    if note is None:
        return
    try:
        from ..datastore import ArtifactStore
        from .attempts import keep_spool
        keep_spool(ArtifactStore(note["root"], note["flow"]),
                   (note["run_id"], note["step"], note["task_id"], int(note["attempt"])), spool)
    except Exception:  # noqa: BLE001  a store gone or renamed: the spool goes anyway
        pass
