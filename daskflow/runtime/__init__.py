"""Drives runs: plans and submits tasks to a Dask cluster, expands foreach at run time."""

from .executing import ExecutingRun
from .flowfile import load_flow
from .nbrun import NBRunner
from .runner import Runner

__all__ = ["ExecutingRun", "NBRunner", "Runner", "load_flow"]
