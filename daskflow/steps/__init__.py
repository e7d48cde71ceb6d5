"""Step decorators (resources, retry, catch, timeout) on one base."""

from .base import StepDecorator, StepDecoratorError, step_decorators

__all__ = ["StepDecorator", "StepDecoratorError", "step_decorators"]
