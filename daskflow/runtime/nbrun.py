"""``NBRunner``: run a flow class defined in a notebook cell (Metaflow's names and meaning).

``nbrun`` and ``nbresume`` run in the kernel's own process (the cell's class is
shipped to local workers by value) and return the ``Run``; ``async_run`` and
``async_resume`` run the cell, saved as a file, in a subprocess and return an
:class:`~daskflow.runtime.executing.ExecutingRun`.

>>> run = NBRunner(HelloFlow, max_workers=4).nbrun(alpha=0.5)   # doctest: +SKIP
>>> run.data.result
"""

from __future__ import annotations

from typing import Any

from .flowfile import is_flow_class
from .runner import Runner


class NBRunner:
    """Run ``flow`` (a FlowSpec subclass from a notebook cell) from the notebook.

    Parameters
    ----------
    flow : FlowSpec subclass
        The flow class.
    show_output : bool
        Print the run's progress and the tasks' output in the cell (default True).
    **kwargs
        The options :class:`~daskflow.Runner` takes (``max_workers``, ``tags``,
        ``datastore_root``, ``cluster``, ...).
    """

    def __init__(self, flow: type, show_output: bool = True, **kwargs: Any) -> None:
        if not is_flow_class(flow):
            raise TypeError(f"NBRunner takes a FlowSpec subclass, got {flow!r}: "
                            f"NBRunner(MyFlow).nbrun().")
        kwargs.setdefault("quiet", not show_output)
        self.flow = flow
        self.runner = Runner(flow, **kwargs)

    def nbrun(self, **params: Any) -> Any:
        """Run the flow with ``params`` in this kernel and return its ``Run``; a failed
        run raises ``RunFailed`` whose cause is the step's traceback."""
        return self.runner.run(**params)

    def nbresume(self, step: str | None = None, origin_run_id: str | None = None) -> Any:
        """Resume the latest run (or ``origin_run_id``) and return the new ``Run``."""
        return self.runner.resume(step, origin_run_id)

    async def async_run(self, **params: Any) -> Any:
        """Start the run in a subprocess; an ``ExecutingRun`` once it has its id."""
        return await self.runner.async_run(**params)

    async def async_resume(self, step: str | None = None,
                           origin_run_id: str | None = None) -> Any:
        return await self.runner.async_resume(step, origin_run_id)

    def cleanup(self) -> None:
        """Nothing to remove: kept for Metaflow's API."""
