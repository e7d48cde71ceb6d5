"""Fixtures for the report tests: real runs of a flow file, and a real headless Chromium.

A browser test needs Debian's chromium (``.ci/setup-browser.sh`` installs it) and
Playwright; without them it is skipped, unless ``DASKFLOW_REQUIRE_SERVICES=1``
(as in CI), which makes a missing browser a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FLOWS = Path(__file__).parent.parent / "flows"
CHROMIUM = os.environ.get("DASKFLOW_CHROMIUM", "/usr/bin/chromium")
# Root may not sandbox; no GPU, network chatter or first-run screens in CI.
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: opens pages in headless Chromium (skipped without it unless "
                   "DASKFLOW_REQUIRE_SERVICES=1)")


def require(what: str, available: bool, hint: str) -> None:
    """Skip when a service is missing, or fail when CI says it must be there."""
    if available:
        return
    message = f"{what} is not available: {hint}"
    if os.environ.get("DASKFLOW_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (DASKFLOW_REQUIRE_SERVICES=1)")
    pytest.skip(message)


def run_flow_file(flow: str, *args: str, cwd: Path,
                  timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """``python tests/flows/<flow> <args>`` in ``cwd``, as a user runs it."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("DASKFLOW_DEBUG", None)
    return subprocess.run([sys.executable, str(FLOWS / flow), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=env)


def latest_run(cwd: Path, flow_name: str) -> Any:
    from daskflow.client import Flow, namespace

    namespace(None)
    flow = Flow(flow_name, _root=str(cwd / ".daskflow"))
    run = flow.latest_run
    assert run is not None
    return run


_SHARED: dict[str, Any] = {}   # the session's one browser, whichever folder asks first


@pytest.fixture(scope="session")
def chromium(request: pytest.FixtureRequest) -> Any:
    """A headless Chromium (Debian's, through Playwright), shared by the session.

    tests/dashboard takes this fixture too, and pytest makes it a fixture of its own
    there; Playwright's sync API runs once per thread, so both hand out one browser,
    closed when the session ends."""
    if "browser" not in _SHARED:
        require("Chromium", os.path.exists(CHROMIUM),
                f"{CHROMIUM} is missing; run `bash .ci/setup-browser.sh`")
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            require("Playwright", False,
                    "pip install playwright (or bash .ci/setup-browser.sh)")
        playwright = sync_playwright().start()
        request.config.add_cleanup(playwright.stop)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        request.config.add_cleanup(browser.close)   # before playwright stops (last in)
        _SHARED["browser"] = browser
    return _SHARED["browser"]


class Page:
    """A browser tab that records console errors, page errors and network requests."""

    def __init__(self, browser: Any, width: int = 1280, height: int = 900) -> None:
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("requestfailed", lambda r: self.errors.append(f"requestfailed: {r.url}"))
        # Offline: anything that is not the file itself (or inline data) is refused.
        self.page.route("**/*", self._route)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console.error: {message.text}")
        elif message.type == "warning":
            self.warnings.append(f"console.warning: {message.text}")

    def _route(self, route: Any) -> None:
        url = route.request.url
        self.requests.append(url)
        if url.startswith(("file://", "data:", "blob:")):
            route.continue_()
        else:
            route.abort()

    def open(self, path: str | os.PathLike) -> Any:
        self.page.goto(Path(path).resolve().as_uri())
        self.page.wait_for_load_state("load")
        return self.page

    def external_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(("file://", "data:", "blob:"))]

    def close(self) -> None:
        self.page.close()


@pytest.fixture
def tab(chromium: Any) -> Iterator[Page]:
    page = Page(chromium)
    yield page
    page.close()


@pytest.fixture
def tmux() -> str:
    path = shutil.which("tmux")
    require("tmux", path is not None, "apt-get install tmux (or bash .ci/setup-browser.sh)")
    assert path is not None
    return path


@pytest.fixture
def services():
    """``services(what, available, hint)``: skip, or fail in CI, when one is missing."""
    return require


class DemoRun:
    """One run of tests/flows/report_demo.py, done as a user does it."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.cwd = cwd
        top = [a for a in args if a == "--quiet"]  # an option of the group, not of run
        rest = [a for a in args if a != "--quiet"]
        self.result = run_flow_file("report_demo.py", *top, "run", *rest, cwd=cwd)
        self.run = latest_run(cwd, "ReportDemoFlow")
        from daskflow.runtime import load_flow
        self.graph = load_flow(FLOWS / "report_demo.py")._flow_graph()

    def attempts(self) -> list[tuple[str, str, int]]:
        """(step, task id, attempt) of every attempt, read with the client API."""
        return [(step.id, task.id, attempt) for step in self.run for task in step
                for attempt in task.attempts]


@pytest.fixture(scope="session")
def demo_ok(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    demo = DemoRun(tmp_path_factory.mktemp("demo_ok"), "--width", "5", "--nap", "0.1",
                   "--tag", "nightly")
    assert demo.result.returncode == 0, demo.result.stdout + demo.result.stderr
    return demo


@pytest.fixture(scope="session")
def demo_failed(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """Split 1 of the foreach raises; the run fails there."""
    demo = DemoRun(tmp_path_factory.mktemp("demo_failed"), "--width", "4", "--nap", "0.2",
                   "--fail", "1")
    assert demo.result.returncode == 1, demo.result.stdout + demo.result.stderr
    return demo


@pytest.fixture(scope="session")
def demo_wide(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """A foreach of 1,000 tasks."""
    demo = DemoRun(tmp_path_factory.mktemp("demo_wide"), "--width", "1000", "--nap", "0",
                   "--max-num-splits", "1000", "--quiet")
    assert demo.result.returncode == 0, demo.result.stdout + demo.result.stderr
    return demo
