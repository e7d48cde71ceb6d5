"""Imported once by the fork server that local workers are forked from (forkserver.py).

Importing this module is its whole job: it imports what every worker needs and the
flow file, so a forked worker starts with all of it in memory. (Dask's pre-spawn
variables are in the server's environment from its start: see ``warm_up``.) Nothing
here runs a task or starts a thread.
"""

import os

import cloudpickle  # noqa: F401
import distributed  # noqa: F401
import distributed.nanny  # noqa: F401
import distributed.worker  # noqa: F401

import daskflow.runtime.task  # noqa: F401

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
