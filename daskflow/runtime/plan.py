"""What the run does for each step, from the step's decorators and ``--with``.

Every decorator's ``plan`` hook runs here, on the driver, before anything is
stored; the runtime then reads only the resulting :class:`StepPlan` (own
cluster, environment, attempts, time limit) and never a decorator by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from .. import config
from ..clusters import ResourceRequest, get_backend
from ..exceptions import DaskflowException
from ..graph import FOREACH, FlowGraph
from ..secrets import SecretError, resolve
from ..steps import StepDecorator, StepPlan, decorators_for, iter_hooks, parse_decospec


@dataclass(frozen=True)
class Placement:
    """A step's own cluster: which backend, and the size (and environment) of its workers.

    ``per_split`` says how a foreach step's size comes from each split's input ("":
    one size for every split); such a step's splits get :meth:`for_split` placements.
    ``fresh`` tells apart a cluster of the same size started again (for tasks whose
    workers died with their job, pod or machine) from the one that lost them.
    """

    backend: str
    request: ResourceRequest
    per_split: str = ""
    fresh: int = 0   # > 0: a cluster started again for tasks whose workers' machines died

    def describe(self, workers: int | None = None) -> str:
        """What the backend would start, concretely (instance types, pods, jobs...), with
        ``workers`` workers instead of the request's when given."""
        if self.per_split:
            return f"{self.backend}, {self.per_split} (one cluster per size)"
        request = self.request if workers is None else replace(self.request, workers=workers)
        try:
            return get_backend(self.backend).describe(request)
        except DaskflowException as exc:  # e.g. the backend's extra is not installed
            return f"{self.backend}: {request.describe()} ({exc})"

    def for_split(self, request: ResourceRequest) -> Placement:
        """Where a split of this size goes: the step's backend, environment and any other
        setting of its request, with the split's worker size and count."""
        sized = replace(self.request, cpu=request.cpu, memory=request.memory,
                        gpu=request.gpu, disk=request.disk, workers=request.workers)
        return Placement(self.backend, sized)

    def exposure(self) -> dict[str, Any] | None:
        """What the cluster exposes to the network (ports, sources, public IP, TLS); None:
        the backend does not say."""
        try:
            return get_backend(self.backend).exposure(self.request)
        except DaskflowException:
            return None


def split_workers(graph: FlowGraph, step: str, max_workers: int) -> int | None:
    """The most workers the own cluster of ``step`` asks for when ``step`` is a foreach's
    splits: one per split, at most ``max_workers`` (what the driver asks for once the
    splits are known); None for any other step, whose request says how many."""
    node = graph[step]
    if any(graph[p].transition == FOREACH and not graph[p].parallel for p in node.in_funcs):
        return max_workers
    return None


def parse_with(specs: Sequence[str]) -> list[StepDecorator]:
    """``run --with`` specs as decorators, each checked now."""
    return [parse_decospec(spec) for spec in specs]


def plan_steps(flow_cls: type, graph: FlowGraph, extra: Sequence[StepDecorator] = (),
               default_backend: str | None = None) -> dict[str, StepPlan]:
    """Each step's plan: its decorators' ``plan`` hooks applied in the order written."""
    backend = default_backend or config.get("cluster.backend")
    plans = {}
    for node in graph:
        plan = StepPlan(node.name, node, graph,
                        decorators_for(getattr(flow_cls, node.name), extra))
        for hook in iter_hooks(plan.decorators, "plan"):
            hook(step=plan)
        if plan.request is None and any(graph[p].parallel for p in node.in_funcs):
            plan.request = ResourceRequest()  # a gang gets a cluster: one worker per node
        if plan.request is not None and plan.backend is None:
            plan.backend = backend
        plans[node.name] = plan
    return plans


def placement_of(plan: StepPlan) -> Placement | None:
    """The step's own cluster, with its environment given to the workers; None: shared."""
    if plan.request is None:
        return None
    request = plan.request
    if plan.env:
        request = replace(request, env=tuple(sorted(plan.env.items())))
    if plan.secrets:  # references, not values
        request = replace(request, secrets=tuple(sorted(
            (name, str(ref)) for name, ref in plan.secrets.items())))
    per_split = ""
    if plan.split_request is not None:
        describe = getattr(plan.split_request, "describe", None)
        per_split = describe() if describe is not None else "per foreach split"
    return Placement(plan.backend or config.get("cluster.backend"), request, per_split)


def resolve_secrets(plans: dict[str, StepPlan]) -> None:
    """Read each step's secret values here, on the driver, for its tasks to set (a missing
    one fails now); not for a step whose backend passes them by reference itself."""
    for plan in plans.values():
        if not plan.secrets:
            continue
        by_reference = plan.own_cluster and get_backend(plan.backend).secrets_by_reference
        try:
            values = {name: resolve(ref, name=name) for name, ref in plan.secrets.items()
                      if not by_reference or ref.source == "env"}  # a missing one fails now
        except SecretError as exc:
            raise SecretError(f"{plan.where()}: {exc}") from None
        if not by_reference:
            plan.secret_env = values


def drop_local_retry_delays(plans: dict[str, StepPlan], default_backend: str | None,
                            shared_scheduler: bool) -> None:
    """As Metaflow's local runtime: a task on this machine is retried at once; the wait
    of ``@retry(minutes_between_retries=...)`` is for remote schedulers."""
    for plan in plans.values():
        if not plan.retry_delay:
            continue
        if plan.own_cluster:
            here = get_backend(plan.backend).local_machine
        else:
            here = not shared_scheduler and get_backend(default_backend).local_machine
        if here:
            plan.retry_delay = 0.0
