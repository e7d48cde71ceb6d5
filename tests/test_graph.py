"""The graph check allows and refuses what Metaflow's does; allowed flows run."""

from __future__ import annotations

from pathlib import Path

import pytest

from daskflow import Flow
from daskflow.exceptions import FlowDefinitionError
from daskflow.graph import END, FOREACH, LINEAR, SPLIT, SWITCH, FlowGraph
from daskflow.runtime import load_flow


def test_switch_inside_a_foreach_runs_each_split_down_its_own_path(run_flow, workdir):
    result = run_flow("switch_in_foreach.py", "run")
    assert result.returncode == 0, result.stderr
    run = Flow("SwitchForeachFlow").latest_run
    assert run.successful
    assert sorted(run["join"].task.data.labels) == [
        "1->4 small", "2->1 small", "3->10 big", "4->2 small"]
    # Each split took one path at each switch: 2 halved and 2 grown, 1 big and 3 small.
    assert len(run["halve"]) == 2 and len(run["grow"]) == 2
    assert [t.data.n for t in run["big"]] == [3]
    assert sorted(t.data.n for t in run["small"]) == [1, 2, 4]


def test_a_switch_straight_into_a_join_is_refused(run_flow, workdir):
    result = run_flow("bad/switch_into_join.py", "check")
    assert result.returncode == 1
    assert "switch_into_join.py:15:" in result.stderr
    assert "Step 'pick' chooses with condition=" in result.stderr
    assert "cannot lead directly to a join" in result.stderr
    assert "Add a plain step on that path before 'join'" in result.stderr
    assert "Traceback" not in result.stderr


# -- FlowGraph in this process: every flow of tests/flows, good and bad --------------------

FLOWS = Path(__file__).parent / "flows"
GOOD_FLOWS = sorted(p.name for p in FLOWS.glob("*.py"))


def graph_of(name: str) -> FlowGraph:
    return load_flow(FLOWS / name)._flow_graph()


@pytest.mark.fast
@pytest.mark.parametrize("name", GOOD_FLOWS)
def test_every_good_flow_makes_a_consistent_graph(name: str) -> None:
    graph = graph_of(name)
    order = [node.name for node in graph.sorted_nodes()]
    assert order[0] == "start" and order[-1] == "end" and sorted(order) == sorted(graph.nodes)
    for node in graph:
        assert node.file.endswith(name) and node.lineno > 0
        for target in node.out_funcs:
            if target == node.name:  # a recursive switch: its way back to its own step
                assert node.transition == SWITCH and node.recursive
                assert node.name not in node.in_funcs
                continue
            assert node.name in graph[target].in_funcs
            assert order.index(target) > order.index(node.name)  # always towards 'end'
        if node.is_join:  # it closes the innermost split open around the steps it joins
            split = graph[node.matching_split]
            assert split.transition in (SPLIT, FOREACH)
            assert node.split_parents == split.split_parents
    assert not graph["end"].split_parents  # every split joined before 'end'


# Shapes as data (Metaflow's test/core way): flow file -> what its steps must be.
SHAPES = {
    "foreach.py": {"start": (FOREACH, ["work"]), "join": ("join of", "start")},
    "branches.py": {"start": (SPLIT, ["a", "b", "c"]), "join": ("join of", "start")},
    "switch.py": {"start": (SWITCH, ["big", "small"])},
    "nested_foreach.py": {"start": (FOREACH, ["outer"]), "outer": (FOREACH, ["inner"]),
                          "inner": ("depth", 2), "inner_join": ("join of", "outer")},
    "switch_in_foreach.py": {"classify": (SWITCH, ["halve", "grow"]), "halve": ("depth", 1)},
    "gang_flow.py": {"start": ("gang", ["train"]), "join": ("join of", "start")},
    "linear_params.py": {"start": (LINEAR, ["middle"]), "end": (END, [])},
    "loop_flow.py": {"loop": (SWITCH, ["loop", "fan"]), "grow": (SWITCH, ["grow", "after"]),
                     "after": ("depth", 1), "join": ("join of", "fan")},
}


@pytest.mark.fast
@pytest.mark.parametrize("name", sorted(SHAPES))
def test_each_shape_is_read_from_the_source_as_written(name: str) -> None:
    graph = graph_of(name)
    for step, (what, expected) in SHAPES[name].items():
        node = graph[step]
        if what == "join of":
            assert node.is_join and node.matching_split == expected
        elif what == "depth":
            assert graph.foreach_depth(step) == expected
        elif what == "gang":
            assert node.transition == FOREACH and node.parallel
            assert node.out_funcs == expected
        else:
            assert (node.transition, node.out_funcs) == (what, expected)
    if name == "switch.py":
        assert set(graph["start"].switch_cases.values()) == {"big", "small"}
        assert graph["start"].condition_var


# file -> (step named, line, words of the message); the graph check alone, no command
BAD_GRAPHS = [
    ("no_start.py", None, None, "has no 'start' step"),
    ("no_next.py", "start", 6, "does not call self.next()"),
    ("unknown_target.py", "start", 7, "Did you mean 'train'?"),
    ("cycle.py", "b", 15, "a -> b -> a"),
    # Metaflow 2.19.39 refuses it too (`python loop_back.py run`: "There is a loop in your
    # flow: b->a->b"): a switch may go back only to its own step
    ("loop_back.py", "b", 18, "Only a switch may go back, and only to its own step"),
    ("unjoined.py", "start", 6, "never joined"),
    ("join_without_inputs.py", "join", 18, "is reached from several branches"),
    ("switch_into_join.py", "pick", 15, "cannot lead directly to a join"),
    ("bad_decorator.py", "train", 9, "@resources(memory='lots') is not a size"),
    ("card_bad_type.py", "start", 5, "@card(type='fancy'): No card type 'fancy'."),
]


@pytest.mark.fast
@pytest.mark.parametrize("name, step, line, words", BAD_GRAPHS, ids=[b[0] for b in BAD_GRAPHS])
def test_each_bad_flow_is_refused_naming_the_step_and_line(name, step, line, words) -> None:
    with pytest.raises(FlowDefinitionError) as refused:
        graph_of(f"bad/{name}")
    error = refused.value
    assert words in str(error)
    assert (error.step, error.lineno) == (step, line)
    assert str(error).startswith(f"{FLOWS / 'bad' / name}{f':{line}' if line else ''}: ")
