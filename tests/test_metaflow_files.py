"""Flow files written for Metaflow, unchanged, through ``daskflow run FLOW.py ARGS...``.

Their ``metaflow`` imports get daskflow's API in that process and in its workers, with
or without Metaflow installed; what daskflow lacks is refused in one line naming the
Metaflow feature; the client reads the runs back with ``from daskflow import Flow``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import daskflow
from daskflow import Flow
from daskflow.compat import MetaflowFeatureError, install_metaflow_alias, \
    is_metaflow_file, uninstall_metaflow_alias

MF_FLOW = '''
import os

from metaflow import FlowSpec, Parameter, current, step, retry, card
from metaflow.cards import Markdown


def triple(x):
    return 3 * x


class MfFlow(FlowSpec):
    """A flow written for Metaflow."""

    alpha = Parameter("alpha", default=2)

    @card(type="blank")
    @step
    def start(self):
        import metaflow
        self.items = [1, 2, 3]
        self.where = [current.flow_name, metaflow.current.step_name]
        current.card.append(Markdown("# made on daskflow"))
        self.next(self.scale, foreach="items")

    @retry(times=1)
    @step
    def scale(self):
        from metaflow import current as inner_current  # imported on the worker
        self.value = triple(self.input) * self.alpha
        self.pid = os.getpid()
        self.step_seen = inner_current.step_name
        self.next(self.join)

    @step
    def join(self, inputs):
        self.values = sorted(i.value for i in inputs)
        self.pids = sorted({i.pid for i in inputs})
        self.next(self.end)

    @step
    def end(self):
        from metaflow import Flow
        print("latest before this one:", Flow("MfFlow").latest_run is not None)


if __name__ == "__main__":
    MfFlow()
'''


def daskflow_run(workdir: Path, *args: str, env: dict[str, str] | None = None,
                 timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """``daskflow run ARGS...`` as a user types it (the console command's module)."""
    full = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full.pop("DASKFLOW_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "daskflow", "run", *args], cwd=workdir,
                          capture_output=True, text=True, timeout=timeout, env=full)


@pytest.fixture
def alias():
    install_metaflow_alias()
    yield
    uninstall_metaflow_alias()


@pytest.mark.fast
def test_metaflow_names_are_daskflows_api_in_this_process(alias):
    import metaflow
    from metaflow import FlowSpec, Parameter, card, current, project, step
    from metaflow.cards import Markdown, get_cards
    from metaflow.client import namespace
    from metaflow.exception import MetaflowNotFound
    assert (FlowSpec, Parameter, step, current, project, card) == (
        daskflow.FlowSpec, daskflow.Parameter, daskflow.step, daskflow.current,
        daskflow.project, daskflow.card)
    assert Markdown is daskflow.cards.Markdown and get_cards is daskflow.cards.get_cards
    assert namespace is daskflow.namespace
    assert issubclass(MetaflowNotFound, daskflow.exceptions.DataNotFoundError)
    assert metaflow.__spec__.origin == "daskflow"
    assert "FlowSpec" in metaflow.__all__


@pytest.mark.fast
@pytest.mark.parametrize("statement,named", [
    ("from metaflow import S3", "Metaflow's S3 (metaflow.S3)"),
    ("from metaflow import conda", "Metaflow's @conda (metaflow.conda)"),
    ("from metaflow import batch", "Metaflow's @batch"),
    ("from metaflow import kubernetes", "Metaflow's @kubernetes"),
    ("from metaflow import Deployer", "Metaflow's Deployer"),
    ("from metaflow.cards import PythonCode", "Metaflow's PythonCode (metaflow.cards"),
    ("import metaflow.plugins.kubernetes", "Metaflow's module metaflow.plugins.kubernetes"),
    ("from metaflow.metaflow_config import DATASTORE_SYSROOT_LOCAL",
     "Metaflow's module metaflow.metaflow_config"),
    ("from metaflow import metaflow_config", "Metaflow's module metaflow.metaflow_config"),
])
def test_what_daskflow_lacks_is_refused_in_one_line(alias, statement, named):
    with pytest.raises(MetaflowFeatureError) as caught:
        exec(statement, {})
    message = str(caught.value)
    assert named in message and "\n" not in message


@pytest.mark.fast
def test_names_metaflow_never_had_are_missing_as_usual(alias):
    with pytest.raises(ImportError, match="cannot import name 'FlowSpek'"):
        exec("from metaflow import FlowSpek", {})


@pytest.mark.fast
def test_a_process_that_imported_metaflow_itself_is_refused(monkeypatch):
    import types
    monkeypatch.setitem(sys.modules, "metaflow", types.ModuleType("metaflow"))
    with pytest.raises(MetaflowFeatureError, match="imported Metaflow itself already"):
        install_metaflow_alias()


@pytest.mark.fast
def test_a_metaflow_file_is_known_by_its_imports(tmp_path):
    inside = tmp_path / "inside.py"
    inside.write_text("def f():\n    from metaflow.cards import Markdown\n")
    native = tmp_path / "native.py"
    native.write_text("from daskflow import FlowSpec\nimport metaflow_extensions\n")
    assert is_metaflow_file(inside) and not is_metaflow_file(native)


def test_an_unchanged_metaflow_file_runs_on_daskflow(workdir):
    (workdir / "mf_flow.py").write_text(MF_FLOW)
    result = daskflow_run(workdir, "mf_flow.py", "run", "--alpha", "5")
    assert result.returncode == 0, result.stderr
    run = Flow("MfFlow").latest_run
    assert run.successful
    assert run.data.values == [15, 30, 45]
    assert run["start"].task.data.where == ["MfFlow", "start"]
    assert {t.data.step_seen for t in run["scale"]} == {"scale"}
    assert os.getpid() not in run["join"].task.data.pids  # the steps ran in workers
    assert "latest before this one: True" in run["end"].task.stdout
    from daskflow.cards import get_cards
    assert "made on daskflow" in get_cards(run["start"].task)[0].html


def test_the_flow_command_line_goes_through_daskflow_run(workdir):
    (workdir / "mf_flow.py").write_text(MF_FLOW)
    show = daskflow_run(workdir, "mf_flow.py", "show")
    assert show.returncode == 0, show.stderr
    assert "Step scale" in show.stdout and "(foreach over self.items)" in show.stdout
    check = daskflow_run(workdir, "mf_flow.py", "check")
    assert check.returncode == 0 and "The graph looks good!" in check.stdout
    helped = daskflow_run(workdir, "mf_flow.py", "run", "--help")
    assert "--alpha" in helped.stdout and "Usage: daskflow run mf_flow.py run" in helped.stdout

    failed = daskflow_run(workdir, "mf_flow.py", "run", "--alpha", "oops")
    assert failed.returncode == 1 and "Invalid value 'oops' for parameter 'alpha'" in \
        failed.stderr
    ok = daskflow_run(workdir, "mf_flow.py", "run")
    assert ok.returncode == 0, ok.stderr
    run_id = Flow("MfFlow").latest_run.id
    dump = daskflow_run(workdir, "mf_flow.py", "dump", f"{run_id}/join")
    assert dump.returncode == 0 and "values (list): [6, 12, 18]" in dump.stdout
    logs = daskflow_run(workdir, "mf_flow.py", "logs", f"{run_id}/end")
    assert "latest before this one: True" in logs.stdout
    resumed = daskflow_run(workdir, "mf_flow.py", "resume", "join")
    assert resumed.returncode == 0, resumed.stderr
    again = Flow("MfFlow").latest_run
    assert again.origin_run_id == run_id and again.data.values == [6, 12, 18]
    cards = daskflow_run(workdir, "mf_flow.py", "card", "get", f"{run_id}/start/1")
    assert cards.returncode == 0 and "made on daskflow" in cards.stdout


def test_an_installed_metaflow_is_not_what_the_file_gets(workdir, tmp_path_factory):
    """With a `metaflow` package on the path (here a decoy that fails if imported), the
    file still runs on daskflow."""
    site = tmp_path_factory.mktemp("site")
    (site / "metaflow").mkdir()
    (site / "metaflow" / "__init__.py").write_text(
        "raise RuntimeError('the installed Metaflow was imported')\n")
    (workdir / "mf_flow.py").write_text(MF_FLOW)
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    probe = subprocess.run([sys.executable, "-c", "import metaflow"], capture_output=True,
                           text=True, env={**os.environ, "PYTHONPATH": path})
    assert "the installed Metaflow was imported" in probe.stderr  # it is found first
    result = daskflow_run(workdir, "mf_flow.py", "run", env={"PYTHONPATH": path})
    assert result.returncode == 0, result.stderr
    assert Flow("MfFlow").latest_run.data.values == [6, 12, 18]


def test_a_refused_feature_stops_the_file_in_one_line(workdir):
    (workdir / "conda_flow.py").write_text(textwrap.dedent('''
        from metaflow import FlowSpec, step, conda

        class CondaFlow(FlowSpec):
            @conda(libraries={"pandas": "2.2"})
            @step
            def start(self):
                self.next(self.end)

            @step
            def end(self):
                pass

        if __name__ == "__main__":
            CondaFlow()
        '''))
    result = daskflow_run(workdir, "conda_flow.py", "run")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Not in daskflow: Metaflow's @conda (metaflow.conda)")
    assert "Traceback" not in result.stderr
    assert not (workdir / ".daskflow").exists()


def test_a_missing_flow_file_is_one_line(workdir):
    result = daskflow_run(workdir, "nope.py", "run")
    assert result.returncode == 1
    assert "nope.py does not exist" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.fast
def test_with_names_a_refused_metaflow_decorator():
    from daskflow.steps import StepDecoratorError, parse_decospec
    with pytest.raises(StepDecoratorError) as refused:
        parse_decospec("kubernetes:cpu=4")
    assert str(refused.value) == (
        "--with 'kubernetes:cpu=4': Metaflow's @kubernetes is not in daskflow: give the "
        "step a cluster on Kubernetes with @resources(backend='kubernetes', cpu=..., "
        "memory=...).")
