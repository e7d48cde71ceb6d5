"""The one base every step decorator shares, and the hooks the runtime calls.

A decorator is one small class: a typed options dataclass (an unknown keyword
raises, listing the allowed ones; ``validate`` checks the values at definition
time) and keyword-only hooks, each given one context object:

- ``plan(step=StepPlan)`` runs on the driver before anything is stored. It may
  change what the step asks of the runtime: its own cluster (``step.request``,
  ``step.backend``), its environment (``step.env``), its attempts
  (``step.retries``, ``step.retry_delay``), its time limit (``step.timeout``),
  whether its results are reused across runs (``step.cache``) and, after a foreach,
  its request per split (``step.split_request``).
  Raising :class:`~daskflow.exceptions.FlowDefinitionError` refuses the flow.
- ``around_task(task=TaskContext)`` runs on the worker around each attempt of the
  step's body; it returns a context manager, or None for nothing to wrap.
- ``task_exception(task=TaskContext, error=TaskError)`` runs on the worker when the
  last attempt failed; returning a dict of artifacts makes the task succeed with
  them (and what the body assigned before it failed) instead of failing the run.

The runtime calls these hooks on every decorator of a step and never asks for
one by name.  Built-in decorators are found by name in a lazy table
(:data:`BUILTIN`), third-party ones through the ``daskflow.step_decorators``
entry-point group (``name = "package.module:ClassName"``) or
:func:`register_step_decorator`.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..configs import is_delayed
from ..exceptions import DaskflowException, did_you_mean


class StepDecoratorError(DaskflowException, TypeError):
    """A step decorator was given an unknown or invalid option."""

    headline = "Decorator error"


@dataclass
class StepPlan:
    """What the runtime will do for one step; ``plan`` hooks may change it.

    ``request`` set means the step runs on a cluster of its own, from ``backend``
    (None: the run's default backend).  ``env`` is set for the step's tasks only:
    concurrent tasks of other steps never see it.  ``secrets`` names secret variables
    by reference (:mod:`daskflow.secrets`); the runtime puts the values that its tasks
    must set themselves in ``secret_env`` (:class:`~daskflow.secrets.SecretValue`, never
    shown).
    """

    name: str
    node: Any                                  # the step's graph.StepNode
    graph: Any                                 # the flow's graph.FlowGraph
    decorators: tuple[StepDecorator, ...] = ()
    request: Any = None                        # clusters.ResourceRequest or None
    backend: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    retries: int = 0
    retry_delay: float = 0.0                   # seconds; local clusters retry at once
    timeout: float | None = None               # seconds per attempt
    # a foreach step's request per split: called with a split's input, it returns that
    # split's ResourceRequest (the runtime evaluates it before placing the split); None:
    # every split gets ``request``
    split_request: Callable[[Any], Any] | None = None
    secrets: dict[str, Any] = field(default_factory=dict)     # name: secrets.SecretRef
    secret_env: dict[str, Any] = field(default_factory=dict)  # name: secrets.SecretValue
    cache: str | None = None       # @cache: the version its keys take; None: not cached

    @property
    def own_cluster(self) -> bool:
        """Whether the step runs on a cluster started for it (its body may drive it)."""
        return self.request is not None

    def where(self) -> str:
        """``flow.py:12 (step 'train')``, for errors a hook raises."""
        return f"{self.graph.file}:{self.node.lineno} (step '{self.name}')"


@dataclass
class TaskContext:
    """One attempt of a task, as a worker-side hook sees it."""

    flow: Any                   # the FlowSpec instance the body runs on
    step: str
    task_id: str
    attempt: int
    pathspec: str
    plan: StepPlan


@dataclass
class TaskError:
    """How the last attempt of a task failed, in plain text (always unpicklable-safe).

    ``type`` is the qualified class name (``mymod.RetryError``), as Metaflow gives it.
    """

    type: str
    message: str
    traceback: str = ""


class StepDecorator:
    """Base of every step decorator: options, validation and hooks.

    Subclasses set ``name`` and ``Options`` (a dataclass with defaults), may
    override ``validate`` and any hook.

    >>> class Note(StepDecorator):
    ...     name = "note"
    ...     @dataclass
    ...     class Options:
    ...         text: str = ""
    ...     def plan(self, *, step):
    ...         step.env["NOTE"] = self.options.text
    >>> note = Note.decorator()
    """

    name: ClassVar[str] = "decorator"
    Options: ClassVar[type]

    def __init__(self, **kwargs: Any) -> None:
        if any(is_delayed(k) or is_delayed(v) for k, v in kwargs.items()):
            # ``@resources(cpu=cfg.cpu)``: built once the run's configs are known
            # (build_delayed_decorators); until then its options are the defaults
            self.delayed_kwargs: dict[str, Any] | None = kwargs
            self.waiting = True
            self.options = self.Options()
            return
        self.delayed_kwargs = None
        self.waiting = False
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

    # -- hooks (keyword-only, one context object each) --------------------------------

    def plan(self, *, step: StepPlan) -> None:
        """On the driver, before anything is stored: change what the step asks for."""

    def around_task(self, *, task: TaskContext) -> AbstractContextManager[Any] | None:
        """On the worker: a context manager wrapped around each attempt, or None."""
        return None

    def task_exception(self, *, task: TaskContext,
                       error: TaskError) -> dict[str, Any] | None:
        """On the worker, when the last attempt failed: artifacts to go on with, or None."""
        return None

    def timed_out(self, *, task: TaskContext, stack: str) -> TaskError | None:
        """On the worker, when the attempt ran past ``StepPlan.timeout``: how it failed
        (``stack``: where the step's code was, formatted), or None."""
        return None

    # -- attaching ------------------------------------------------------------------

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
            try:
                if func is not None:
                    if not callable(func):
                        raise StepDecoratorError(
                            f"@{cls.name} takes keyword arguments only, e.g. "
                            f"@{cls.name}(...).")
                    return cls()(func)
                made = cls(**kwargs)
                if made.waiting:  # its line, for an error once the configs are known
                    caller = sys._getframe(1)
                    made.where = (caller.f_code.co_filename, caller.f_lineno)
                return made
            except StepDecoratorError as exc:
                caller = sys._getframe(1)
                if "__qualname__" not in caller.f_locals:  # not in a class body: raise now
                    raise
                # In a flow class: the flow's check reports it as one line with file:line
                # (raised here, it would be a traceback through the module's import).
                return _Refused(exc, caller.f_code.co_filename, caller.f_lineno)

        make.__name__ = cls.name
        make.__doc__ = cls.__doc__
        return make

    @classmethod
    def overrides(cls, hook: str) -> bool:
        """Whether this class defines ``hook`` itself (the runtime skips work otherwise)."""
        return getattr(cls, hook) is not getattr(StepDecorator, hook)

    def __repr__(self) -> str:
        if getattr(self, "waiting", False):  # its options wait for the run's configs
            raw = self.delayed_kwargs or {}
            shown = [f"**{v!r}" if isinstance(k, str) and k.startswith("_df_unpack_")
                     else f"{k}={v!r}" for k, v in raw.items()]
            return f"@{self.name}({', '.join(shown)})"
        fields = ", ".join(f"{k}={_shown(v)}"
                           for k, v in dataclasses.asdict(self.options).items()
                           if v != getattr(self.Options, k, None))
        return f"@{self.name}({fields})"


def _shown(value: Any) -> str:
    """An option as ``show`` prints it: a function by its name, not its address."""
    if callable(value) and not isinstance(value, type):
        return getattr(value, "__name__", None) or type(value).__name__
    return repr(value)


class _Refused:
    """A decorator whose options were refused in a flow class: it marks the step."""

    def __init__(self, error: StepDecoratorError, file: str, lineno: int) -> None:
        self.error, self.file, self.lineno = error, file, lineno

    def __call__(self, func: Callable) -> Callable:
        func.__dict__.setdefault("refused_decorators", []).append(self)
        return func


def apply_configs(flow_cls: type, loaded: dict[str, Any]) -> None:
    """Make ``loaded`` (by attribute) the flow's configs: class-body expressions evaluate
    against them from now on, and the steps' decorators that waited for them are built.
    A decorator's bad value is refused as at definition time, with the step's file:line.
    """
    from ..configs import set_configs
    set_configs(flow_cls, loaded)
    build_delayed_decorators(flow_cls)
    graph = flow_cls.__dict__.get("_df_graph_cache")
    for node in graph or ():  # what `show` and the report print of each step's decorators
        node.decorators = [repr(d) for d in getattr(getattr(flow_cls, node.name),
                                                    "decorators", [])]


def build_delayed_decorators(flow_cls: type) -> None:
    """Build the steps' decorators that waited for the flow's configs, from their
    keywords with the configs' values in (again each time the configs change). A bad
    value is refused as at definition time, naming the step's file and line."""
    from ..configs import ConfigError, resolve_keywords
    from ..exceptions import FlowDefinitionError

    for name in dir(flow_cls):
        func = getattr(flow_cls, name, None)
        if not inspect.isfunction(func):  # a Config answers any attribute: ask functions only
            continue
        for decorator in getattr(func, "decorators", None) or ():
            raw = getattr(decorator, "delayed_kwargs", None)
            if raw is None:
                continue
            try:
                kwargs = resolve_keywords(raw, flow_cls)
                type(decorator).__init__(decorator, **kwargs)
            except (StepDecoratorError, ConfigError) as exc:
                code = func.__code__
                file, line = getattr(decorator, "where", (code.co_filename,
                                                          code.co_firstlineno))
                raise FlowDefinitionError(f"@{decorator.name}: {exc}", step=name, file=file,
                                          lineno=line) from None
            decorator.delayed_kwargs = raw  # kept: the configs may change (resume)


def check_step_decorators(flow_cls: type) -> None:
    """Raise the first decorator error of the flow's steps, with its file and line."""
    from ..exceptions import FlowDefinitionError

    for name in dir(flow_cls):
        func = getattr(flow_cls, name, None)
        refused = getattr(func, "refused_decorators", None) if inspect.isfunction(func) \
            else None
        if refused:
            first = refused[0]
            raise FlowDefinitionError(str(first.error), step=name, file=first.file,
                                      lineno=first.lineno)


def step_decorators(func: Callable) -> list[StepDecorator]:
    """The decorators attached to a step function, in the order written."""
    return list(getattr(func, "decorators", []))


def decorators_for(func: Callable, extra: Sequence[StepDecorator]) -> tuple[StepDecorator, ...]:
    """A step's decorators plus ``--with`` ones; a decorator the step has itself wins."""
    own = step_decorators(func)
    names = {d.name for d in own}
    return tuple(own) + tuple(d for d in extra if d.name not in names)


# -- finding decorators by name ----------------------------------------------------

#: Built-in decorators, imported only when named (``--with NAME``).
BUILTIN: dict[str, str] = {
    "card": "daskflow.cards.decorator:Card",
    "retry": "daskflow.steps.failure:Retry",
    "catch": "daskflow.steps.failure:Catch",
    "timeout": "daskflow.steps.failure:Timeout",
    "resources": "daskflow.steps.resources:Resources",
    "environment": "daskflow.steps.environment:Environment",
    "parallel": "daskflow.steps.parallel:Parallel",
    "secrets": "daskflow.steps.secrets:Secrets",
    "cache": "daskflow.steps.cache:Cache",
}
ENTRY_POINT_GROUP = "daskflow.step_decorators"
_registered: dict[str, type[StepDecorator] | str] = {}


def register_step_decorator(cls: type[StepDecorator] | str, name: str | None = None,
                            clobber: bool = False) -> None:
    """Make ``--with NAME`` find a decorator class (or its ``"module:Class"`` path)."""
    name = name or (cls.name if isinstance(cls, type) else None)
    if not name:
        raise StepDecoratorError("register_step_decorator needs a name for a class path.")
    if not clobber and name in known_step_decorators():
        raise StepDecoratorError(
            f"A step decorator named '{name}' exists already; pass clobber=True to replace it.")
    _registered[name] = cls


def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def known_step_decorators() -> list[str]:
    """Every name ``--with`` accepts: built-in, entry points and registered."""
    return sorted({*BUILTIN, *_entry_points(), *_registered})


def get_step_decorator(name: str) -> type[StepDecorator]:
    """The decorator class called ``name``, imported on first use."""
    target: Any = _registered.get(name)
    if target is None and name in BUILTIN:
        target = BUILTIN[name]
    if target is None:
        ep = _entry_points().get(name)
        if ep is None:
            known = known_step_decorators()
            raise StepDecoratorError(
                f"Unknown step decorator '{name}'.{did_you_mean(name, known)} "
                f"Known: {', '.join(known)}.")
        target = ep.value
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        try:
            target = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise StepDecoratorError(
                f"Step decorator '{name}' points at {module}:{attr}, which cannot be "
                f"imported: {exc}. Install the package that provides it.") from exc
    if not (isinstance(target, type) and issubclass(target, StepDecorator)):
        raise StepDecoratorError(
            f"Step decorator '{name}' is {target!r}, not a StepDecorator subclass.")
    return target


# -- --with NAME:key=value,key2=value2, as Metaflow reads it ------------------------

# Metaflow splits the options before each "name=", so values may hold commas.
_SPLIT = re.compile(r",(?=[\s\w]+=)")


def parse_decospec(spec: str) -> StepDecorator:
    """Build a decorator from ``--with`` text.

    Values are read as JSON, else as Python literals, else kept as text:

    >>> parse_decospec("retry:times=2,minutes_between_retries=0")
    @retry(times=2, minutes_between_retries=0)
    >>> parse_decospec("environment:vars={'A': '1', 'B': '2'}").options.vars
    {'A': '1', 'B': '2'}
    """
    name, _, args = spec.partition(":")
    name = name.strip()
    known = known_step_decorators()
    if name not in known:
        from ..compat.metaflow_names import REFUSED
        if name in REFUSED["metaflow"]:  # a Metaflow decorator daskflow does not have
            raise StepDecoratorError(f"--with {spec!r}: Metaflow's @{name} is not in "
                                     f"daskflow: {REFUSED['metaflow'][name]}.")
        raise StepDecoratorError(
            f"--with {spec!r}: unknown decorator '{name}'.{did_you_mean(name, known)} "
            f"Known: {', '.join(known)}.")
    try:
        cls = get_step_decorator(name)
    except StepDecoratorError as exc:
        raise StepDecoratorError(f"--with {spec!r}: {exc}") from None
    kwargs: dict[str, Any] = {}
    for part in _SPLIT.split(args) if args.strip() else []:
        key, eq, raw = part.partition("=")
        if not eq or not key.strip():
            raise StepDecoratorError(
                f"--with {spec!r}: expected key=value after ':', got {part!r}.")
        kwargs[key.strip()] = _literal(raw.strip())
    try:
        return cls(**kwargs)
    except StepDecoratorError as exc:
        raise StepDecoratorError(f"--with {spec!r}: {exc}") from None


def _literal(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def str_mapping(value: Any, *, what: str) -> dict[str, str]:
    """A mapping of names to text, for options such as ``@environment(vars=...)``."""
    if not isinstance(value, Mapping):
        raise StepDecoratorError(
            f"{what}={value!r} must be a dict of names to values, e.g. {{'MODE': 'fast'}}.")
    bad = [k for k in value if not isinstance(k, str) or not k or "=" in k or "\0" in k]
    if bad:
        raise StepDecoratorError(f"{what}: {bad[0]!r} is not an environment variable name.")
    return {k: v if isinstance(v, str) else json.dumps(v) if isinstance(v, (dict, list))
            else str(v) for k, v in value.items()}


def iter_hooks(decorators: Sequence[StepDecorator], hook: str) -> Iterator[Any]:
    """The bound ``hook`` of each decorator that defines it, in the order written."""
    for decorator in decorators:
        if type(decorator).overrides(hook):
            yield getattr(decorator, hook)
