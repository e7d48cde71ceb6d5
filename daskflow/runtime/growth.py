"""Where a task runs again after its worker died; memory that grows on retry.

With ``@resources(memory=..., max_memory=...)`` and ``@retry``, an attempt that failed
with ``out-of-memory`` runs again with twice the memory of the failed attempt, at most
``max_memory``, on a cluster of that size: a step cluster of its own (a split sized per
split moves alone; the others stay where they are).  A step with only ``max_memory``
runs on the run's default cluster until an attempt runs out of memory there, and then
moves to a step cluster.  Other causes run again where they were; so does an attempt
already at ``max_memory``, or one with no attempts left (it goes to give up, or to
``@catch``, where it was).  Without ``max_memory`` nothing moves, except off a step
cluster whose worker died with its job, pod or machine (the nanny said nothing): none
comes back there, so the task goes to a fresh cluster of the same size.

:func:`after_death` decides, touching nothing; the driver carries it out.

>>> grown_memory(600 * 2**20, 2 * 2**30) == 1200 * 2**20
True
>>> grown_memory(1500 * 2**20, 2 * 2**30) == 2 * 2**30, grown_memory(2 * 2**30, 2 * 2**30)
(True, None)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .. import causes
from ..clusters import ResourceRequest, ResourceRequestError, get_backend
from ..exceptions import DaskflowException
from ..steps import StepPlan, iter_hooks
from .attempts import TaskResources
from .plan import Placement


@dataclass(frozen=True)
class RunAgain:
    """Run it again where it was, with its key (Dask reruns what it waits for too)."""


@dataclass(frozen=True)
class MoveTo:
    """Run it on ``placement``'s cluster: more memory, or a fresh one of the same size."""

    placement: Placement


@dataclass(frozen=True)
class GiveUp:
    """No attempt left and no ``@catch`` to hand the failure to: the run fails with it."""


def after_death(plan: StepPlan, sent: Sent | None, ended: Any, cause: str, comes_back: bool,
                default_backend: str) -> RunAgain | MoveTo | GiveUp:
    """What follows the death of a task's worker: ``ended`` is the attempt recorded dead
    (an :class:`~daskflow.runtime.attempts.EndedAttempt`, None when none had started),
    ``sent`` how it was sent (None: to the run's default cluster, where it cannot move
    unless it may grow), ``comes_back`` whether a worker comes back in its place (its
    nanny outlived it)."""
    if ended is not None and ended.attempts > plan.retries and not catches(plan):
        return GiveUp()
    if sent is None:
        return RunAgain()
    placement = None
    if ended is not None:
        placement = regrown(plan, sent.placement, cause, ended.attempts, ended.resources,
                            default_backend)
    if placement is None and sent.placement is not None and not comes_back:
        placement = replace(sent.placement, fresh=sent.placement.fresh + 1)
    return MoveTo(placement) if placement is not None else RunAgain()


class GrowthRefused(ResourceRequestError):
    """The memory a retry after running out of memory needs is more than the backend gives."""

    headline = "Retry with more memory refused"


def grown_memory(failed: int, limit: int) -> int | None:
    """The memory of the attempt after one with ``failed`` bytes ran out: twice as much, at
    most ``limit``; None when it had ``limit`` already."""
    if failed >= limit:
        return None
    return min(2 * failed, limit)


def regrown(plan: StepPlan, placement: Placement | None, cause: str, attempts: int,
            ran_with: TaskResources | None, default_backend: str) -> Placement | None:
    """Where the task runs again after its attempt ended with ``cause`` (``attempts``: how
    many it has had, that one included), having run with ``ran_with`` on ``placement``
    (None: the run's default cluster): a new placement with more memory, or None for
    "where it was"."""
    limit = placement.request.max_memory if placement is not None else plan.max_memory
    if cause != causes.OUT_OF_MEMORY or not limit or attempts > plan.retries:
        return None
    failed = (placement.request.memory if placement is not None else None) or \
        (ran_with.memory if ran_with is not None else None)
    if not failed:
        return None
    memory = grown_memory(failed, limit)
    if memory is None:
        return None
    if placement is None:  # from the run's default cluster to a step cluster of its own
        cpu = ran_with.cpu if ran_with is not None else 1
        return Placement(plan.backend or default_backend,
                         ResourceRequest(cpu=cpu, memory=memory, max_memory=limit))
    return Placement(placement.backend, replace(placement.request, memory=memory))


def catches(plan: StepPlan) -> bool:
    """Whether a failure of ``plan``'s step may be handled on a worker (``@catch``): a task
    with no attempt left still runs once more there, to give up through it."""
    return any(True for _ in iter_hooks(plan.decorators, "task_exception"))


def checked(placement: Placement, where: str) -> Placement:
    """``placement`` once its backend said it can give it; :class:`GrowthRefused` naming
    ``where`` (the step and split) and the size, else."""
    try:
        get_backend(placement.backend).check(placement.request)
    except DaskflowException as exc:
        raise GrowthRefused(
            f"{where} ran out of memory, and its retry would need "
            f"{placement.request.describe_worker()} on the {placement.backend} backend, which "
            f"refuses it: {exc}") from None
    return placement


@dataclass(frozen=True)
class Sent:
    """What it takes to send a task again elsewhere: its spec, its parents and where it
    ran (None: the run's default cluster)."""

    spec: Any
    parents: list[Any]
    placement: Placement | None


class Movable:
    """The tasks in flight that may move to more memory, by Dask key."""

    def __init__(self) -> None:
        self.sent: dict[str, Sent] = {}

    def add(self, key: str, spec: Any, parents: list[Any], placement: Placement | None) -> None:
        self.sent[key] = Sent(spec, list(parents), placement)

    def get(self, key: str) -> Sent | None:
        return self.sent.get(key)

    def done(self, key: str) -> None:
        self.sent.pop(key, None)
