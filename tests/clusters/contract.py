"""The lifecycle every cluster backend must honour (as fsspec's ``tests/abstract``).

A backend's test class subclasses :class:`ClusterContract`, names the backend
and its options, and says how to find what of a cluster might be left
(``remaining``). The tests start a real cluster with ``backend.open(request)``,
run a real task on it, check that the workers have the requested size and
environment (``request.env``), and
check that nothing is left after success, an exception, Ctrl-C, a close with a
task still running (what ``@timeout`` does), and a SIGKILLed driver.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

from daskflow.clusters import (
    ClusterBackend,
    ResourceRequest,
    ResourceRequestError,
    get_backend,
)

MiB = 2**20
DRIVER = Path(__file__).with_name("sigkill_driver.py")
#: what every worker must start with; the quote, the "$" and the space test the quoting
#: of backends that write the variables into a shell script (SLURM's job script)
ENV = {"DASKFLOW_TEST_MODE": "it's $HOME; not expanded", "DASKFLOW_TEST_LEVEL": "2"}


def evidence(cluster: Any, client: Any) -> dict[str, Any]:
    """What a test looks for after teardown, gathered independently of the backend's own check."""
    return {"pids": sorted(client.run(os.getpid).values()),
            "job_name": getattr(cluster, "job_name", None)}


def alive_pids(pids: list[int]) -> list[str]:
    import psutil
    found = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                found.append(f"pid {pid}")
        except psutil.Error:
            pass
    return found


def wait_until_gone(remaining, found: dict[str, Any], timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        left = remaining(found)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


class ClusterContract:
    """Subclass and set ``backend_name`` (and ``backend_options``, ``request``, ...)."""

    backend_name: ClassVar[str]
    backend_options: ClassVar[dict[str, Any]] = {}
    request: ClassVar[ResourceRequest] = ResourceRequest(cpu=1, memory=400 * MiB, workers=2)
    #: a request this backend must refuse before starting anything
    too_big: ClassVar[ResourceRequest] = ResourceRequest(cpu=1, memory=2**50)
    #: relative slack between the requested memory and the worker's memory_limit
    memory_tolerance: ClassVar[float] = 0.0
    #: how long after a SIGKILLed driver its workers may linger
    sigkill_grace: ClassVar[float] = 30.0
    #: the environment every worker must start with
    env: ClassVar[dict[str, str]] = ENV

    def backend(self) -> ClusterBackend:
        return get_backend(self.backend_name, **self.backend_options)

    def remaining(self, found: dict[str, Any]) -> list[str]:
        """What of the cluster behind ``found`` (see :func:`evidence`) still runs."""
        return alive_pids(found["pids"])

    def check_worker(self, client: Any) -> None:
        """Backend-specific checks of a running worker (its environment, its job)."""

    # -- the contract ----------------------------------------------------------------
    def test_runs_a_task_on_workers_of_the_requested_size_and_environment(self) -> None:
        from distributed import Client
        request = dataclasses.replace(self.request, env=self.env)
        with self.backend().open(request) as cluster, Client(cluster) as client:
            assert client.submit(lambda x: x + 1, 41).result(timeout=60) == 42
            # a lambda, run there: os.environ.get itself would pickle the driver's environ
            names = list(self.env)
            seen = client.run(lambda: {name: os.environ.get(name) for name in names})
            assert len(seen) == request.workers
            assert all(env == self.env for env in seen.values()), seen
            workers = client.scheduler_info(n_workers=-1)["workers"]
            assert len(workers) == request.workers
            for info in workers.values():
                assert info["nthreads"] == request.threads
                if request.memory is not None:
                    assert info["memory_limit"] == pytest.approx(
                        request.memory, rel=self.memory_tolerance)
            self.check_worker(client)
            found = evidence(cluster, client)
        assert self.remaining(found) == []

    def test_nothing_left_after_an_exception(self) -> None:
        from distributed import Client
        found: dict[str, Any] = {}
        with pytest.raises(ZeroDivisionError):
            with self.backend().open(self.request) as cluster, Client(cluster) as client:
                found = evidence(cluster, client)
                client.submit(lambda: 1 / 0).result(timeout=60)
        assert found["pids"]
        assert self.remaining(found) == []

    def test_nothing_left_after_keyboard_interrupt(self) -> None:
        from distributed import Client
        found: dict[str, Any] = {}
        with pytest.raises(KeyboardInterrupt):
            with self.backend().open(self.request) as cluster, Client(cluster) as client:
                found = evidence(cluster, client)
                raise KeyboardInterrupt
        assert found["pids"]
        assert self.remaining(found) == []

    def test_nothing_left_after_closing_with_a_task_running(self) -> None:
        """What @timeout does: give up on a task that still runs, and close."""
        from distributed import Client
        found: dict[str, Any] = {}
        with pytest.raises(TimeoutError):
            with self.backend().open(self.request) as cluster, Client(cluster) as client:
                found = evidence(cluster, client)
                future = client.submit(time.sleep, 300)
                deadline = time.monotonic() + 30
                while not any(client.processing().values()):
                    assert time.monotonic() < deadline, "the task never started"
                    time.sleep(0.05)
                future.result(timeout=0.2)
        assert self.remaining(found) == []

    def test_listed_with_its_labels_while_it_runs(self) -> None:
        """``daskflow clusters list`` finds it from the backend, labelled; not after close."""
        from daskflow.clusters.inventory import live_clusters
        from daskflow.clusters.labels import ClusterLabels, labelled, this_driver
        labels = ClusterLabels(run="ListedFlow/1", step="train", user="ana",
                               version="0.1.0", driver=this_driver())
        with labelled(labels), self.backend().open(self.request):
            found, notes = live_clusters([self.backend_name])
            assert notes == []
            mine_only = [c for c in found if c.labels.run == "ListedFlow/1"]
            assert len(mine_only) == 1, f"listed: {found!r}"
            [mine] = mine_only
            assert (mine.labels.step, mine.labels.user) == ("train", "ana")
            assert mine.run_alive is True  # no run record here: its driver (this process)
        assert [c.name for c in live_clusters([self.backend_name])[0]
                if c.name == mine.name] == []

    def test_refuses_a_request_too_big_before_starting(self) -> None:
        with pytest.raises(ResourceRequestError) as info:
            with self.backend().open(self.too_big):
                pytest.fail("a cluster started for a request too big for the backend")
        self.check_refusal(str(info.value))

    def check_refusal(self, message: str) -> None:
        """The refusal must say what exists; subclasses check their backend's numbers."""
        assert "Ask for less" in message or "ask for less" in message.lower()

    def test_nothing_left_long_after_the_driver_is_sigkilled(self, tmp_path: Path) -> None:
        """The backstop: a driver killed with no chance to clean up leaves nothing for long."""
        import dask.config
        settings = {key: dask.config.get(key) for key in (
            "daskflow.cluster.slurm.log-directory", "daskflow.cluster.idle-timeout")}
        args = [sys.executable, str(DRIVER), self.backend_name, json.dumps(self.backend_options),
                json.dumps(vars_of(self.request)), json.dumps(settings)]
        driver = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, cwd=tmp_path)
        try:
            line = driver.stdout.readline()  # type: ignore[union-attr]
            if not line:
                pytest.fail(f"the driver died before starting its cluster: "
                            f"{driver.stderr.read()[-2000:]}")  # type: ignore[union-attr]
            found = json.loads(line)
            assert found["pids"]
            os.kill(driver.pid, signal.SIGKILL)
            driver.wait(10)
        finally:
            if driver.poll() is None:
                driver.kill()
            for stream in (driver.stdout, driver.stderr):
                stream.close()  # type: ignore[union-attr]
        assert wait_until_gone(self.remaining, found, self.sigkill_grace) == []


def vars_of(request: ResourceRequest) -> dict[str, Any]:
    return {k: getattr(request, k) for k in ("cpu", "memory", "gpu", "disk", "workers")}
