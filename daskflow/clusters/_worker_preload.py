"""Imported once by the fork server that local workers are forked from (forkserver.py).

Importing this module is its whole job: it sets Dask's pre-spawn environment, then
imports what every worker needs and the flow file, so a forked worker starts with all
of it in memory. Nothing here runs a task or starts a thread.
"""

import os

from daskflow.clusters.forkserver import pre_spawn_environ

# What Dask sets before spawning a worker (OMP_NUM_THREADS=1, ...), set before numpy
# or the flow file is imported, and without overriding what the user set. (The driver
# passed them to this process's start too; this covers a server started elsewhere.)
for _key, _value in pre_spawn_environ().items():
    if _value is not None:
        os.environ.setdefault(_key, str(_value))

import cloudpickle  # noqa: E402,F401
import distributed  # noqa: E402,F401
import distributed.nanny  # noqa: E402,F401
import distributed.worker  # noqa: E402,F401

import daskflow.runtime.task  # noqa: E402,F401

_main = os.environ.pop("DASKFLOW_FORKSERVER_MAIN", None)
if _main:
    from multiprocessing import process, spawn

    # As multiprocessing does for a preloaded "__main__": each worker then finds the
    # flow module loaded and does not run the file again.
    process.current_process()._inheriting = True  # type: ignore[attr-defined]
    try:
        spawn.import_main_path(_main)
    except BaseException:  # noqa: BLE001  each worker imports it then, and reports what fails
        pass
    finally:
        del process.current_process()._inheriting  # type: ignore[attr-defined]
