"""One run of tests/flows/card_flow.py, done as a user does it, shared by the card tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

FLOWS = Path(__file__).parent.parent / "flows"


def run_card_flow(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python tests/flows/card_flow.py ARGS`` in ``cwd``; a browser never opens."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", BROWSER="true")
    env.pop("DASKFLOW_DEBUG", None)
    return subprocess.run([sys.executable, str(FLOWS / "card_flow.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=240, env=env)


class CardRun:
    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.result = run_card_flow(cwd, "run")
        from daskflow.client import Flow, namespace
        namespace(None)
        self.run = Flow("CardFlow", _root=str(cwd / ".daskflow")).latest_run

    def task(self, step: str) -> Any:
        return self.run[step].task

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_card_flow(self.cwd, *args)


@pytest.fixture(scope="session")
def card_run(tmp_path_factory: pytest.TempPathFactory) -> CardRun:
    done = CardRun(tmp_path_factory.mktemp("cards"))
    assert done.result.returncode == 0, done.result.stdout + done.result.stderr
    return done
