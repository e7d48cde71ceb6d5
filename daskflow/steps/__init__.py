"""Step decorators on one base with hooks the runtime calls (see :mod:`.base`).

Built-in ones load by name when used; third parties add theirs through the
``daskflow.step_decorators`` entry-point group.
"""

from .base import (
    StepDecorator,
    apply_configs,
    StepDecoratorError,
    StepPlan,
    TaskContext,
    TaskError,
    check_step_decorators,
    decorators_for,
    get_step_decorator,
    iter_hooks,
    known_step_decorators,
    parse_decospec,
    register_step_decorator,
    step_decorators,
)
from .cache import Cache, cache
from .environment import Environment, environment
from .failure import Catch, CaughtException, Retry, Timeout, catch, retry, timeout
from .parallel import Parallel, parallel
from .resources import Resources, parse_size, resources
from .secrets import Secrets, secrets

__all__ = [
    "apply_configs",
    "Cache",
    "Catch",
    "CaughtException",
    "Environment",
    "Parallel",
    "Resources",
    "Retry",
    "Secrets",
    "StepDecorator",
    "StepDecoratorError",
    "StepPlan",
    "TaskContext",
    "TaskError",
    "Timeout",
    "cache",
    "catch",
    "check_step_decorators",
    "decorators_for",
    "environment",
    "get_step_decorator",
    "iter_hooks",
    "known_step_decorators",
    "parse_decospec",
    "parallel",
    "parse_size",
    "register_step_decorator",
    "resources",
    "retry",
    "secrets",
    "step_decorators",
    "timeout",
]
