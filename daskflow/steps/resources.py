"""``@resources``: the size of the workers a step runs on, and on which backend.

Metaflow's meaning: ``cpu`` cores and ``memory`` per worker (a bare number is
megabytes, as in Metaflow; a string is read as Dask reads sizes: "16GiB",
"500MB"), ``gpu`` GPUs per worker. daskflow adds ``workers`` (how many such
workers the step's cluster has), ``disk`` (per worker, like memory),
``backend`` (which cluster backend; None: the run's default), ``max_lifetime``
(the cluster's scheduler closes it after this long, "2h"; None:
``daskflow.cluster.max-lifetime``) and ``max_memory``: with ``@retry``, an attempt
that runs out of memory is retried with twice the memory of the failed attempt, at
most this much, on a cluster of that size.  ``max_memory`` alone leaves the step on
the run's default cluster until an attempt runs out of memory there.

Resources per foreach split: in the step that follows a ``foreach``, any of
``cpu``, ``memory``, ``gpu``, ``disk`` and ``workers`` may be a function of the
split's input (what ``self.input`` is in that split), and ``size`` names a size
class of the config (``daskflow.resources.sizes``), given as text or as such a
function.  The runtime evaluates them per split before placing it: splits of
the same size share one cluster of that size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import config
from ..clusters.request import ResourceRequest, format_bytes
from ..exceptions import FlowDefinitionError, did_you_mean
from ..graph import FOREACH
from .base import StepDecorator, StepDecoratorError, StepPlan

#: A bare number for memory/disk counts megabytes of this size: Metaflow's MB, which
#: AWS Batch and SLURM (``--mem=4096``) both read as 2**20 bytes.
MEGABYTE = 2**20
#: Below this a size is almost surely a unit mistake ("500B", "16").
SMALLEST = 16 * MEGABYTE


PerSplit = Callable[[Any], Any]  # a function of a foreach split's input


@dataclass
class ResourcesOptions:
    """What ``@resources`` accepts; see :class:`Resources`."""

    cpu: float | int | str | PerSplit = 1
    memory: int | float | str | PerSplit | None = None
    gpu: int | str | PerSplit = 0
    disk: int | float | str | PerSplit | None = None
    workers: int | str | PerSplit = 1
    backend: str | None = None
    max_lifetime: str | int | float | None = None   # "2h", seconds; None: config's
    size: str | PerSplit | None = None
    max_memory: int | float | str | PerSplit | None = None


#: The options that size a worker: each may be a function of a foreach split's input,
#: and a size class (``daskflow.resources.sizes``) sets any of them.
SIZING = ("cpu", "memory", "gpu", "disk", "workers", "max_memory")
_NO_INPUT = object()
#: distinct values a SplitRequest remembers the request of
MEMO_SIZE = 4096


def parse_size(value: Any, *, what: str) -> int | None:
    """Bytes from Metaflow's megabytes (a number, or a string of digits) or a Dask size string.

    >>> parse_size(4096, what="memory") == 4 * 2**30
    True
    >>> parse_size("16GiB", what="memory") == 16 * 2**30
    True
    >>> parse_size("500MB", what="memory")
    500000000
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise StepDecoratorError(
            f"@resources({what}={value!r}): a size must be megabytes (4096) or a string "
            f"such as '16GiB', not a bool.")
    if isinstance(value, (int, float)):
        size = value * MEGABYTE
    elif isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
        size = float(value) * MEGABYTE  # "--with resources:memory=4096" arrives as text
    elif isinstance(value, str):
        from dask.utils import parse_bytes
        try:
            size = parse_bytes(value)
        except ValueError as exc:
            raise StepDecoratorError(
                f"@resources({what}={value!r}) is not a size: use megabytes as a number "
                f"(4096) or a string such as '16GiB', '500MB', '1.5TB'.") from exc
    else:
        raise StepDecoratorError(
            f"@resources({what}={value!r}): expected megabytes (4096) or a string such as "
            f"'16GiB', not {type(value).__name__}.")
    if not math.isfinite(size) or size <= 0:
        raise StepDecoratorError(f"@resources({what}={value!r}) must be more than zero.")
    if size < SMALLEST:
        raise StepDecoratorError(
            f"@resources({what}={value!r}) is only {int(size)} bytes, surely a unit mistake: "
            f"a bare number means megabytes (4096 = 4 GiB); strings take a unit ('4GiB').")
    return math.ceil(size)


def _number(value: Any, *, what: str, whole: bool, above: float | None = None,
            at_least: float | None = None) -> Any:
    given = value
    if isinstance(value, str):  # "--with resources:cpu=4" arrives as text
        try:
            value = float(value.strip())
        except ValueError:
            value = None
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value)
          and (above is None or value > above) and (at_least is None or value >= at_least)
          and (not whole or value == int(value)))
    if not ok:
        kind = "a whole number" if whole else "a number"
        bound = f"above {above:g}" if above is not None else f"of at least {at_least:g}"
        example = {"cpu": ", e.g. cpu=0.5 or cpu=4", "gpu": ", e.g. gpu=1",
                   "workers": ", e.g. workers=4"}[what]
        raise StepDecoratorError(f"@resources({what}={given!r}) must be {kind} {bound}{example}.")
    return int(value) if whole else value


def parse_option(name: str, value: Any) -> Any:
    """One sizing option checked and normalized: a number of cores, bytes, GPUs, workers.

    >>> parse_option("memory", "2GiB") == 2 * 2**30, parse_option("gpu", "1")
    (True, 1)
    """
    if name in ("memory", "disk", "max_memory"):
        return parse_size(value, what=name)
    if name == "cpu":
        return _number(value, what="cpu", whole=False, above=0)
    return _number(value, what=name, whole=True, at_least=0 if name == "gpu" else 1)


def size_class(name: Any, sizes: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The checked options of size class ``name`` from ``sizes`` (by default the
    config's ``daskflow.resources.sizes``).

    >>> import dask.config
    >>> with dask.config.set({"daskflow.resources.sizes": {"small": {"memory": "2GiB"}}}):
    ...     size_class("small") == {"memory": 2 * 2**30}
    True
    """
    if sizes is None:
        sizes = config.get("resources.sizes") or {}
    if not isinstance(name, str) or name not in sizes:
        known = ", ".join(sorted(sizes)) or "none is defined"
        hint = did_you_mean(name, sizes) if isinstance(name, str) else ""
        raise StepDecoratorError(
            f"@resources(size={name!r}): no such size class in daskflow.resources.sizes "
            f"({known}).{hint} Define it in the Dask config, e.g. daskflow: {{resources: "
            f"{{sizes: {{{name}: {{memory: 8GiB, cpu: 2}}}}}}}}.")
    options = sizes[name] or {}
    where = f"daskflow.resources.sizes.{name}"
    if not isinstance(options, Mapping):
        raise StepDecoratorError(
            f"{where} is {options!r}: it must map options to values, e.g. "
            f"{{memory: 8GiB, cpu: 2}}.")
    unknown = [key for key in options if key not in SIZING]
    if unknown:
        raise StepDecoratorError(
            f"{where} has an unknown option {unknown[0]!r}.{did_you_mean(unknown[0], SIZING)}"
            f" Allowed: {', '.join(SIZING)}.")
    try:
        return {key: parse_option(key, value) for key, value in options.items()}
    except StepDecoratorError as exc:
        raise StepDecoratorError(f"{where}: {exc}") from None


def _function_name(func: Callable) -> str:
    return getattr(func, "__name__", None) or type(func).__name__


def parse_lifetime(value: Any) -> float | None:
    """Seconds from ``"2h"``, ``"90 minutes"`` or a number of seconds; None stays None.

    >>> parse_lifetime("2h"), parse_lifetime(600), parse_lifetime(None)
    (7200.0, 600.0, None)
    """
    if value is None:
        return None
    from dask.utils import parse_timedelta
    try:
        seconds = float(parse_timedelta(value, default="s"))
    except (ValueError, KeyError, TypeError, AttributeError):
        seconds = -1.0
    if isinstance(value, bool) or not 0 < seconds < math.inf:
        raise StepDecoratorError(
            f"@resources(max_lifetime={value!r}) is not a duration: give one such as '2h', "
            f"'90 minutes' or a number of seconds (more than zero).")
    return seconds


class Resources(StepDecorator):
    """Run the step on its own cluster of ``workers`` workers, each this big.

    >>> @resources(cpu=4, memory="16GiB", gpu=1)
    ... def train(self): ...
    >>> train.decorators[0].request()
    ResourceRequest(cpu=4, memory=17179869184, gpu=1, disk=None, workers=1)
    >>> resources(memory=4096).request().memory == 4 * 2**30   # megabytes, as Metaflow
    True

    Per foreach split, an option may be a function of the split's input:

    >>> sized = resources(memory=lambda item: "8GiB" if item["big"] else "2GiB")
    >>> sized.request({"big": True}).memory == 8 * 2**30
    True
    """

    name = "resources"
    Options = ResourcesOptions

    def __init__(self, **kwargs: Any) -> None:
        # what was written wins over the size class; the rest of the class fills in
        self.explicit = frozenset(kwargs) & set(SIZING)
        super().__init__(**kwargs)

    def validate(self) -> None:
        o = self.options
        #: the options that are functions of a foreach split's input
        self.per_split = tuple(name for name in (*SIZING, "size")
                               if callable(getattr(o, name)))
        #: the other sizing options, checked now (those per split: their defaults)
        self.fixed = {name: parse_option(name, getattr(
            ResourcesOptions if name in self.per_split else o, name)) for name in SIZING}
        if o.size is not None and not callable(o.size) and (
                not isinstance(o.size, str) or not o.size):
            raise StepDecoratorError(
                f"@resources(size={o.size!r}) must name a size class of "
                f"daskflow.resources.sizes, or be a function of the split's input that "
                f"returns one.")
        memory, limit = self.fixed["memory"], self.fixed["max_memory"]
        if memory is not None and limit is not None and limit < memory:
            raise StepDecoratorError(
                f"@resources(max_memory={o.max_memory!r}) is less than its memory="
                f"{o.memory!r}: max_memory bounds how far memory grows on retries, so it "
                f"must be at least memory.")
        self.max_lifetime = parse_lifetime(o.max_lifetime)
        if o.backend is not None and (not isinstance(o.backend, str) or not o.backend):
            raise StepDecoratorError(
                f"@resources(backend={o.backend!r}) must be a backend name such as 'local' or "
                f"'slurm', or a dotted path to a Dask cluster class.")

    def request(self, split_input: Any = _NO_INPUT) -> ResourceRequest:
        """The :class:`~daskflow.clusters.ResourceRequest` this step's cluster must meet.

        ``split_input`` is a foreach split's input, for options given as functions of
        it; without it those options keep their defaults (the step's request before its
        splits are known).  A function that raises, or returns a bad value, raises
        :class:`StepDecoratorError`.
        """
        given = {} if split_input is _NO_INPUT else self.split_values(split_input)
        return self.request_of(given)

    def split_values(self, split_input: Any) -> dict[str, Any]:
        """What the functions return for one split's input, by option name, unchecked."""
        return {name: self._call(name, split_input) for name in self.per_split}

    def request_of(self, given: dict[str, Any],
                   sizes: Mapping[str, Any] | None = None) -> ResourceRequest:
        """The request from the fixed options, the size class (of ``sizes``, by default
        the config's) and ``given`` values."""
        values = dict(self.fixed)
        size = given.get("size") if callable(self.options.size) else self.options.size
        if size is not None:
            values.update({name: value for name, value in size_class(size, sizes).items()
                           if name not in self.explicit})
        for name, value in given.items():
            if name != "size":
                values[name] = parse_option(name, value)
        cpu = values["cpu"]
        cpu = int(cpu) if float(cpu).is_integer() else cpu
        memory, limit = values["memory"], values["max_memory"]
        if limit is not None and memory is not None and limit < memory:
            raise StepDecoratorError(
                f"@resources(max_memory={self.options.max_memory!r}) is less than its "
                f"memory={self.options.memory!r}: max_memory bounds how far memory grows on "
                f"retries, so it must be at least memory.")
        return ResourceRequest(cpu=cpu, memory=memory, gpu=values["gpu"],
                               disk=values["disk"], workers=values["workers"],
                               max_lifetime=self.max_lifetime, max_memory=limit)

    def _call(self, name: str, split_input: Any) -> Any:
        func = getattr(self.options, name)
        try:
            return func(split_input)
        except Exception as exc:  # noqa: BLE001  the user's function: said in one line
            raise StepDecoratorError(
                f"@resources({name}={_function_name(func)}) raised "
                f"{type(exc).__name__}: {exc}") from exc

    @property
    def only_max_memory(self) -> bool:
        """``@resources(max_memory=...)`` and no size: the step keeps the run's default
        cluster until an attempt runs out of memory there."""
        return self.explicit == {"max_memory"} and self.options.size is None \
            and not self.per_split

    def plan(self, *, step: StepPlan) -> None:
        where = {"step": step.name, "file": step.graph.file, "lineno": step.node.lineno}
        try:
            request = self.request()  # a size class missing from the config fails here
        except StepDecoratorError as exc:
            raise FlowDefinitionError(str(exc), **where) from None
        step.backend = self.backend
        step.max_memory = request.max_memory
        step.may_grow = request.max_memory is not None or "max_memory" in self.per_split
        if self.only_max_memory:
            return
        step.request = request
        if not self.per_split:
            return
        after_foreach = any(step.graph[p].transition == FOREACH and not step.graph[p].parallel
                            for p in step.node.in_funcs)
        if not after_foreach:
            first = self.per_split[0]
            func = _function_name(getattr(self.options, first))
            raise FlowDefinitionError(
                f"@resources({first}={func}) is a function of a foreach split's input, but "
                f"step '{step.name}' does not follow a foreach. Give a value, or put it on "
                f"the step right after a self.next(..., foreach=...).", **where)
        # the size classes as the driver sees them: the splits are sized on a worker,
        # which may not have this machine's Dask config
        sizes = (config.get("resources.sizes") or {}) if self.options.size is not None else {}
        step.split_request = SplitRequest(self, dict(sizes))

    @property
    def backend(self) -> str | None:
        """The backend the step asked for; None: the run's default."""
        return self.options.backend

    def describe(self) -> str:
        """``slurm: 2 workers x (4 cores, 16 GiB)``, for ``show``."""
        if self.per_split:
            return f"{self.backend or 'default backend'}: {SplitRequest(self).describe()}"
        request = self.request()
        grows = f", memory up to {format_bytes(request.max_memory)} on retries" \
            if request.max_memory else ""
        if self.only_max_memory:
            return f"the run's default cluster{grows}"
        return f"{self.backend or 'default backend'}: {request.describe()}{grows}"


@dataclass(frozen=True)
class SplitRequest:
    """A foreach step's request as a function of each split's input (``StepPlan.split_request``).

    >>> per_split = SplitRequest(resources(memory=lambda item: item["memory"]))
    >>> per_split({"memory": "2GiB"}).describe(), per_split.describe()
    ('1 worker x (1 core, 2 GiB)', "per foreach split: memory from each split's input")
    """

    decorator: Resources
    sizes: Mapping[str, Any] | None = None   # the size classes; None: the config's
    # requests by the functions' values: many splits share a few sizes, and checking a
    # value costs more than most functions do
    memo: dict[Any, ResourceRequest] = field(default_factory=dict, compare=False,
                                             repr=False)

    def __call__(self, split_input: Any) -> ResourceRequest:
        given = self.decorator.split_values(split_input)
        key = tuple((type(value), value) for value in given.values())  # 1 and True differ
        try:
            return self.memo[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable value (a list...): checked every time
            return self.decorator.request_of(given, self.sizes)
        if len(self.memo) >= MEMO_SIZE:
            self.memo.clear()
        request = self.memo[key] = self.decorator.request_of(given, self.sizes)
        return request

    def describe(self) -> str:
        names = ", ".join(self.decorator.per_split)
        return f"per foreach split: {names} from each split's input"


resources = Resources.decorator()
