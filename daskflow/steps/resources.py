"""``@resources``: the size of the workers a step runs on, and on which backend.

Metaflow's meaning: ``cpu`` cores and ``memory`` per worker (a bare number is
megabytes, as in Metaflow; a string is read as Dask reads sizes: "16GiB",
"500MB"), ``gpu`` GPUs per worker. daskflow adds ``workers`` (how many such
workers the step's cluster has), ``disk`` (per worker, like memory) and
``backend`` (which cluster backend; None: the run's default) and ``max_lifetime``
(the cluster's scheduler closes it after this long, "2h"; None:
``daskflow.cluster.max-lifetime``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..clusters.base import ResourceRequest
from .base import StepDecorator, StepDecoratorError, StepPlan

#: A bare number for memory/disk counts megabytes of this size: Metaflow's MB, which
#: AWS Batch and SLURM (``--mem=4096``) both read as 2**20 bytes.
MEGABYTE = 2**20
#: Below this a size is almost surely a unit mistake ("500B", "16").
SMALLEST = 16 * MEGABYTE


@dataclass
class ResourcesOptions:
    """What ``@resources`` accepts; see :class:`Resources`."""

    cpu: float | int | str = 1
    memory: int | float | str | None = None
    gpu: int | str = 0
    disk: int | float | str | None = None
    workers: int | str = 1
    backend: str | None = None
    max_lifetime: str | int | float | None = None   # "2h", seconds; None: config's


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
    """

    name = "resources"
    Options = ResourcesOptions

    def validate(self) -> None:
        o = self.options
        self.cpu = _number(o.cpu, what="cpu", whole=False, above=0)
        self.gpu = _number(o.gpu, what="gpu", whole=True, at_least=0)
        self.workers = _number(o.workers, what="workers", whole=True, at_least=1)
        self.memory = parse_size(o.memory, what="memory")
        self.disk = parse_size(o.disk, what="disk")
        self.max_lifetime = parse_lifetime(o.max_lifetime)
        if o.backend is not None and (not isinstance(o.backend, str) or not o.backend):
            raise StepDecoratorError(
                f"@resources(backend={o.backend!r}) must be a backend name such as 'local' or "
                f"'slurm', or a dotted path to a Dask cluster class.")

    def request(self) -> ResourceRequest:
        """The :class:`~daskflow.clusters.ResourceRequest` this step's cluster must meet."""
        cpu = int(self.cpu) if float(self.cpu).is_integer() else self.cpu
        return ResourceRequest(cpu=cpu, memory=self.memory, gpu=self.gpu, disk=self.disk,
                               workers=self.workers, max_lifetime=self.max_lifetime)

    def plan(self, *, step: StepPlan) -> None:
        step.request = self.request()
        step.backend = self.backend

    @property
    def backend(self) -> str | None:
        """The backend the step asked for; None: the run's default."""
        return self.options.backend

    def describe(self) -> str:
        """``slurm: 2 workers x (4 cores, 16 GiB)``, for ``show``."""
        return f"{self.backend or 'default backend'}: {self.request().describe()}"


resources = Resources.decorator()
