"""The SLURM backend: ``dask_jobqueue.SLURMCluster``, one SLURM job per worker.

Everything about SLURM is in this folder: :mod:`.backend` (the request as
dask-jobqueue's keyword arguments and a job script, the check against ``sinfo``,
teardown checked with ``squeue``, a worker's death read from its job's log),
:mod:`.labels` (a cluster's run, step, user, ... as the jobs' ``--comment``) and
:mod:`.inventory` (daskflow's live jobs read back from ``squeue``).

Importing this package imports dask-jobqueue: the registry does it only when
the slurm backend is asked for.
"""

from .backend import SLURMBackend, SlurmNode

__all__ = ["SLURMBackend", "SlurmNode"]
