"""``@environment(vars={...}, secrets=...)``: environment variables for one step's tasks.

The values hold for that step's tasks only.  On a cluster of its own
(``@resources``) the workers are started with them; elsewhere the runtime sets
them for the task while no other task runs in the same worker process, so
concurrent tasks never see each other's values.  Subprocesses the step starts
inherit them.

``secrets`` (daskflow's, not Metaflow's) names variables whose values are secret, by
reference (:mod:`daskflow.secrets`): ``secrets=["DB_PASSWORD"]`` takes the driver's
``DB_PASSWORD``; ``secrets={"DB_PASSWORD": "aws-secretsmanager:prod/db"}`` an AWS
secret. Their values reach the workers' environment, never a spec, record or log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..secrets import SecretError, parse_secrets
from .base import StepDecorator, StepDecoratorError, StepPlan, str_mapping


class Environment(StepDecorator):
    """Set environment variables for this step.

    >>> @environment(vars={"OMP_NUM_THREADS": "4", "MODE": "fast"},
    ...              secrets=["DB_PASSWORD"])   # doctest: +SKIP
    ... @step
    ... def train(self): ...
    """

    name = "environment"

    @dataclass
    class Options:
        vars: dict[str, Any] = field(default_factory=dict)
        secrets: Any = field(default_factory=dict)

    def validate(self) -> None:
        self.vars = str_mapping(self.options.vars, what="@environment(vars)")
        try:
            self.secrets = parse_secrets(self.options.secrets, what="@environment(secrets)")
        except SecretError as exc:
            raise StepDecoratorError(str(exc)) from None
        both = sorted(set(self.vars) & set(self.secrets))
        if both:
            raise StepDecoratorError(f"@environment: {', '.join(both)} given in both vars and "
                                     f"secrets: keep it in secrets only.")

    def plan(self, *, step: StepPlan) -> None:
        step.env.update(self.vars)
        step.secrets.update(self.secrets)


environment = Environment.decorator()
