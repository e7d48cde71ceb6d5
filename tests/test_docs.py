"""The Python blocks of README.md and docs/*.md run as written, as a reader runs them.

The rules a page follows (tests/clusters/test_readme.py does the same for the backend
how-to in daskflow/clusters/README.md):

- A page's blocks run in order, each in its own ``python`` process, in a fresh folder of
  the page. The guide continues from the README: that folder holds ``train.py``, the
  README's first flow (``TrainFlow``), already run once, so a page may read
  ``Flow("TrainFlow")`` or run ``Runner("train.py")``.
- A block that is a flow file (a ``FlowSpec`` subclass and its ``__main__`` guard) is saved
  under the name the page runs it by, ``<!-- file: NAME.py -->`` on the line above it or
  else the first ``python NAME.py`` after it, and run as ``python NAME.py run``. A block
  under ``<!-- file: NAME.py -->`` that is no flow is saved as a module for later blocks.
- ``<!-- not run: REASON -->`` on the line above a block keeps it from running here (a
  cluster this machine cannot have, a package that is not installed); it must still be
  valid Python.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^(?:<!-- (?P<directive>[^\n]*?) -->\n)?```python\n(?P<code>.*?)^```$",
                   re.MULTILINE | re.DOTALL)
RUN_BY = re.compile(r"python (\w+\.py)\b")
GUARD = 'if __name__ == "__main__":'
TIMEOUT = 300


@dataclass
class Block:
    page: Path
    line: int
    code: str
    file: str | None = None        # saved under this name
    not_run: str | None = None     # why it does not run here

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def is_flow(self) -> bool:
        return GUARD in self.code and "(FlowSpec):" in self.code


def blocks_of(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in BLOCK.finditer(text):
        code_start = match.start("code")
        block = Block(page, text.count("\n", 0, code_start), match.group("code"))
        directive = match.group("directive") or ""
        if directive.startswith("not run:"):
            block.not_run = directive.removeprefix("not run:").strip()
        elif directive.startswith("file:"):
            block.file = directive.removeprefix("file:").strip()
        elif directive:
            raise AssertionError(f"{block.where}: unknown directive <!-- {directive} -->")
        if block.is_flow and block.file is None and block.not_run is None:
            named = RUN_BY.search(text, match.end())
            assert named, f"{block.where}: a flow block needs <!-- file: NAME.py --> above it"
            block.file = named.group(1)
        found.append(block)
    return found


def run_python(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("DASKFLOW_DEBUG", None)
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=TIMEOUT, env=env, stdin=subprocess.DEVNULL)


def run_block(block: Block, number: int, folder: Path) -> None:
    if block.file is not None:
        (folder / block.file).write_text(block.code)
        if not block.is_flow:
            return
        args = [block.file, "run"]
    else:
        script = folder / f"_block_{number}.py"
        script.write_text(block.code)
        args = [script.name]
    result = run_python(args, folder)
    assert result.returncode == 0, (
        f"{block.where} failed (python {' '.join(args)}):\n{result.stdout[-3000:]}\n"
        f"{result.stderr[-3000:]}")


@pytest.fixture(scope="session")
def after_the_readme(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where the README's first flow is saved as train.py and has run once."""
    folder = tmp_path_factory.mktemp("after-readme")
    [first] = [b for b in blocks_of(ROOT / "README.md") if b.is_flow][:1]
    assert first.file == "train.py" and "class TrainFlow" in first.code
    run_block(first, 0, folder)
    return folder


@pytest.mark.fast
@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_block_is_python_and_says_why_when_it_does_not_run(page: Path) -> None:
    for block in blocks_of(page):
        ast.parse(block.code, block.where)  # top-level await: written inside asyncio.run
        if block.not_run is not None:
            assert len(block.not_run) > 10, f"{block.where}: say why it does not run here"


RUNNABLE = [p for p in PAGES if any(b.not_run is None for b in blocks_of(p))]


@pytest.mark.parametrize("page", RUNNABLE, ids=[p.name for p in RUNNABLE])
def test_the_blocks_of_a_page_run_as_written(page: Path, tmp_path: Path,
                                             after_the_readme: Path) -> None:
    folder = tmp_path / "page"
    if page.name == "README.md":
        folder.mkdir()  # the README starts from nothing
    else:
        shutil.copytree(after_the_readme, folder)
    for number, block in enumerate(blocks_of(page)):
        if block.not_run is None:
            run_block(block, number, folder)


# Written with the datastore's layout, on another branch of the same change: until it
# lands, a link to it is the one allowed to point at nothing.
@pytest.mark.fast
def test_every_guide_page_is_linked_from_the_readme_and_every_link_resolves() -> None:
    readme = (ROOT / "README.md").read_text()
    for page in PAGES[1:]:
        assert f"](docs/{page.name})" in readme, f"README.md does not link {page.name}"
    for page in PAGES:
        for target, anchor in re.findall(r"\]\(([^)#:]*)(?:#([^)]*))?\)", page.read_text()):
            path = (page.parent / target).resolve() if target else page
            assert path.exists(), f"{page.name} links to {target}"
            if anchor:
                assert anchor in anchors_of(path), f"{page.name} links to {target}#{anchor}"


def anchors_of(page: Path) -> set[str]:
    """The ids GitHub gives a page's headings: lower case, punctuation dropped, - for spaces."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}
