"""Drives runs: plans and submits tasks to a Dask cluster, expands foreach at run time."""

from .executing import ExecutingRun
from .nbrun import NBRunner
from .runner import Runner, load_flow

__all__ = ["ExecutingRun", "NBRunner", "Runner", "load_flow"]
