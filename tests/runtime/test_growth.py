"""Memory that grows on retry, in-process: ``@resources(max_memory=...)`` as the steps see
it, and where a task runs again after each kind of failure (``runtime/growth.py``)."""

from __future__ import annotations

import pytest

from daskflow import causes, resources
from daskflow.clusters import ResourceRequest
from daskflow.runtime.attempts import TaskResources
from daskflow.runtime.growth import GrowthRefused, checked, grown_memory, regrown
from daskflow.runtime.plan import Placement, plan_steps
from daskflow.steps import StepDecoratorError, StepPlan, parse_decospec

pytestmark = pytest.mark.fast

MiB, GiB = 2**20, 2**30
OWN = Placement("local", ResourceRequest(memory=600 * MiB, max_memory=2 * GiB))
RAN = TaskResources(cpu=1, memory=600 * MiB, gpu=0)


def step_plan(flow_graph, **kwargs) -> StepPlan:
    graph = flow_graph("foreach.py")
    return StepPlan("work", graph["work"], graph, **kwargs)


def test_memory_doubles_up_to_its_bound():
    assert grown_memory(600 * MiB, 2 * GiB) == 1200 * MiB
    assert grown_memory(1200 * MiB, 2 * GiB) == 2 * GiB      # capped: never past max_memory
    assert grown_memory(2 * GiB, 2 * GiB) is None             # there already: no growth


def test_out_of_memory_moves_to_a_cluster_of_twice_the_size(flow_graph):
    plan = step_plan(flow_graph, retries=2, may_grow=True)
    moved = regrown(plan, OWN, causes.OUT_OF_MEMORY, attempts=1, ran_with=RAN,
                    default_backend="local")
    assert moved == Placement("local", ResourceRequest(memory=1200 * MiB, max_memory=2 * GiB))
    again = regrown(plan, moved, causes.OUT_OF_MEMORY, attempts=2, ran_with=None,
                    default_backend="local")
    assert again.request.memory == 2 * GiB


def test_other_causes_spent_attempts_and_the_bound_keep_it_where_it_was(flow_graph):
    plan = step_plan(flow_graph, retries=2, may_grow=True)
    for cause in (causes.WORKER_LOST, causes.PREEMPTED, causes.EXCEPTION, causes.TIMEOUT):
        assert regrown(plan, OWN, cause, 1, RAN, "local") is None
    assert regrown(plan, OWN, causes.OUT_OF_MEMORY, attempts=3, ran_with=RAN,
                   default_backend="local") is None         # @retry(times=2): none left
    at_cap = Placement("local", ResourceRequest(memory=2 * GiB, max_memory=2 * GiB))
    assert regrown(plan, at_cap, causes.OUT_OF_MEMORY, 1, RAN, "local") is None
    no_bound = Placement("local", ResourceRequest(memory=600 * MiB))
    assert regrown(plan, no_bound, causes.OUT_OF_MEMORY, 1, RAN, "local") is None


def test_from_the_default_cluster_out_of_memory_moves_to_a_step_cluster(flow_graph):
    plan = step_plan(flow_graph, retries=1, may_grow=True, max_memory=16 * GiB)
    ran = TaskResources(cpu=1, memory=5 * GiB, gpu=0)  # the default cluster's worker
    moved = regrown(plan, None, causes.OUT_OF_MEMORY, 1, ran, default_backend="slurm")
    assert moved == Placement("slurm", ResourceRequest(cpu=1, memory=10 * GiB,
                                                       max_memory=16 * GiB))
    assert regrown(step_plan(flow_graph, retries=1), None, causes.OUT_OF_MEMORY, 1, ran,
                   "local") is None  # without max_memory nothing changes


def test_a_size_the_backend_cannot_give_is_refused_naming_step_split_and_size():
    huge = Placement("local", ResourceRequest(memory=2**50, max_memory=2**50))
    with pytest.raises(GrowthRefused) as info:
        checked(huge, "Step 'work', split 3")
    said = str(info.value)
    assert said.startswith("Step 'work', split 3 ran out of memory, and its retry would "
                           "need 1 core, 1024 TiB on the local backend, which refuses it: ")
    assert "\n" not in said


def test_max_memory_as_resources_gives_it(flow_graph):
    assert resources(memory="600MiB", max_memory="2GiB").request() == \
        ResourceRequest(memory=600 * MiB, max_memory=2 * GiB)
    assert resources(memory=lambda item: "1GiB", max_memory="4GiB").request("x").max_memory \
        == 4 * GiB
    by_split = resources(memory="1GiB", max_memory=lambda item: f"{item}GiB")
    assert by_split.request(8).max_memory == 8 * GiB
    assert parse_decospec("resources:max_memory=2GiB").request().max_memory == 2 * GiB
    with pytest.raises(StepDecoratorError, match=r"max_memory='1GiB'\) is less than its "
                                                 r"memory='2GiB'"):
        resources(memory="2GiB", max_memory="1GiB")


def test_max_memory_alone_leaves_the_step_on_the_default_cluster(flow_graph):
    from tests.flows.foreach import ForeachFlow
    graph = flow_graph("foreach.py")
    alone = plan_steps(ForeachFlow, graph, [parse_decospec("resources:max_memory=8GiB")])
    assert alone["work"].request is None and alone["work"].max_memory == 8 * GiB
    assert alone["work"].may_grow
    sized = plan_steps(ForeachFlow, graph,
                       [parse_decospec("resources:memory=1GiB,max_memory=8GiB")])
    assert sized["work"].request.max_memory == 8 * GiB and sized["work"].may_grow
    plain = plan_steps(ForeachFlow, graph, [])
    assert not plain["work"].may_grow and plain["work"].max_memory is None


def test_a_bound_below_a_size_per_split_is_refused_when_the_split_is_sized():
    per_split = resources(memory=lambda item: item, max_memory="1GiB")
    with pytest.raises(StepDecoratorError, match="max_memory"):
        per_split.request("4GiB")


def test_what_follows_a_workers_death(flow_graph):
    from daskflow.runtime.attempts import EndedAttempt
    from daskflow.runtime.context import TaskSpec
    from daskflow.runtime.growth import GiveUp, MoveTo, RunAgain, Sent, after_death

    spec = TaskSpec("work", "4")
    on_own = Sent(spec, [], OWN)
    first = EndedAttempt(0, 1, RAN, {"type": "WorkerDied", "message": "..."},
                         causes.WORKER_LOST)
    retried = step_plan(flow_graph, retries=2, may_grow=True)
    once = step_plan(flow_graph, retries=0)

    def then(plan, sent, ended, cause=causes.WORKER_LOST, comes_back=True):
        return after_death(plan, sent, ended, cause, comes_back, default_backend="local")

    assert then(once, on_own, first) == GiveUp()              # no attempt left, no @catch
    assert then(retried, None, first) == RunAgain()           # on the default cluster
    assert then(retried, on_own, first) == RunAgain()         # its nanny starts a new worker
    assert then(retried, on_own, None, comes_back=False) == MoveTo(
        Placement("local", OWN.request, fresh=1))             # its job/pod/machine is gone
    grown = then(retried, on_own, first, cause=causes.OUT_OF_MEMORY)
    assert grown == MoveTo(Placement("local", ResourceRequest(memory=1200 * MiB,
                                                              max_memory=2 * GiB)))
