"""``@environment(vars={...})``: environment variables for one step's tasks (Metaflow's meaning).

The values hold for that step's tasks only.  On a cluster of its own
(``@resources``) the workers are started with them; elsewhere the runtime sets
them for the task while no other task runs in the same worker process, so
concurrent tasks never see each other's values.  Subprocesses the step starts
inherit them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .base import StepDecorator, StepPlan, str_mapping


class Environment(StepDecorator):
    """Set environment variables for this step.

    >>> @environment(vars={"OMP_NUM_THREADS": "4", "MODE": "fast"})   # doctest: +SKIP
    ... @step
    ... def train(self): ...
    """

    name = "environment"

    @dataclass
    class Options:
        vars: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        self.vars = str_mapping(self.options.vars, what="@environment(vars)")

    def plan(self, *, step: StepPlan) -> None:
        step.env.update(self.vars)


environment = Environment.decorator()
