"""``@cache``: a step that skips itself when nothing it read has changed.

Before a task of the step runs, the runtime computes its key from the step's code and
the content hashes of what the same step read the last time it ran with that code
(``runtime/cache_keys.py``); when a successful task of an earlier run of the flow has
that key, its artifacts are taken by reference and the body does not run
(``runtime/cache.py``).  The decorator only marks the step: ``version`` changes the
key by hand, for what the key cannot see (data outside the flow, a new model file).
``--with cache`` marks every step.  What is covered, and what is the user's call
(clocks, random state, external data), is in ``docs/cache.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import StepDecorator, StepDecoratorError, StepPlan


class Cache(StepDecorator):
    """Reuse this step's earlier results when its code and what it read are unchanged.

    >>> @cache(version="2")                             # doctest: +SKIP
    ... @step
    ... def train(self): ...
    """

    name = "cache"

    @dataclass
    class Options:
        version: str = "1"

    def validate(self) -> None:
        version = self.options.version
        if isinstance(version, bool) or not isinstance(version, (str, int)) \
                or not str(version).strip():
            raise StepDecoratorError(
                f"@cache(version={version!r}): version must be a non-empty string or a "
                f"number, e.g. @cache(version=\"2\").")

    def plan(self, *, step: StepPlan) -> None:
        step.cache = str(self.options.version)


cache = Cache.decorator()
