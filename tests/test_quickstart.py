"""What CI's clean-install check (.ci/clean-install.sh) runs is what the README says: the
Quickstart's two commands, the first installing no extras, and the first flow example."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def _readme_block():
    spec = importlib.util.spec_from_file_location("readme_block", ROOT / ".ci/readme_block.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.fast
def test_the_quickstart_is_two_commands_and_the_first_installs_no_extras() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [b.strip() for b in _readme_block().section_blocks(readme, "Quickstart", "bash")]
    assert len(commands) == 2
    assert commands[0] == "pip install -e . && python examples/group_stats.py run"
    assert commands[1].startswith('pip install -e ".[test]"')


@pytest.mark.fast
def test_the_first_flow_example_is_a_whole_flow_file() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    code = _readme_block().section_blocks(readme, "A flow", "python")[0]
    tree = ast.parse(code)
    assert [n.name for n in tree.body if isinstance(n, ast.ClassDef)] == ["TrainFlow"]
    guard = tree.body[-1]
    assert isinstance(guard, ast.If) and "__main__" in ast.unparse(guard.test)


@pytest.mark.fast
def test_ci_checks_the_clean_install_first() -> None:
    steps = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    first_install = next(i for i, s in enumerate(steps) if "pip install" in s)
    assert steps.index("bash .ci/clean-install.sh") < first_install
    script = (ROOT / ".ci/clean-install.sh").read_text()
    assert "readme_block.py Quickstart bash 1" in script
    assert 'readme_block.py "A flow" python 1' in script
    assert "unset PYTHONPATH" in script
