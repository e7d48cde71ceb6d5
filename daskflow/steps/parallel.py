"""``@parallel``: Metaflow's mark on a step that runs as a ``num_parallel`` gang.

The step before it says ``self.next(self.train, num_parallel=4)``; the runtime then
starts one cluster of 4 workers (sized by the step's ``@resources``), runs the step
once on each at the same time and tells each its place through
``current.parallel``.  The mark itself changes nothing: flows carry it, so it is
accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import StepDecorator


class Parallel(StepDecorator):
    """Mark a step that runs as a gang (``num_parallel``); accepted as Metaflow has it."""

    name = "parallel"

    @dataclass
    class Options:
        pass


parallel = Parallel.decorator()
