"""``@retry``, ``@catch`` and ``@timeout``: what happens when a step fails (Metaflow's meaning).

Each sets what it governs in the step's plan (attempts, time limit) or handles
the failure of the last attempt (``@catch``); the runtime counts attempts in
the datastore, so an attempt whose process crashed or timed out counts like one
that raised.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..exceptions import FlowDefinitionError
from .base import StepDecorator, StepDecoratorError, StepPlan, TaskContext, TaskError

#: the type names Metaflow stores for a timeout and for a process that died under @catch,
#: so that a flow or a notebook that reads them (``error.type``) runs on both
TIMEOUT_TYPE = "metaflow.plugins.timeout_decorator.TimeoutException"
HANDLED_BY_CATCH_TYPE = "metaflow.plugins.catch_decorator.FailureHandledByCatch"


def handled_by_catch(attempts: int) -> TaskError:
    """What ``@catch`` stores when the task's process kept dying (it raised nothing), in
    the attempt after the last one (Metaflow's fallback attempt), in Metaflow's words.

    >>> handled_by_catch(1).message.split(".")[0]
    'Task execution kept failing over 1 attempts'
    """
    return TaskError(HANDLED_BY_CATCH_TYPE,
                     f"Task execution kept failing over {attempts} attempts. Your code did "
                     f"not raise an exception. Something in the execution environment "
                     f"caused the failure.")


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
        delay = self.options.minutes_between_retries
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
            raise StepDecoratorError(
                f"@retry(minutes_between_retries={delay!r}) must be a number >= 0.")

    def plan(self, *, step: StepPlan) -> None:
        step.retries = self.options.times
        # As Metaflow: the wait is for remote schedulers; a local cluster retries at once
        # (the runtime drops the delay for clusters on this machine).
        step.retry_delay = 60 * float(self.options.minutes_between_retries)


class Catch(StepDecorator):
    """After the retries are spent, store the exception in ``var`` and go on.

    The artifact is a :class:`CaughtException` (``.type``, ``.exception``,
    ``.stacktrace``), stored with what the step assigned before it failed; the step
    counts as done and the flow follows its transition.
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

    def plan(self, *, step: StepPlan) -> None:
        transition = step.node.transition
        if transition in ("foreach", "switch"):
            raise FlowDefinitionError(
                f"@catch cannot be used on step '{step.name}': a {transition} step that "
                f"failed has no {'list to fan out over' if transition == 'foreach' else 'choice to follow'}. "
                f"Put @catch on the steps it leads to instead.", step=step.name,
                file=step.graph.file, lineno=step.node.lineno)

    def task_exception(self, *, task: TaskContext, error: TaskError) -> dict[str, Any]:
        if self.options.print_exception:
            import sys
            print(f"@catch: step '{task.step}' failed with {error.type}: {error.message}; "
                  f"the flow goes on.", file=sys.stderr)
        if self.options.var is None:
            return {}
        return {self.options.var: CaughtException(error.type, error.message, error.traceback)}

    @contextmanager
    def around_task(self, *, task: TaskContext) -> Iterator[None]:
        yield
        if self.options.var is not None:  # as Metaflow: None after a success
            setattr(task.flow, self.options.var, None)


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
        for key, value in dataclasses.asdict(self.options).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise StepDecoratorError(
                    f"@timeout({key}={value!r}) must be a number >= 0, e.g. "
                    f"@timeout(minutes=5).")
        if self.total_seconds <= 0:
            raise StepDecoratorError(
                "@timeout needs a positive duration, e.g. @timeout(minutes=5).")

    def plan(self, *, step: StepPlan) -> None:
        step.timeout = self.total_seconds

    def timed_out(self, *, task: TaskContext, stack: str) -> TaskError:
        """Metaflow's ``TimeoutException``: its message names the options as written and
        shows where the step's code was (``>`` lines), as Metaflow's does.

        >>> Timeout(seconds=2).timed_out(task=None, stack="").message  # doctest: +SKIP
        'Step work timed out after 0 hours, 0 minutes, 2 seconds\nStack when ...'
        """
        o = self.options
        step = task.step if task is not None else "?"
        head = (f"Step {step} timed out after {_number(o.hours)} hours, "
                f"{_number(o.minutes)} minutes, {_number(o.seconds)} seconds")
        where = "\n".join(f">  {line}" for line in stack.splitlines())
        return TaskError(TIMEOUT_TYPE, f"{head}\nStack when the timeout was raised:\n{where}",
                         f"Traceback (most recent call last):\n{stack}"
                         f"{TIMEOUT_TYPE.rsplit('.', 1)[1]}: {head}\n")


def _number(value: float) -> str:
    """``2`` for 2 and 2.0, ``1.5`` for 1.5: as the user wrote it."""
    return f"{value:g}"


class CaughtException(Exception):
    """A failure the flow went past, as Metaflow's ``MetaflowExceptionWrapper`` has it.

    ``type`` is the qualified class name (``mymod.RetryError``, ``builtins.KeyError``),
    ``exception`` the message, ``stacktrace`` the traceback text; ``str()`` is the
    stack trace when there is one.  What ``@catch`` stores and ``Task.exception`` gives.

    >>> str(CaughtException("builtins.KeyError", "'a'"))
    "[no stacktrace]\nbuiltins.KeyError: 'a'"
    """

    def __init__(self, type_name: str, message: str, stacktrace: str = "") -> None:
        super().__init__(type_name, message, stacktrace)
        self.type = type_name
        self.exception = message
        self.stacktrace = stacktrace or None

    @property
    def traceback(self) -> str:
        return self.stacktrace or ""

    def __reduce__(self) -> Any:  # plain attributes: unpickles anywhere
        return CaughtException, (self.type, self.exception, self.stacktrace or "")

    def __str__(self) -> str:
        if self.stacktrace:
            return self.stacktrace
        return f"[no stacktrace]\n{self.type}: {self.exception}"

    def __repr__(self) -> str:
        return f"CaughtException({self.type}: {self.exception!r})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, CaughtException) and \
            (self.type, self.exception) == (other.type, other.exception)

    def __hash__(self) -> int:
        return hash((self.type, self.exception))


retry = Retry.decorator()
catch = Catch.decorator()
timeout = Timeout.decorator()
