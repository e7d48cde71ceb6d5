"""@cache's keys and lookups in-process: what a key covers, and the driver's TaskCache on a
store in a temporary folder (no process, no cluster)."""

from __future__ import annotations

from collections import Counter

import pytest

from daskflow import FlowSpec, Parameter, cache, environment, resources, retry, step
from daskflow.datastore import ArtifactStore
from daskflow.inputs import ForeachFrame
from daskflow.runtime.cache import TaskCache
from daskflow.runtime.cache_keys import (
    ItemDigests,
    KeyInputs,
    code_keys,
    environment_fingerprint,
    key_inputs,
    own_artifacts,
    task_key,
)
from daskflow.runtime.context import SplitBatch, TaskRef, TaskSpec
from daskflow.runtime.plan import parse_with, plan_steps

pytestmark = pytest.mark.fast

LIMIT = 10


def helper(x):
    return x * LIMIT


class First(FlowSpec):
    alpha = Parameter("alpha", default=1)
    SCALE = 3

    @step
    def start(self):
        self.items = [1, 2]
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.out = helper(self.input) * self.SCALE
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.out for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        print(self.total)


class EndChanged(First):
    @step
    def end(self):
        print(self.total + 1)


class OwnEnvironment(First):
    @environment(vars={"MODE": "fast"}, secrets=["DB_PASSWORD"])
    @step
    def end(self):
        print(self.total)


def keys(flow: type, *with_: str) -> dict[str, str]:
    graph = flow._flow_graph()
    plans = plan_steps(flow, graph, parse_with(["cache", *with_]))
    return code_keys(flow, graph, plans, None)


def test_every_cached_step_gets_a_code_key_and_only_those():
    assert set(keys(First)) == {"start", "work", "join", "end"}
    graph = First._flow_graph()
    assert code_keys(First, graph, plan_steps(First, graph), None) == {}


def test_changing_one_step_changes_only_its_key():
    before, after = keys(First), keys(EndChanged)
    assert before["end"] != after["end"]
    assert {s: k for s, k in before.items() if s != "end"} == \
        {s: k for s, k in after.items() if s != "end"}


def test_decorators_and_versions_are_in_the_key_and_secret_values_are_not(monkeypatch):
    base = keys(First)
    assert keys(First, "retry")["work"] != base["work"]
    assert keys(First, "cache:version=2")["work"] != base["work"]
    monkeypatch.setenv("DB_PASSWORD", "one")
    own = keys(OwnEnvironment)
    assert own["end"] != base["end"] and own["start"] == base["start"]
    monkeypatch.setenv("DB_PASSWORD", "two")
    assert keys(OwnEnvironment) == own


def test_the_flow_files_helpers_and_constants_a_step_names_are_in_its_key(monkeypatch):
    base = keys(First)
    monkeypatch.setattr(First, "SCALE", 4)
    scaled = keys(First)
    assert scaled["work"] != base["work"] and scaled["end"] == base["end"]
    monkeypatch.setattr(First, "SCALE", 3)
    monkeypatch.setitem(globals(), "LIMIT", 11)   # a plain global helper() names
    assert keys(First)["work"] != base["work"] and keys(First)["end"] == base["end"]


def test_the_versions_of_python_and_the_data_packages_are_in_every_key():
    found = environment_fingerprint()
    for name in ("python=3.", "daskflow=", "dask=", "pandas=", "numpy=", "pyarrow="):
        assert name in found


def test_a_gang_is_never_cached(flow_graph):
    graph = flow_graph("gang_flow.py")
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location(
        "gang_cache_test", Path(__file__).parent.parent / "flows" / "gang_flow.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    flow = module.GangFlow
    plans = plan_steps(flow, graph, parse_with(["cache"]))
    gangs = {n.name for n in graph if any(graph[p].parallel for p in n.in_funcs)}
    assert gangs and not gangs & set(code_keys(flow, graph, plans, None))


# -- task keys ------------------------------------------------------------------------------


def ref(store: ArtifactStore, **values) -> dict:
    return {name: store.put_artifact(value, name) for name, value in values.items()}


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(str(tmp_path / "root"), "First")


def test_a_task_key_moves_with_what_it_read_and_nothing_else(store):
    own = ref(store, x=1, y=2)
    params = ref(store, alpha=0.5)
    inputs = KeyInputs("code", own, params)
    key = task_key(inputs, {"a:x", "p:alpha"})
    assert key == task_key(KeyInputs("code", {**own, "y": own["x"]}, params), {"a:x", "p:alpha"})
    assert key != task_key(KeyInputs("code", {**own, "x": own["y"]}, params), {"a:x", "p:alpha"})
    assert key != task_key(KeyInputs("code", own, ref(store, alpha=0.6)), {"a:x", "p:alpha"})
    assert key != task_key(KeyInputs("other", own, params), {"a:x", "p:alpha"})
    # an artifact it looked for and did not find counts too
    assert task_key(inputs, {"a:z"}) != task_key(KeyInputs("code", ref(store, z=0)), {"a:z"})


def test_a_splits_key_takes_its_item_and_its_place_only_if_read(store):
    frames = (ForeachFrame("start", "1", 0, 3, 8),)
    digests = {3: "aa", 4: "aa", 5: "bb"}
    at = {index: (ForeachFrame("start", "1", 0, index, 8),) for index in digests}

    def inputs(index: int) -> KeyInputs:
        return KeyInputs("code", {}, {}, at[index], lambda f: digests[f.index])

    assert task_key(inputs(3), ()) == task_key(inputs(4), ())       # same item elsewhere
    assert task_key(inputs(3), ()) != task_key(inputs(5), ())
    assert task_key(inputs(3), {"x"}) != task_key(inputs(4), {"x"})  # it read self.index
    assert task_key(KeyInputs("code", {}, {}, frames, lambda f: None), ()) is None


def test_a_joins_key_goes_over_every_input_in_order(store):
    a, b = ref(store, out=1), ref(store, out=2)

    def join(*outs) -> KeyInputs:
        return KeyInputs("code", inputs=lambda: [(o, ()) for o in outs])

    assert task_key(join(a, b), {"j:out"}) != task_key(join(b, a), {"j:out"})
    assert task_key(join(a, b), {"j:out"}) == task_key(join(a, b), {"j:out"})
    assert task_key(join(a, b), {"j:other"}) == task_key(join(b, a), {"j:other"})


def test_what_a_task_made_is_what_it_assigned_or_changed(store):
    start = ref(store, x=1, y=2)
    made = {**start, "z": store.put_artifact(3)}
    assert own_artifacts(start, made, ["x"]) == {"x": start["x"], "z": made["z"]}


# -- the driver's lookups -------------------------------------------------------------------


def run_once(store: ArtifactStore, run: str, values: list, code: str) -> tuple[TaskRef, dict]:
    """What a first run leaves: a foreach step's items (with digests) and, for each split,
    the entry its worker would write, keyed as the worker keys it."""
    store.write_foreach_items(run, "start", "1", 0, values, "items", digests=True)
    parent = TaskRef("start", "1", 0, ref(store, items=values), (), len(values))
    items = ItemDigests(store, run)
    entries = {}
    for index, value in enumerate(values):
        spec = TaskSpec("work", str(2 + index), (ForeachFrame("start", "1", 0, index,
                                                              len(values)),))
        inputs = key_inputs(code, store, run, {}, False, [parent], spec.frames, items)
        made = {"out": store.put_artifact(value * 10, "out")}
        entries[index] = {"key": task_key(inputs, ()), "reads": (), "items":
                          items(spec.frames[0]), "run": run, "task": spec.task_id,
                          "attempt": 0, "own": {"out": made["out"].as_record()},
                          "num_splits": None, "next_step": None}
    store.cache.add("work", code, list(entries.values()))
    return parent, entries


def splits(parent: TaskRef, first: int) -> list[TaskSpec]:
    return [TaskSpec("work", str(first + i), (ForeachFrame("start", "1", 0, i,
                                                           parent.num_splits),))
            for i in range(parent.num_splits)]


def each(parent: TaskRef) -> list[tuple[TaskRef]]:
    """The parents of each split of ``parent``, as the walk hands them (one shared tuple)."""
    return [(parent,)] * (parent.num_splits or 0)


def test_the_driver_takes_the_splits_whose_items_are_unchanged(store):
    code = "ab" * 32
    run_once(store, "1", [1, 2, 3], code)
    # the next run: item 1 changed
    store.write_foreach_items("2", "start", "1", 0, [1, 20, 3], "items", digests=True)
    parent = TaskRef("start", "1", 0, ref(store, items=[1, 20, 3]), (), 3)
    cache = TaskCache(store, First._flow_graph(), "2", {"work": code}, {})
    refs = cache.reuse(splits(parent, 5), each(parent))
    assert [r is not None for r in refs] == [True, False, True]
    assert store.get_artifact(refs[2].artifacts["out"]) == 30
    assert refs[2].artifacts["items"] == parent.artifacts["items"]   # passed on: this run's
    done = store.read_done("2", "work", "7", 0)
    assert done["origin_pathspec"] == "/".join(["First", "1", "work", "4"])
    assert done["parents"] == ["start/1"]
    assert store.read_done("2", "work", "6", 0) is None              # it runs


def test_a_hit_whose_artifacts_are_gone_runs_again_and_cache_from_picks_a_run(store):
    code = "ab" * 32
    _, entries = run_once(store, "1", [1, 2], code)
    store.files.fs.rm(store.blobs.path(entries[0]["own"]["out"][0]))
    store.write_foreach_items("2", "start", "1", 0, [1, 2], "items", digests=True)
    parent = TaskRef("start", "1", 0, ref(store, items=[1, 2]), (), 2)
    refs = TaskCache(store, First._flow_graph(), "2", {"work": code}, {}).reuse(
        splits(parent, 3), each(parent))
    assert [r is not None for r in refs] == [False, True]
    other = TaskCache(store, First._flow_graph(), "2", {"work": code}, {}, from_run="9")
    assert other.reuse(splits(parent, 5), each(parent)) == [None, None]


def test_a_join_after_batches_of_splits_is_looked_up_from_their_records(store):
    code = "cd" * 32
    batch = store.batched("1", "work", ["2", "3"])
    for task, value in (("2", 1), ("3", 2)):
        batch.claim_attempt("1", "work", task, {})
        batch.write_done("1", "work", task, 0, {"attempt": 0, "status": "ok", "artifacts": {
            "out": store.put_artifact(value, "out", inline=True).as_record()}})
    batch.commit()
    parents = [SplitBatch("work", ("2", "3"), (0, 0), 0.1)]
    inputs = key_inputs(code, store, "1", {}, True, parents, (), ItemDigests(store, "1"))
    store.cache.add("join", code, [{
        "key": task_key(inputs, {"j:out"}), "reads": ("j:out",), "items": "", "run": "1",
        "task": "4", "attempt": 0, "own": {"total": store.put_artifact(3).as_record()},
        "num_splits": None, "next_step": None}])
    cache = TaskCache(store, First._flow_graph(), "1", {"join": code}, {})
    [hit] = cache.reuse([TaskSpec("join", "9")], [parents])
    assert store.get_artifact(hit.artifacts["total"]) == 3
    assert cache.waits() == {"work"}   # the join's parents hand it their refs


def test_a_lookup_that_cannot_read_what_it_needs_runs_the_task(store, caplog):
    code = "cd" * 32
    store.cache.add("join", code, [{"key": "k", "reads": ("j:out",), "items": "", "run": "1",
                                    "task": "4", "attempt": 0, "own": {},
                                    "num_splits": None, "next_step": None}])
    gone = [SplitBatch("work", ("2", "3"), (0, 0), 0.1)]   # their batch object is missing
    cache = TaskCache(store, First._flow_graph(), "1", {"join": code}, {})
    assert cache.reuse([TaskSpec("join", "9")], [gone]) == [None]
    assert "could not look up the tasks of step 'join'" in caplog.text


def test_looking_up_ten_thousand_splits_costs_a_read_per_batch_not_per_split(store):
    """The first run's 10,000 splits ran in 20 batches: their entries are 20 objects. The
    lookup lists the step's index once and reads those 20; the hits are written as 10."""
    code, width = "ef" * 32, 10_000
    values = list(range(width))
    store.write_foreach_items("1", "start", "1", 0, values, "items", digests=True)
    parent = TaskRef("start", "1", 0, {}, (), width)
    items = ItemDigests(store, "1")
    first_run = splits(parent, 2)
    for first in range(0, width, 500):
        batch = store.batched("1", "work", [str(2 + i) for i in range(first, first + 500)])
        for index in range(first, first + 500):
            spec = first_run[index]
            inputs = key_inputs(code, store, "1", {}, False, [parent], spec.frames, items)
            out = store.put_artifact(index, "out", inline=True)
            batch.cache.add("work", code, [{
                "key": task_key(inputs, ()), "reads": (), "items": items(spec.frames[0]),
                "run": "1", "task": spec.task_id, "attempt": 0,
                "own": {"out": out.as_record()}, "num_splits": None, "next_step": None}])
        batch.commit()
    calls = Counter()
    files = store.files
    for name in ("listdir", "read", "read_many", "existing", "write", "open"):
        def counted(*args, _name=name, _real=getattr(files, name)):
            calls[_name] += len(args[0]) if _name in ("read_many", "existing") else 1
            return _real(*args)
        setattr(files, name, counted)
    store.write_foreach_items("2", "start", "1", 0, values, "items", digests=True)
    calls.clear()
    refs = TaskCache(store, First._flow_graph(), "2", {"work": code}, {}).reuse(
        splits(parent, 5), each(parent))
    assert all(r is not None for r in refs)
    assert calls["listdir"] == 1 and calls["read_many"] == 20   # the index: one per batch
    assert calls["existing"] == 0                        # values kept in records: no check
    assert calls["write"] == 10                          # the hits, a thousand an object
    assert calls["open"] == 1                            # the items' digests, once
    assert calls["read"] == 20                           # the 20 objects, nothing else


def test_a_bad_version_is_refused_in_one_line_naming_it():
    from daskflow.steps import StepDecoratorError, parse_decospec
    assert parse_decospec("cache:version=3").options.version == 3
    with pytest.raises(StepDecoratorError, match=r"@cache\(version=\[1\]\): version must be"):
        parse_decospec("cache:version=[1]")


def test_a_foreach_step_whose_origin_run_was_deleted_runs_again(store, tmp_path):
    """Its artifacts are shared and still there, but not the list its splits read."""
    import shutil
    code = "ab" * 32
    store.write_foreach_items("1", "start", "1", 0, [1, 2], "items", digests=True)
    store.cache.add("start", code, [{
        "key": task_key(KeyInputs(code), ()), "reads": (), "items": "", "run": "1",
        "task": "1", "attempt": 0, "own": {}, "num_splits": 2, "next_step": None}])
    cache = TaskCache(store, First._flow_graph(), "2", {"start": code}, {})
    assert cache.reuse([TaskSpec("start", "1")], [()]) != [None]
    shutil.rmtree(tmp_path / "root" / "First" / "1")
    cache = TaskCache(store, First._flow_graph(), "3", {"start": code}, {})
    assert cache.reuse([TaskSpec("start", "1")], [()]) == [None]
    assert store.list_tasks("3", "start") == []
