"""A cluster's maximum lifetime, enforced by its scheduler itself.

``daskflow.cluster.max-lifetime`` (and ``@resources(max_lifetime=...)``) bounds
how long any cluster lives, whatever happens to the driver. The scheduler
enforces it: it is started with a ``--preload`` whose value is the *text* of a
small script (distributed runs a preload given as source text; see
``distributed.preloading``), so a stock Dask image needs nothing of daskflow.
At the deadline the scheduler closes, which closes its workers (their nannies
exit), and the ECS task, pod or process ends.

The same preload goes to the schedulers that run inside the driver (local,
SLURM, SSH): there it ends a step that outlives its bound.
"""

from __future__ import annotations

from typing import Any

from .. import config

#: the preload's source; ``{seconds}`` is filled in. It must contain a space (that is
#: how distributed tells source text from a module name), no ``.py`` ending, and no
#: blank line: schedulers log it line by line, and SSHCluster takes a blank line in its
#: scheduler's output for a failed start.
PRELOAD = '''# daskflow: close this scheduler at its maximum lifetime
import asyncio
import logging
MAX_LIFETIME = {seconds!r}
def dask_setup(scheduler):
    async def end():
        await asyncio.sleep(MAX_LIFETIME)
        logging.getLogger("distributed.scheduler").warning(
            "daskflow: closing the scheduler at its maximum lifetime of %ss", MAX_LIFETIME)
        await scheduler.close(reason="daskflow-max-lifetime")
    scheduler._daskflow_max_lifetime = asyncio.get_running_loop().create_task(end())
def dask_teardown(scheduler):
    task = getattr(scheduler, "_daskflow_max_lifetime", None)
    if task is not None and task is not asyncio.current_task():
        task.cancel()
'''


def seconds(request: Any) -> float | None:
    """The request's ``max_lifetime``, else ``daskflow.cluster.max-lifetime``; None: unbounded."""
    from dask.utils import parse_timedelta
    own = getattr(request, "max_lifetime", None)
    if own:
        return float(own)
    setting = config.get("cluster.max-lifetime")
    return float(parse_timedelta(setting, default="s")) if setting else None


def preload(request: Any) -> list[str]:
    """``[script text]`` for a scheduler's ``preload=``; [] when there is no bound.

    >>> from daskflow.clusters import ResourceRequest
    >>> "MAX_LIFETIME = 7200.0" in preload(ResourceRequest(max_lifetime=7200))[0]
    True
    """
    limit = seconds(request)
    return [PRELOAD.format(seconds=limit).rstrip("\n")] if limit else []


def scheduler_args(request: Any) -> list[str]:
    """The same for a ``dask scheduler`` command line: ``["--preload", text]`` or []."""
    return [arg for text in preload(request) for arg in ("--preload", text)]
