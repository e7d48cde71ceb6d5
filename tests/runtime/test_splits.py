"""Resources per split, on the driver's side, in-process: a sizing's answer becomes one
group of splits per size, each on its own placement; what cannot be met refuses the run."""

from __future__ import annotations

import pytest

from daskflow.clusters import ResourceRequest
from daskflow.inputs import ForeachFrame
from daskflow.runtime.context import TaskRef
from daskflow.runtime.plan import Placement
from daskflow.runtime.splits import SplitResourcesError, SplitSizes, SplitSizing

pytestmark = pytest.mark.fast

MIB = 2**20
STATIC = Placement("local", ResourceRequest(cpu=1, memory=256 * MIB), per_split="by item")
PARENT = TaskRef("start", "1", 0, {}, (), 5)
FRAMES = [(ForeachFrame("start", "1", 0, i, 5),) for i in range(5)]


def asked(key: str = "sizes-work-1-7") -> SplitSizing:
    sizing = SplitSizing()
    sizing.ask(key, "work", FRAMES, PARENT)
    return sizing


def test_splits_are_grouped_by_size_each_group_on_its_size():
    small = ResourceRequest(cpu=1, memory=128 * MIB)
    big = ResourceRequest(cpu=1, memory=512 * MIB)
    sizes = SplitSizes((small, big), (0, 1, 0, 0, 1), ((0, "1"), (1, "'big'")))
    step, parent, groups = asked().answered("sizes-work-1-7", sizes, None,
                                            {"work": STATIC})
    assert (step, parent) == ("work", PARENT)
    assert [(p.request.memory, [f[-1].index for f in frames]) for p, frames in groups] == \
        [(128 * MIB, [0, 2, 3]), (512 * MIB, [1, 4])]
    assert all(p.backend == "local" and not p.per_split for p, _ in groups)


def test_a_size_no_backend_can_give_refuses_the_run_naming_the_split():
    huge = ResourceRequest(cpu=1, memory=2**50)
    sizes = SplitSizes((huge,), (0,) * 5, ((3, "{'rows': 10**12}"),))
    with pytest.raises(SplitResourcesError, match=r"Step 'work', split 3 \(input "
                                                  r"\{'rows': 10\*\*12\}\) asks for"):
        asked().answered("sizes-work-1-7", sizes, None, {"work": STATIC})


def test_a_sizing_that_failed_or_raised_refuses_the_run():
    with pytest.raises(SplitResourcesError, match="could not be computed: it was cancelled"):
        asked().answered("sizes-work-1-7", None, "it was cancelled", {"work": STATIC})
    refused = SplitSizes(refused="Step 'work', split 2 (input 'x'): bad size")
    with pytest.raises(SplitResourcesError, match="split 2 .* bad size"):
        asked().answered("sizes-work-1-7", refused, None, {"work": STATIC})


def test_sizes_for_fewer_splits_than_there_are_refuse_the_run():
    small = ResourceRequest(cpu=1, memory=128 * MIB)
    sizes = SplitSizes((small,), (0, 0, 0), ((0, "1"),))
    with pytest.raises(SplitResourcesError, match="3 split sizes came back for 5 splits"):
        asked().answered("sizes-work-1-7", sizes, None, {"work": STATIC})
