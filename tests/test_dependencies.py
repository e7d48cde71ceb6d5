"""Every package daskflow imports is declared in pyproject.toml: by the default set, or
by the extra whose backend imports it (and that backend is imported only behind the
registry's one-line "pip install 'daskflow[...]'" error).

A package that the test environment happens to have (through another extra, or through
the test tools) must not stand in for a declaration: that is how the Quickstart once
failed on a clean install for want of ``cryptography``.
"""

from __future__ import annotations

import ast
import functools
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
#: what a clean install runs as well as the package: the README's Quickstart runs these
DEFAULT_TOO = ("examples",)
IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError"}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(text: str) -> str:
    return _normalize(re.match(r"[A-Za-z0-9._-]+", text.strip()).group(0))


def declared() -> tuple[set[str], dict[str, set[str]]]:
    """The default requirements and each user-facing extra's (``test`` left out, since a
    user never installs it; ``daskflow[...]`` in an extra unfolded)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = {name: list(reqs) for name, reqs in project["optional-dependencies"].items()
              if name != "test"}

    def names(extra: str) -> set[str]:
        found = set()
        for req in extras[extra]:
            own = re.fullmatch(r"daskflow\[([^\]]+)\]", req.replace(" ", ""))
            found |= set().union(*(names(e) for e in own.group(1).split(","))) if own \
                else {_requirement_name(req)}
        return found

    return ({_requirement_name(r) for r in project["dependencies"]},
            {extra: names(extra) for extra in extras})


def behind_extras() -> dict[str, str]:
    """Module path prefix -> the extra the registry names when its import fails
    (``daskflow/clusters/slurm`` -> ``slurm``): the backend's module and those beside it
    that carry its name."""
    from daskflow.clusters.registry import known_backends
    found = {}
    for entry in known_backends.values():
        extra = re.search(r"daskflow\[(\w+)\]", entry.get("err", ""))
        if extra:
            module = entry["class"].split(":")[0]
            found[module.replace(".", "/")] = extra.group(1)
    return found


def imports(path: Path) -> list[tuple[str, int, bool]]:
    """``(top-level package, line, guarded)`` of each import of a third-party package
    in ``path``, function bodies included; ``guarded``: inside a ``try`` that handles an
    ImportError (so its absence is handled), or under ``if TYPE_CHECKING``."""
    tree = ast.parse(path.read_text(), str(path))
    found = []

    def visit(node: ast.AST, guarded: bool) -> None:
        if isinstance(node, ast.Try):
            handles = any(_handles_import_error(h.type) for h in node.handlers)
            for child in node.body:
                visit(child, guarded or handles)
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                visit(child, guarded)
            return
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top != "daskflow":
                found.append((top, node.lineno, guarded))
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    visit(tree, False)
    return found


def _handles_import_error(handler_type: ast.expr | None) -> bool:
    if handler_type is None:
        return True
    names = handler_type.elts if isinstance(handler_type, ast.Tuple) else [handler_type]
    return any(isinstance(n, ast.Name) and n.id in IMPORT_ERRORS for n in names)


@functools.lru_cache(maxsize=None)
def _installed() -> dict[str, list[str]]:
    return packages_distributions()  # reads every installed distribution: once


def distributions(top: str) -> set[str]:
    """The distributions that provide import name ``top`` (its own name, dashed, when
    none installed here does: dask_cuda -> dask-cuda)."""
    return {_normalize(d) for d in _installed().get(top, [])} or {_normalize(top)}


def undeclared_imports() -> list[str]:
    default, extras = declared()
    prefixes = behind_extras()
    problems = []
    files = sorted((ROOT / "daskflow").rglob("*.py"))
    files += [f for folder in DEFAULT_TOO for f in sorted((ROOT / folder).rglob("*.py"))]
    for path in files:
        where = path.relative_to(ROOT).as_posix()
        extra = next((e for prefix, e in prefixes.items() if where.startswith(prefix)), None)
        allowed = default | extras.get(extra, set())
        for top, line, guarded in imports(path):
            if guarded or distributions(top) & allowed:
                continue
            problems.append(f"{where}:{line} imports {top} ({', '.join(distributions(top))}),"
                            f" declared by neither the default dependencies"
                            f"{f' nor daskflow[{extra}]' if extra else ''}")
    return problems


@pytest.mark.fast
def test_every_import_is_declared_by_the_default_set_or_its_extra() -> None:
    assert undeclared_imports() == []


@pytest.mark.fast
def test_an_undeclared_import_is_found(tmp_path, monkeypatch) -> None:
    # the check itself can fail: a function-level import of a package nobody declares
    module = tmp_path / "daskflow" / "clusters" / "tls_extra.py"
    module.parent.mkdir(parents=True)
    module.write_text("def make():\n    from cryptography import x509\n")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\ndependencies = ["dask"]\n[project.optional-dependencies]\n'
        'slurm = ["dask-jobqueue"]\ntest = ["cryptography"]\n')
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert undeclared_imports() == [
        "daskflow/clusters/tls_extra.py:2 imports cryptography (cryptography), declared by "
        "neither the default dependencies"]


@pytest.mark.fast
def test_a_guarded_import_and_a_backends_own_are_allowed(tmp_path, monkeypatch) -> None:
    folder = tmp_path / "daskflow" / "clusters"
    folder.mkdir(parents=True)
    (folder / "slurm.py").write_text("import dask_jobqueue\n")
    (folder / "view.py").write_text(
        "try:\n    import ipywidgets\nexcept ImportError:\n    ipywidgets = None\n")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\ndependencies = ["dask"]\n[project.optional-dependencies]\n'
        'slurm = ["dask-jobqueue>=0.9"]\nall = ["daskflow[slurm]"]\n')
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert undeclared_imports() == []
    assert declared()[1]["all"] == {"dask-jobqueue"}
