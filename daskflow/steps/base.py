"""The one base every step decorator shares.

A decorator has a typed options dataclass; its keyword arguments are checked
against it (an unknown one raises, listing the allowed ones), and it attaches
itself to the step function's ``decorators`` list, in the order written.
It works bare (``@retry``) or called (``@retry(times=2)``), above or below
``@step``.  Hooks the runtime calls take keyword-only arguments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

from ..exceptions import DaskflowException, did_you_mean


class StepDecoratorError(DaskflowException, TypeError):
    """A step decorator was given an unknown or invalid option."""

    headline = "Decorator error"


class StepDecorator:
    """Base of ``@resources``, ``@retry``, ``@catch`` and ``@timeout``.

    Subclasses set ``name`` and ``Options`` (a dataclass with defaults) and may
    override ``validate``.
    """

    name: ClassVar[str] = "decorator"
    Options: ClassVar[type]

    def __init__(self, **kwargs: Any) -> None:
        allowed = [f.name for f in dataclasses.fields(self.Options)]
        for key in kwargs:
            if key not in allowed:
                raise StepDecoratorError(
                    f"@{self.name} got an unknown argument '{key}'."
                    f"{did_you_mean(key, allowed)} Allowed: {', '.join(allowed)}.")
        self.options = self.Options(**kwargs)
        self.validate()

    def validate(self) -> None:
        """Raise :class:`StepDecoratorError` if the options make no sense."""

    def __call__(self, func: Callable) -> Callable:
        decorators = getattr(func, "decorators", None)
        if decorators is None:
            decorators = func.decorators = []  # type: ignore[attr-defined]
        if any(d.name == self.name for d in decorators):
            raise StepDecoratorError(
                f"@{self.name} is applied twice to step '{func.__name__}'.")
        decorators.append(self)
        return func

    @classmethod
    def decorator(cls) -> Callable[..., Any]:
        """The user-facing decorator: works bare (``@retry``) or with options."""

        def make(func: Callable | None = None, **kwargs: Any) -> Any:
            if func is not None:
                if not callable(func):
                    raise StepDecoratorError(
                        f"@{cls.name} takes keyword arguments only, e.g. @{cls.name}(...).")
                return cls()(func)
            return cls(**kwargs)

        make.__name__ = cls.name
        make.__doc__ = cls.__doc__
        return make

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in dataclasses.asdict(self.options).items()
                           if v != getattr(self.Options, k, None))
        return f"@{self.name}({fields})"


def step_decorators(func: Callable) -> list[StepDecorator]:
    """The decorators attached to a step function, in the order written."""
    return list(getattr(func, "decorators", []))


def parse_decospec(spec: str, known: dict[str, type[StepDecorator]]) -> StepDecorator:
    """Build a decorator from ``--with`` text: ``retry`` or ``retry:times=2,minutes_between_retries=0``.

    >>> parse_decospec("retry:times=2", {"retry": Retry})  # doctest: +SKIP
    @retry(times=2)
    """
    import ast

    name, _, args = spec.partition(":")
    name = name.strip()
    if name not in known:
        raise StepDecoratorError(
            f"--with {spec!r}: unknown decorator '{name}'.{did_you_mean(name, known)} "
            f"Known: {', '.join(sorted(known))}.")
    kwargs: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in args.split(","))):
        key, eq, raw = part.partition("=")
        if not eq:
            raise StepDecoratorError(
                f"--with {spec!r}: expected key=value after ':', got {part!r}.")
        try:
            kwargs[key.strip()] = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            kwargs[key.strip()] = raw.strip()
    return known[name](**kwargs)
