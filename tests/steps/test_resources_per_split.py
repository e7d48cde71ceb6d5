"""@resources per foreach split: options as functions of the split's input, size classes
from the config, one cluster per size, and requests refused before any split runs."""

from __future__ import annotations

from pathlib import Path

import dask.config
import pytest

from daskflow import Flow, Runner
from daskflow.clusters import ResourceRequest
from daskflow.exceptions import FlowDefinitionError
from daskflow.runtime.plan import Placement
from daskflow.runtime.splits import (
    SplitResourcesError,
    SplitSizes,
    placements_for,
    split_groups,
)
from daskflow.steps import StepDecoratorError, parse_decospec, resources
from daskflow.steps.resources import SplitRequest

FLOWS = Path(__file__).parent.parent / "flows"
MiB, GiB = 2**20, 2**30
SIZES = {"small": {"memory": "1GiB", "cpu": 1}, "big": {"memory": "2GiB", "cpu": 2, "gpu": 1}}


# -- the decorator: what each split asks for ---------------------------------------------

@pytest.mark.fast
def test_any_sizing_option_may_be_a_function_of_the_split_input() -> None:
    decorator = resources(memory=lambda item: "8GiB" if item["big"] else "2GiB",
                          cpu=lambda item: item["cpu"], workers=2)
    assert decorator.per_split == ("cpu", "memory")
    assert decorator.request({"big": True, "cpu": 4}) == \
        ResourceRequest(cpu=4, memory=8 * GiB, workers=2)
    assert decorator.request({"big": False, "cpu": "0.5"}) == \
        ResourceRequest(cpu=0.5, memory=2 * GiB, workers=2)
    # before its splits are known the step has the fixed options and the defaults
    assert decorator.request() == ResourceRequest(cpu=1, workers=2)
    assert repr(decorator) == "@resources(cpu=<lambda>, memory=<lambda>, workers=2)"


@pytest.mark.fast
def test_size_classes_come_from_the_config_and_written_options_win() -> None:
    with dask.config.set({"daskflow.resources.sizes": SIZES}):
        assert resources(size="big").request() == \
            ResourceRequest(cpu=2, memory=2 * GiB, gpu=1)
        assert resources(size="big", cpu=1, workers=3).request() == \
            ResourceRequest(cpu=1, memory=2 * GiB, gpu=1, workers=3)
        per_split = resources(size=lambda item: "big" if item > 10 else "small")
        assert per_split.request(11).memory == 2 * GiB
        assert per_split.request(3) == ResourceRequest(cpu=1, memory=1 * GiB)
        # --with takes a size class too
        assert parse_decospec("resources:size=small").request().memory == 1 * GiB


@pytest.mark.fast
@pytest.mark.parametrize("sizes, size, message", [
    (SIZES, "huge", r"size='huge'\): no such size class in daskflow.resources.sizes "
                    r"\(big, small\)\. Define it in the Dask config"),
    (SIZES, "smal", "Did you mean 'small'?"),
    ({}, "small", r"\(none is defined\)"),
    ({"odd": {"memroy": "1GiB"}}, "odd", "daskflow.resources.sizes.odd has an unknown option "
                                         "'memroy'. Did you mean 'memory'"),
    ({"odd": {"memory": "lots"}}, "odd", r"daskflow.resources.sizes.odd: @resources\("
                                         r"memory='lots'\) is not a size"),
    ({"odd": "8GiB"}, "odd", "must map options to values"),
])
def test_bad_size_classes_are_refused_clearly(sizes, size, message) -> None:
    with dask.config.set({"daskflow.resources.sizes": sizes}):
        with pytest.raises(StepDecoratorError, match=message):
            resources(size=size).request()


@pytest.mark.fast
def test_a_function_that_raises_or_returns_a_bad_value_is_said_in_one_line() -> None:
    def memory_of(item):
        return item["memory"]

    decorator = resources(memory=memory_of)
    with pytest.raises(StepDecoratorError,
                       match=r"^@resources\(memory=memory_of\) raised KeyError: 'memory'$"):
        decorator.request({})
    with pytest.raises(StepDecoratorError, match=r"memory='lots'\) is not a size"):
        decorator.request({"memory": "lots"})
    with pytest.raises(StepDecoratorError, match=r"size=3\) must name a size class"):
        resources(size=3)


@pytest.mark.fast
def test_requests_are_remembered_by_value_and_type() -> None:
    per_split = SplitRequest(resources(cpu=lambda item: item))
    assert per_split(1).cpu == 1 and per_split(2).cpu == 2 and per_split(1).cpu == 1
    assert len(per_split.memo) == 2
    with pytest.raises(StepDecoratorError, match=r"cpu=True\) must be a number"):
        per_split(True)  # equal to 1, but no number of cores
    with pytest.raises(StepDecoratorError, match=r"cpu=\[1\]\) must be a number"):
        per_split([1])   # unhashable: checked without the memo


@pytest.mark.fast
def test_size_classes_travel_with_the_plan_to_workers_without_the_config(tmp_path) -> None:
    flow = tmp_path / "sized_flow.py"
    flow.write_text(
        "from daskflow import FlowSpec, resources, step\n\n\n"
        "class SizedFlow(FlowSpec):\n"
        "    @step\n"
        "    def start(self):\n"
        "        self.sizes = ['small', 'big']\n"
        "        self.next(self.work, foreach='sizes')\n\n"
        "    @resources(size=lambda name: name, cpu=1)\n"
        "    @step\n"
        "    def work(self):\n"
        "        self.next(self.join)\n\n"
        "    @step\n"
        "    def join(self, inputs):\n"
        "        self.next(self.end)\n\n"
        "    @step\n"
        "    def end(self):\n"
        "        pass\n\n\n"
        "if __name__ == '__main__':\n"
        "    SizedFlow()\n")
    with dask.config.set({"daskflow.resources.sizes": SIZES}):
        work = Runner(str(flow), quiet=True).plans["work"].split_request
    assert work("big") == ResourceRequest(cpu=1, memory=2 * GiB, gpu=1)  # cpu: as written
    assert work("small") == ResourceRequest(cpu=1, memory=GiB)
    # a fixed class beside a function: the class as the plan saw it, the function wins
    join_like = SplitRequest(resources(size="big", memory=lambda item: "4GiB"), SIZES)
    assert join_like(None) == ResourceRequest(cpu=2, memory=4 * GiB, gpu=1)


@pytest.mark.fast
def test_show_says_the_step_is_sized_per_split(run_in_process) -> None:
    result = run_in_process("split_resources_flow.py", "show")
    assert result.returncode == 0, result.stderr
    assert ("Step work\n    @resources(memory=memory_of)\n    runs on: local, per foreach "
            "split: memory from each split's input (one cluster per size)") in result.stdout


@pytest.mark.fast
def test_a_function_on_a_step_that_does_not_follow_a_foreach_is_refused(tmp_path) -> None:
    flow = tmp_path / "linear_split_flow.py"
    flow.write_text(
        "from daskflow import FlowSpec, resources, step\n\n\n"
        "class LinearSplitFlow(FlowSpec):\n"
        "    @resources(memory=lambda item: '1GiB')\n"
        "    @step\n"
        "    def start(self):\n"
        "        self.next(self.end)\n\n"
        "    @step\n"
        "    def end(self):\n"
        "        pass\n\n\n"
        "if __name__ == '__main__':\n"
        "    LinearSplitFlow()\n")
    with pytest.raises(FlowDefinitionError, match=r"linear_split_flow.py:7: @resources\("
                                                  r"memory=<lambda>\) is a function of a "
                                                  r"foreach split's input, but step 'start' "
                                                  r"does not follow a foreach"):
        Runner(str(flow), quiet=True)


@pytest.mark.fast
def test_with_resources_still_sizes_the_other_steps() -> None:
    with dask.config.set({"daskflow.resources.sizes": SIZES}):
        runner = Runner(str(FLOWS / "split_resources_flow.py"), quiet=True,
                        with_decorators=["resources:size=small"])
    start, work = runner.placements["start"], runner.placements["work"]
    assert start == Placement("local", ResourceRequest(cpu=1, memory=1 * GiB))
    assert work.per_split and runner.plans["work"].split_request is not None  # its own wins
    assert runner.plans["work"].split_request({"memory": "2GiB"}).memory == 2 * GiB


# -- the driver's check of each size, before any split runs ------------------------------

@pytest.mark.fast
def test_each_distinct_size_is_checked_naming_the_first_split_that_asked() -> None:
    small, huge = ResourceRequest(memory=GiB), ResourceRequest(memory=2**40 * 10)
    static = Placement("local", ResourceRequest(env={"MODE": "x"}), "per foreach split")
    sizes = SplitSizes((small,), (0, 0), ((0, "'a'"),))
    [placement] = placements_for("work", sizes, static)
    assert placement == Placement("local", ResourceRequest(memory=GiB, env={"MODE": "x"}))
    refused = SplitSizes((small, huge), (0, 1, 1), ((0, "'a'"), (1, "{'big': True}")))
    with pytest.raises(SplitResourcesError, match=r"^Step 'work', split 1 \(input \{'big': "
                                                  r"True\}\) asks for 1 worker x \(1 core, "
                                                  r"10 TiB\): The local backend cannot give"):
        placements_for("work", refused, static)


@pytest.mark.fast
def test_splits_are_grouped_by_size_and_none_is_left_out() -> None:
    small, big = ResourceRequest(memory=GiB), ResourceRequest(memory=2 * GiB)
    static = Placement("local", ResourceRequest(), "per foreach split")
    frames = [("f", i) for i in range(5)]
    sizes = SplitSizes((small, big), (0, 1, 0, 1, 0), ((0, "0"), (1, "1")))
    assert split_groups("work", frames, sizes, static) == [
        (Placement("local", small), [("f", 0), ("f", 2), ("f", 4)]),
        (Placement("local", big), [("f", 1), ("f", 3)])]
    with pytest.raises(SplitResourcesError, match="5 split sizes came back for 4 splits"):
        split_groups("work", frames[:4], sizes, static)


# -- flows, run as a user does ------------------------------------------------------------

def test_splits_of_two_sizes_run_on_two_clusters_of_those_sizes(run_flow, workdir):
    result = run_flow("split_resources_flow.py", "run", "--max-workers", "1")
    assert result.returncode == 0, result.stderr
    run = Flow("SplitResourcesFlow").latest_run
    # each split ran on a worker of exactly its own size
    assert run["join"].task.data.limits == [GiB, 2 * GiB] * 3
    schedulers = run["join"].task.data.schedulers
    assert len(set(schedulers)) == 2 and schedulers[0::2] == [schedulers[0]] * 3
    clusters = [c for c in run.record["clusters"] if c["step"] == "work"]
    assert sorted(c["description"] for c in clusters) == [
        "local, 1 worker x (1 core, 1 GiB)", "local, 1 worker x (1 core, 2 GiB)"]
    assert len(run.record["clusters"]) == 3  # the default one and these two
    # each closed after its last split
    for cluster in clusters:
        size = GiB if "1 GiB" in cluster["description"] else 2 * GiB
        ends = [t.finished_at for t in run["work"] if t.data.limit == size]
        assert len(ends) == 3 and cluster["stopped_at"] >= max(ends)
    assert "Cluster 'step-1' closed after" in result.stdout
    assert "Cluster 'step-2' closed after" in result.stdout


@pytest.mark.parametrize("mode, message", [
    ("huge", "Resources per split refused: Step 'work', split 3 (input {'i': 3, 'memory': "
             "'10TiB'}) asks for 1 worker x (1 core, 10 TiB): The local backend cannot give 1 "
             "worker(s) of 10 TiB memory"),
    ("raise", "Resources per split refused: Step 'work', split 4 (input {'i': 4}): "
              "@resources(memory=memory_of) raised KeyError: 'memory'"),
])
def test_a_split_request_that_cannot_be_met_is_refused_before_any_split_runs(
        run_flow, workdir, mode, message):
    result = run_flow("split_resources_flow.py", "run", "--max-workers", "1", "--mode", mode)
    assert result.returncode == 1
    assert result.stderr.strip().startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    run = Flow("SplitResourcesFlow").latest_run
    assert not run.successful and run.record["status"] == "failed"
    assert [s.id for s in run] == ["start"]  # no task of 'work' was stored
    assert [c["name"] for c in run.record["clusters"]] == ["default"]


def test_resume_reruns_a_failed_split_on_a_cluster_of_its_size_only(run_flow, workdir):
    failed = run_flow("split_resources_flow.py", "run", "--max-workers", "1",
                      env={"SPLIT_FAILS": "2"})
    assert failed.returncode == 1 and "this split fails" in failed.stderr
    result = run_flow("split_resources_flow.py", "resume", "--max-workers", "1")
    assert result.returncode == 0, result.stderr
    run = Flow("SplitResourcesFlow").latest_run
    assert run.data.limits == [GiB, 2 * GiB] * 3
    rerun = [t for t in run["work"] if t.origin_pathspec is None]
    assert [t.data.limit for t in rerun] == [GiB]
    # the splits of the other size were all cloned: no cluster of that size started
    assert [c["description"] for c in run.record["clusters"] if c["step"] == "work"] == \
        ["local, 1 worker x (1 core, 1 GiB)"]


def test_the_sizing_task_reads_every_item_of_a_stored_foreach_list(tmp_path) -> None:
    from daskflow.datastore import ArtifactStore

    store = ArtifactStore(str(tmp_path), "SomeFlow")
    items = [{"i": i, "memory": "1GiB"} for i in range(3)] + [None, "x" * 10_000]
    store.write_foreach_items("1", "start", "1", 0, items, "items")
    assert list(store.iter_foreach_items("1", "start", "1", 0)) == items
    assert store.read_foreach_item("1", "start", "1", 0, 4) == items[4]
