"""@project as Metaflow has it: branches, current's names, tags and namespaces."""

from __future__ import annotations

import pytest

from daskflow import Flow, namespace, project


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


# -- every combination, against Metaflow 2.19 -----------------------------------------
# Recorded with Metaflow 2.19.39 in a separate virtual environment: tests/flows/
# project_flow.py with `from metaflow import ...`, run as `python mf_project.py ARGS run`
# with only the environment shown set (no USER, USERNAME, SUDO_USER, METAFLOW_USER or
# METAFLOW_OWNER otherwise), current.branch_name and current.username read in the step,
# and the run's system tags read with Metaflow's client. The tags were always
# project:fraud_model, project_branch:<branch> and user:<user>, and current.namespace
# user:<user>; with USER=root alone Metaflow refused to run ("Unknown user").
OPTIONS = [(), ("--branch", "exp1"), ("--production",), ("--production", "--branch", "v2")]
BRANCHES = ["user.{owner}", "test.exp1", "prod", "prod.v2"]
USERS = [  # (environment, user, owner of the user branch)
    ({"USER": "ana"}, "ana", "ana"),
    ({"USER": "root", "SUDO_USER": "bob"}, "bob", "bob"),
    ({"USER": "ana", "METAFLOW_USER": "carl"}, "carl", "carl"),
    ({"USER": "ana", "USERNAME": "dora"}, "dora", "dora"),
    ({"USER": "ana", "METAFLOW_OWNER": "owner1"}, "ana", "owner1"),
    ({"USER": "Ana.B"}, "Ana.B", "Ana.B"),
]
USER_VARIABLES = ("DASKFLOW_USER", "METAFLOW_USER", "SUDO_USER", "USERNAME", "USER",
                  "METAFLOW_OWNER", "LOGNAME")


def _facts(flow_cls, args):
    from daskflow.current import username
    from daskflow.project import project_facts
    return project_facts(flow_cls, branch=args[args.index("--branch") + 1]
                         if "--branch" in args else None,
                         production="--production" in args, user=username())


def _project_flow(**attributes):
    from daskflow import FlowSpec, step

    @project(name="fraud_model", **attributes)
    class ProjectFlow(FlowSpec):
        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            pass

    return ProjectFlow


@pytest.mark.fast
@pytest.mark.parametrize("env,user,owner", USERS)
@pytest.mark.parametrize("args,branch", list(zip(OPTIONS, BRANCHES)))
def test_every_branch_and_user_as_metaflow_names_them(monkeypatch, env, user, owner, args,
                                                      branch):
    from daskflow.current import username
    from daskflow.project import project_tags
    for variable in USER_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    facts = _facts(_project_flow(), args)
    branch = branch.format(owner=owner)
    assert username() == user
    assert facts == {"project_name": "fraud_model", "branch_name": branch,
                     "project_flow_name": f"fraud_model.{branch}.ProjectFlow",
                     "is_production": "--production" in args, "is_user_branch": not args}
    assert project_tags(facts) == ["project:fraud_model", f"project_branch:{branch}"]


@pytest.mark.fast
@pytest.mark.parametrize("attributes,args,branch", [
    # Metaflow 2.19.39, @project(name="fraud_model", **attributes) with ARGS, USER=ana
    ({"branch": "b1"}, (), "test.b1"),
    ({"branch": "b1"}, ("--branch", "b1"), "test.b1"),
    ({"branch": "b1"}, ("--production",), "prod.b1"),
    ({"production": True}, (), "prod"),
    ({"production": True}, ("--branch", "b1"), "prod.b1"),
    ({"production": True}, ("--branch", "c2"), "prod.c2"),
    ({"production": True}, ("--production",), "prod"),
    ({"branch": "b1", "production": True}, (), "prod.b1"),
    ({"branch": "b1", "production": True}, ("--branch", "b1"), "prod.b1"),
    ({"branch": "b1", "production": True}, ("--production",), "prod.b1"),
    # refused by Metaflow with "You cannot pass branch as both a command-line argument and
    # an attribute of the @project decorator."
    ({"branch": "b1"}, ("--branch", "c2"), "branch"),
    ({"branch": "b1", "production": True}, ("--branch", "c2"), "branch"),
    ({"production": False}, ("--production",), "production"),
])
def test_branch_and_production_in_the_decorator_as_metaflow(monkeypatch, attributes, args,
                                                            branch):
    from daskflow.exceptions import FlowDefinitionError
    monkeypatch.setenv("USER", "ana")
    flow_cls = _project_flow(**attributes)
    if "." not in branch and branch != "prod":
        with pytest.raises(FlowDefinitionError,
                           match=f"You cannot pass {branch} as both a command-line argument "
                                 f"and an attribute of the @project decorator"):
            _facts(flow_cls, args)
        return
    facts = _facts(flow_cls, args)
    assert facts["branch_name"] == branch
    assert facts["is_production"] == branch.startswith("prod")
    assert facts["is_user_branch"] is False


def test_the_branch_of_a_run_from_the_decorator_and_a_config(run_flow, workdir):
    """@project(branch=...) on a run, and the name from a Config, end to end."""
    (workdir / "branch_flow.py").write_text(
        "from daskflow import Config, FlowSpec, config_expr, current, project, step\n\n\n"
        "@project(name=config_expr('cfg.name'), branch='nightly')\n"
        "class BranchFlow(FlowSpec):\n"
        "    cfg = Config('cfg', default_value={'name': 'from_config'})\n\n"
        "    @step\n"
        "    def start(self):\n"
        "        self.branch = current.project_flow_name\n"
        "        self.next(self.end)\n\n"
        "    @step\n"
        "    def end(self):\n"
        "        pass\n\n\n"
        "if __name__ == '__main__':\n"
        "    BranchFlow()\n")
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "branch_flow.py", "--production", "run"],
                            cwd=workdir, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    namespace("project_branch:prod.nightly")
    run = Flow("BranchFlow").latest_run
    assert run.data.branch == "from_config.prod.nightly.BranchFlow"
    assert "project:from_config" in run.system_tags
