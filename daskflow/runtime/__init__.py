"""Drives runs: plans and submits tasks to a Dask cluster, expands foreach at run time."""

from .runner import Runner, load_flow

__all__ = ["Runner", "load_flow"]
