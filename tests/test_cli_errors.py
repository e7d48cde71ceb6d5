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
