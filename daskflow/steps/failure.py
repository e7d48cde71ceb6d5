"""``@retry``, ``@catch`` and ``@timeout``: what happens when a step fails (Metaflow's meaning).

The runtime reads their options; each task counts its attempts in the
datastore, so a retry after a dead worker or a timeout is counted like one
after an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import StepDecorator, StepDecoratorError


class Retry(StepDecorator):
    """Run a failed task again, up to ``times`` more attempts.

    ``current.retry_count`` is the attempt number; artifacts of a failed attempt
    are never visible; every attempt's output stays readable.

    >>> @retry(times=2, minutes_between_retries=0)      # doctest: +SKIP
    ... @step
    ... def fetch(self): ...
    """

    name = "retry"

    @dataclass
    class Options:
        times: int = 3
        minutes_between_retries: float = 2

    def validate(self) -> None:
        if not isinstance(self.options.times, int) or self.options.times < 0:
            raise StepDecoratorError(
                f"@retry(times={self.options.times!r}): times must be a whole number >= 0.")
        if self.options.minutes_between_retries < 0:
            raise StepDecoratorError("@retry: minutes_between_retries must be >= 0.")


class Catch(StepDecorator):
    """After the retries are spent, store the exception in ``var`` and go on.

    The artifact is a :class:`CaughtException` (``.type``, ``.exception``,
    ``.traceback``); the step counts as done and the flow follows its transition.
    """

    name = "catch"

    @dataclass
    class Options:
        var: str | None = None
        print_exception: bool = True

    def validate(self) -> None:
        var = self.options.var
        if var is not None and (not isinstance(var, str) or not var.isidentifier()
                                or var.startswith("_")):
            raise StepDecoratorError(
                f"@catch(var={var!r}): var must be an artifact name such as 'error'.")


class Timeout(StepDecorator):
    """Stop a task that runs longer than ``seconds + 60*minutes + 3600*hours``.

    The task is really stopped: the worker process running it is replaced.  A
    timeout counts as a failure for ``@retry`` and ``@catch``.
    """

    name = "timeout"

    @dataclass
    class Options:
        seconds: float = 0
        minutes: float = 0
        hours: float = 0

    @property
    def total_seconds(self) -> float:
        o = self.options
        return float(o.seconds) + 60 * float(o.minutes) + 3600 * float(o.hours)

    def validate(self) -> None:
        if self.total_seconds <= 0:
            raise StepDecoratorError(
                "@timeout needs a positive duration, e.g. @timeout(minutes=5).")


class CaughtException:
    """What ``@catch`` stores: the failure of a step that the flow went past."""

    def __init__(self, type_name: str, message: str, traceback_text: str = "") -> None:
        self.type = type_name
        self.exception = message
        self.traceback = traceback_text

    def __str__(self) -> str:
        return f"{self.type}: {self.exception}"

    def __repr__(self) -> str:
        return f"CaughtException({self.type}: {self.exception!r})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, CaughtException) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


retry = Retry.decorator()
catch = Catch.decorator()
timeout = Timeout.decorator()
