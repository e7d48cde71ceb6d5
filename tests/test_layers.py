"""daskflow's imports point down: no import circle among its modules, and click in cli.py only.

Imports are counted wherever they are written: at the top of a module, inside a function
(run only when it is called, but a circle all the same) and under ``if TYPE_CHECKING``
(a type taken from a higher layer is a reach up too). ``from a.b import c`` counts
``a.b.c`` when it is a module, and the packages on the way, whose ``__init__`` runs
first. A module's own packages are not counted: Python has started them before it.
``docs/architecture.md`` has the layers these keep in order.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "daskflow"

pytestmark = pytest.mark.fast


def module_files(package: Path) -> dict[str, Path]:
    """Dotted name -> file of every module of ``package`` (a package by its ``__init__``)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported_names(name: str, path: Path) -> list[str]:
    """Every name ``path`` imports, anywhere in it, made absolute (``a.b.c`` for
    ``from .b import c`` in package ``a``)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names += [f"{module}.{alias.name}" for alias in node.names]
    return names


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports (see the module's docstring)."""
    files = module_files(package)
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        graph[name] = set()
        for target in imported_names(name, path):
            while target:  # the module itself, then each package on the way to it
                if target in files and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
                target = target.rpartition(".")[0]
    return graph


def import_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of ``graph``, each module importing the next, or None."""
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        return list(reversed(exc.args[1]))  # given as each one imported by the next
    return None


def test_no_import_circle_among_daskflows_modules() -> None:
    circle = import_circle(import_graph(PACKAGE))
    assert circle is None, "an import circle: " + " imports ".join(circle)


def test_cli_is_the_only_module_that_imports_click() -> None:
    importers = sorted(name for name, path in module_files(PACKAGE).items()
                       if any(n.split(".")[0] == "click" for n in imported_names(name, path)))
    assert importers == ["daskflow.cli"]


@pytest.mark.parametrize("files", [
    # a circle closed by an import inside a function
    {"__init__.py": "", "a.py": "from . import b\n",
     "b.py": "def later():\n    from .a import x\n"},
    # a circle through a package's __init__, run on the way to its module
    {"__init__.py": "", "c.py": "def later():\n    from .sub.d import y\n",
     "sub/__init__.py": "from ..c import later\n", "sub/d.py": "y = 1\n"},
], ids=["function-local", "through-a-package"])
def test_the_check_finds_a_circle(tmp_path: Path, files: dict[str, str]) -> None:
    package = tmp_path / "pkg"
    for relative, text in files.items():
        (package / relative).parent.mkdir(parents=True, exist_ok=True)
        (package / relative).write_text(text)
    circle = import_circle(import_graph(package))
    assert circle is not None and circle[0] == circle[-1] and len(circle) == 3
