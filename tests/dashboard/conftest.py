"""Fixtures for the flow page: a flow run as a user runs it, read while it runs, and a
Chromium tab on a scheduler's dashboard (its own origin, nothing else)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ..remote.conftest import s3_root, stock_python  # noqa: F401  (fixtures)
from ..report.conftest import chromium  # noqa: F401  (a fixture)

FLOWS = Path(__file__).parent.parent / "flows"
#: the line a run prints when a cluster is up, with its dashboard's link
CLUSTER_LINE = re.compile(r"Cluster '(?P<name>[^']+)'(?: for step '[^']+')? "
                          r"started: .*; dashboard (?P<link>\S+)")


class RunningFlow:
    """``python tests/flows/<flow> <args>`` started in ``cwd``, its output read as it comes."""

    def __init__(self, flow: str, *args: str, cwd: Path, env: dict[str, str] | None = None):
        full = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        full.pop("DASKFLOW_DEBUG", None)
        self.process = subprocess.Popen([sys.executable, str(FLOWS / flow), *args], cwd=cwd,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, env=full)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def running(self) -> bool:
        return self.process.poll() is None

    def run_id(self, timeout: float = 120) -> str:
        """The run's id, from the line that starts it."""
        return self._find(re.compile(r"Workflow starting \(run-id (\d+)\)"), timeout)[1]

    def _find(self, pattern: re.Pattern, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                found = pattern.search(line)
                if found:
                    return found
            if not self.running() and not self.reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matches {pattern.pattern!r}:\n{self.output}")

    def cluster_link(self, name: str, timeout: float = 120) -> str:
        """The dashboard link the run printed for its cluster ``name``."""
        line = re.compile(CLUSTER_LINE.pattern.replace("(?P<name>[^']+)", re.escape(name)))
        return self._find(line, timeout)["link"]

    def wait(self, timeout: float = 240) -> int:
        code = self.process.wait(timeout)
        self.reader.join(10)
        return code

    def kill(self) -> None:
        if self.running():
            self.process.kill()
            self.process.wait(30)
        self.reader.join(10)


@pytest.fixture
def start_flow(tmp_path: Path) -> Iterator[Any]:
    """``start_flow("page_flow.py", "run", ...)``: a :class:`RunningFlow` in a fresh
    folder (killed at the end if it still runs)."""
    started: list[RunningFlow] = []

    def start(flow: str, *args: str, env: dict[str, str] | None = None) -> RunningFlow:
        running = RunningFlow(flow, *args, cwd=tmp_path, env=env)
        started.append(running)
        return running

    yield start
    for running in started:
        running.kill()


class DashboardTab:
    """A tab that may load only from one dashboard's origin, recording what went wrong."""

    def __init__(self, browser: Any, origin: str) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900},
                                           ignore_https_errors=True)
        self.page = self.context.new_page()
        self.origin = origin
        self.errors: list[str] = []
        self.elsewhere: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.route("**/*", self._route)

    def _route(self, route: Any) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" == self.origin or parts.scheme == "data":
            route.continue_()
        else:
            self.elsewhere.append(url)
            route.abort()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def dashboard_tab(chromium: Any) -> Iterator[Any]:  # noqa: F811
    """``dashboard_tab(link)``: a Chromium tab opened on ``link``, kept to its origin."""
    tabs: list[DashboardTab] = []

    def open_tab(link: str) -> DashboardTab:
        parts = urlsplit(link)
        tab = DashboardTab(chromium, f"{parts.scheme}://{parts.netloc}")
        tabs.append(tab)
        tab.page.goto(link)
        return tab

    yield open_tab
    for tab in tabs:
        tab.close()
