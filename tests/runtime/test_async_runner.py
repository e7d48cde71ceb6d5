"""Metaflow's async runner API: runs in subprocesses, awaited from one event loop."""

from __future__ import annotations

import asyncio

import pytest

from daskflow import NBRunner, Runner
from daskflow.exceptions import FlowDefinitionError

from ..conftest import FLOWS


def run_loop(coro):
    """``asyncio.run`` in a thread of its own: the test process may already run an event
    loop in its main thread (Playwright's, from the browser tests), as a notebook does."""
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def test_two_runs_awaited_concurrently_from_one_event_loop(workdir):
    async def both():
        first = await Runner(str(FLOWS / "linear_params.py"), tags=["a"]).async_run(
            alpha=2.0, name="async")
        second = await Runner(str(FLOWS / "failing.py")).async_run()
        assert {first.status, second.status} <= {"running", "successful", "failed"}
        lines = [line async for _, line in first.stream_log("stdout")]
        await asyncio.gather(first.wait(), second.wait())
        return first, second, lines

    first, second, lines = run_loop(both())
    assert (first.status, first.returncode) == ("successful", 0)
    assert (second.status, second.returncode) == ("failed", 1)
    assert any("hello async" in line for line in lines)
    assert "hello async" in first.stdout
    assert "ValueError: the answer is not 42" in second.stderr
    assert first.run.successful and first.run.data.summary["scaled"] == [2.0, 4.0, 6.0]
    assert "a" in first.run.user_tags
    assert not second.run.successful
    assert first.run.id != second.run.id
    first.cleanup()
    second.cleanup()


def test_async_resume_and_bad_input(workdir):
    async def resumed():
        failed = await Runner(str(FLOWS / "failing.py")).async_run()
        await failed.wait()
        again = await Runner(str(FLOWS / "failing.py")).async_resume()
        await again.wait()
        return failed, again

    failed, again = run_loop(resumed())
    assert again.run.origin_run_id == failed.run.id
    from daskflow.exceptions import ParameterError
    with pytest.raises(ParameterError):
        run_loop(Runner(str(FLOWS / "linear_params.py")).async_run(nope=1))


def test_nbrunner_refuses_what_is_not_a_flow_class():
    with pytest.raises(TypeError, match="FlowSpec subclass"):
        NBRunner("flow.py")


def test_async_run_of_a_class_of_the_running_script_is_refused(workdir):
    import sys
    import types

    from daskflow.runtime.flowfile import flow_file_of
    flow_cls = types.new_class("MainFlow")
    flow_cls.__module__ = "__main__"
    graph = types.SimpleNamespace(file=sys.argv[0])
    with pytest.raises(FlowDefinitionError, match="give its file instead"):
        flow_file_of(flow_cls, graph)
