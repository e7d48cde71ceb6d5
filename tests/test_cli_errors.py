"""Bad input: each gets a clear message naming the step or parameter, a non-zero
exit, no traceback, and nothing runs or is stored."""

from __future__ import annotations

import pytest

BAD_FLOWS = [
    ("bad/no_start.py", ["has no 'start' step"], None),
    ("bad/no_next.py", ["Step 'start' does not call self.next()"], 6),
    ("bad/unknown_target.py", ["goes to 'trian'", "Did you mean 'train'?"], 7),
    ("bad/cycle.py", ["cycle", "a -> b -> a"], None),
    ("bad/unjoined.py", ["'start' splits the flow", "never joined"], 6),
    ("bad/join_without_inputs.py", ["Step 'join' is reached from several branches",
                                    "def join(self, inputs)"], 18),
    ("bad/no_guard.py", ["NoGuardFlow() is called at the top level",
                         'if __name__ == "__main__":'], 14),
    ("bad/bad_decorator.py", ["@resources(memory='lots') is not a size",
                              "'16GiB'"], 9),
    # refused by a decorator's plan: `check` as `run` (it used to say "looks good")
    ("bad/catch_on_foreach.py", ["@catch cannot be used on step 'start'",
                                 "Put @catch on the steps it leads to instead"], 7),
    ("bad/split_resources_outside_foreach.py", [
        "@resources(memory=<lambda>) is a function of a foreach split's input",
        "step 'work' does not follow a foreach"], 11),
    ("bad/generator_step.py", ["Step 'start' contains yield, which makes it a generator",
                               "helper function"], 8),
]


@pytest.mark.fast
@pytest.mark.parametrize("flow,expected,line", BAD_FLOWS, ids=[b[0] for b in BAD_FLOWS])
@pytest.mark.parametrize("command", ["check", "run"])
def test_malformed_flow_is_refused_before_anything_runs(run_in_process, workdir, flow,
                                                        expected, line, command):
    # Only the graph is needed: in this process (the same entry point a user's runs).
    result = run_in_process(flow, command)
    assert result.returncode == 1, result.stdout + result.stderr
    for text in expected:
        assert text in result.stderr
    if line is not None:
        assert f"{flow.split('/')[-1]}:{line}:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (workdir / ".daskflow").exists()


def test_a_malformed_flow_is_refused_as_a_command(run_flow, workdir):
    result = run_flow("bad/unknown_target.py", "run")  # once as a real process, too
    assert result.returncode == 1 and "Did you mean 'train'?" in result.stderr
    assert "Traceback" not in result.stderr and not (workdir / ".daskflow").exists()


def test_debug_shows_the_traceback(run_flow):
    result = run_flow("bad/unknown_target.py", "--debug", "check")
    assert result.returncode == 1
    assert "Traceback" in result.stderr


def test_unknown_option_is_a_usage_error(run_flow, workdir):
    result = run_flow("foreach.py", "run", "--max-wrokers", "2")
    assert result.returncode == 2
    assert "No such option '--max-wrokers'" in result.stderr
    assert "Did you mean '--max-workers'?" in result.stderr
    assert not (workdir / ".daskflow").exists()


def test_unknown_parameter_is_a_usage_error(run_flow, workdir):
    result = run_flow("foreach.py", "run", "--m", "3")
    assert result.returncode == 2
    assert "--m" in result.stderr
    assert not (workdir / ".daskflow").exists()


def test_bad_parameter_value_names_the_parameter(run_flow, workdir):
    result = run_flow("foreach.py", "run", "--n", "ten")
    assert result.returncode == 1
    assert "Invalid value 'ten' for parameter 'n': expected int" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (workdir / ".daskflow").exists()


def test_missing_required_parameter(run_flow, workdir):
    result = run_flow("bad/required_param.py", "run")
    assert result.returncode == 1
    assert "Missing required parameter 'dataset'" in result.stderr
    assert "--dataset" in result.stderr
    assert not (workdir / ".daskflow").exists()


def test_bad_json_parameter(run_flow, workdir):
    result = run_flow("linear_params.py", "run", "--config", "{not json")
    assert result.returncode == 1
    assert "parameter 'config'" in result.stderr
    assert not (workdir / ".daskflow").exists()


def test_missing_include_file(run_flow, workdir):
    result = run_flow("linear_params.py", "run", "--notes", "no/such/file.txt")
    assert result.returncode == 1
    assert "IncludeFile 'notes': cannot read 'no/such/file.txt'" in result.stderr
    assert not (workdir / ".daskflow").exists()


def test_help_lists_parameters(run_flow):
    result = run_flow("linear_params.py", "run", "--help")
    assert result.returncode == 0
    for option in ("--alpha", "--count", "--name", "--verbose", "--config", "--notes",
                   "--max-workers", "--max-num-splits", "--tag", "--run-id-file",
                   "--scheduler-address"):
        assert option in result.stdout


@pytest.mark.parametrize("flow", ["bad/catch_on_foreach.py", "bad/generator_step.py"])
def test_show_refuses_what_check_and_run_refuse(run_in_process, workdir, flow):
    result = run_in_process(flow, "show")
    assert result.returncode == 1 and "Traceback" not in result.stderr


def test_check_refuses_a_request_the_backend_cannot_meet_as_run_does(run_in_process,
                                                                     workdir):
    for command in ("check", "run"):
        result = run_in_process("resources_flow.py", command, "--with",
                                "resources:memory=10TiB")
        assert result.returncode == 1, command
        assert "Resource request cannot be met: The local backend cannot give 1 worker(s) " \
            "of 10 TiB memory" in result.stderr, command
        assert "looks good" not in result.stdout and "Traceback" not in result.stderr
    assert not (workdir / ".daskflow").exists()


@pytest.mark.parametrize("setting, value, message", [
    ("read-ahead", "lots", "daskflow.datastore.read-ahead is 'lots': give a whole number"),
    ("exclusive-create", "maybe", "daskflow.datastore.exclusive-create is 'maybe': give true"),
])
def test_check_refuses_a_bad_datastore_setting_as_run_does(setting, value, message,
                                                           run_in_process, workdir):
    import dask.config
    for command in ("check", "run"):
        with dask.config.set({f"daskflow.datastore.{setting}": value}):
            result = run_in_process("linear_params.py", command)
        assert result.returncode == 1, command
        assert message in result.stderr, command
        assert "Traceback" not in result.stderr
    assert not list((workdir / ".daskflow").glob("*/[0-9]*"))  # no run stored


MISTAKES_IN_A_STEP = [
    (["bad/foreach_mistakes.py", "--mistake", "typo"],
     ["ForeachError: Step 'start' fans out with foreach='items' but never sets self.items.",
      "Did you mean 'itmes'?", "Assign the list to self.items"]),
    (["bad/foreach_mistakes.py", "--mistake", "int"],
     ["ForeachError: Step 'start': foreach='items' needs a list", "self.items is an int (3)",
      "Assign the items to self.items"]),
    (["bad/unpicklable_artifact.py"],
     ["ArtifactError: Step 'start': Artifact 'lock'", "cannot pickle '_thread.lock' object",
      "Keep only picklable values on self"]),
    (["bad/reserved_names.py", "--name", "index"],
     ["ReservedNameError: ", "reserved_names.py:10: step 'start' assigns self.index",
      "the foreach split's index", "e.g. self.index_value = ..."]),
    (["bad/reserved_names.py", "--name", "input"],
     ["reserved_names.py:12: step 'start' assigns self.input", "self.input_value"]),
]


@pytest.mark.parametrize("args,expected", MISTAKES_IN_A_STEP,
                         ids=[" ".join(m[0]) for m in MISTAKES_IN_A_STEP])
def test_a_mistake_in_a_step_is_one_line_without_debug(run_flow, workdir, args, expected):
    flow, *params = args
    result = run_flow(flow, "run", *params)
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()   # one line, no traceback
    assert line.startswith("Run ") and " failed: task " in line
    for text in expected:
        assert text in line
    debug = run_flow(flow, "--debug", "run", *params)   # the traceback with --debug
    assert debug.returncode == 1 and "Traceback" in debug.stderr


@pytest.mark.fast
def test_report_takes_one_of_a_run_compare_or_index(run_in_process, workdir):
    result = run_in_process("linear_params.py", "report", "17", "--index")
    assert result.returncode == 2
    assert "Give a RUN_ID, --compare RUN_A RUN_B or --index: one of them." in result.stderr


def test_comparing_with_a_run_that_does_not_exist_is_one_line(run_flow, workdir):
    assert run_flow("linear_params.py", "run").returncode == 0
    from daskflow import Flow, namespace
    namespace(None)
    run_id = Flow("LinearFlow", _root=str(workdir / ".daskflow")).latest_run.id
    result = run_flow("linear_params.py", "report", "--compare", run_id, "99")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"Not found: Run 'LinearFlow/99' does not exist in "
        f"{workdir / '.daskflow' / 'LinearFlow'}."]
