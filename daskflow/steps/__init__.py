"""Step decorators (resources, retry, catch, timeout) on one base."""

from .base import StepDecorator, StepDecoratorError, parse_decospec, step_decorators
from .failure import Catch, CaughtException, Retry, Timeout, catch, retry, timeout
from .resources import Resources, parse_size, resources

# Decorators that `run --with NAME:key=value` can attach to every step.
KNOWN_DECORATORS: dict[str, type[StepDecorator]] = {
    "retry": Retry,
    "catch": Catch,
    "timeout": Timeout,
    "resources": Resources,
}

__all__ = [
    "KNOWN_DECORATORS",
    "Catch",
    "CaughtException",
    "Resources",
    "Retry",
    "StepDecorator",
    "StepDecoratorError",
    "Timeout",
    "catch",
    "parse_decospec",
    "parse_size",
    "resources",
    "retry",
    "step_decorators",
    "timeout",
]
