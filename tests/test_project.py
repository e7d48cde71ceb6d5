"""@project as Metaflow has it: branches, current's names, tags and namespaces."""

from __future__ import annotations

import pytest

from daskflow import Flow, namespace


@pytest.mark.parametrize("args,branch,prod", [
    ((), "user.ana", False),
    (("--branch", "exp1"), "test.exp1", False),
    (("--production",), "prod", True),
    (("--production", "--branch", "v2"), "prod.v2", True),
])
def test_a_run_is_on_its_branch(run_flow, workdir, args, branch, prod):
    result = run_flow("project_flow.py", *args, "run", env={"USER": "ana"})
    assert result.returncode == 0, result.stderr
    namespace(f"project_branch:{branch}")
    run = Flow("ProjectFlow").latest_run
    seen = run["start"].task.data.seen
    assert seen == {"project": "fraud_model", "branch": branch,
                    "flow": f"fraud_model.{branch}.ProjectFlow", "prod": prod,
                    "user_branch": not args}
    assert {"project:fraud_model", f"project_branch:{branch}"} <= run.system_tags


def test_bad_branch_names_and_stray_options_are_refused(run_flow, run_in_process, workdir):
    bad = run_in_process("project_flow.py", "--branch", "Bad-Name", "run")
    assert bad.returncode == 1
    assert "must contain only lowercase alphanumeric characters and underscores" in bad.stderr
    stray = run_in_process("linear_params.py", "--branch", "x", "run")
    assert stray.returncode == 2 and "No such option '--branch'" in stray.stderr
    assert not (workdir / ".daskflow").exists()
