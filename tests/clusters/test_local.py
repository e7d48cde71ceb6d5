"""The local backend: pure translation, refusals, and the shared lifecycle contract."""

from __future__ import annotations

import logging

import pytest

from daskflow.clusters import (
    BackendNotInstalledError,
    LocalBackend,
    ResourceRequest,
    ResourceRequestError,
    WorkerKilledError,
    get_backend,
)
from daskflow.clusters.local import machine_cores, machine_memory

from .contract import ClusterContract, MiB


class TestLocalContract(ClusterContract):
    backend_name = "local"
    request = ResourceRequest(cpu=1, memory=400 * MiB, workers=2)
    sigkill_grace = 15.0

    def check_refusal(self, message: str) -> None:
        super().check_refusal(message)
        assert "this machine has" in message and "GiB" in message


class TestDottedPathContract(ClusterContract):
    """The escape hatch holds to the same contract: any Dask cluster class by dotted path."""

    backend_name = "distributed.LocalCluster"
    backend_options = {"processes": True, "silence_logs": logging.CRITICAL}
    request = ResourceRequest(cpu=1, memory=300 * MiB, workers=1)
    sigkill_grace = 15.0

    def test_refuses_a_request_too_big_before_starting(self) -> None:
        pytest.skip("a cluster class given by dotted path is not checked before it starts")


# -- pure translation ----------------------------------------------------------------------
@pytest.mark.fast
def test_kwargs_size_each_worker_as_requested() -> None:
    kwargs = LocalBackend().cluster_kwargs(
        ResourceRequest(cpu=2, memory=3 * 2**30, workers=4), name="daskflow-x")
    assert kwargs["n_workers"] == 4
    assert kwargs["threads_per_worker"] == 2
    assert kwargs["memory_limit"] == 3 * 2**30
    assert kwargs["processes"] is True
    assert kwargs["name"] == "daskflow-x"
    assert kwargs["dashboard_address"] == "127.0.0.1:0"


@pytest.mark.fast
def test_kwargs_round_fractional_cpu_up_and_default_memory_from_config() -> None:
    import dask.config
    kwargs = LocalBackend().cluster_kwargs(ResourceRequest(cpu=0.5))
    assert kwargs["threads_per_worker"] == 1
    assert kwargs["memory_limit"] == "auto"
    with dask.config.set({"daskflow.local.memory-limit": "1GiB"}):
        assert LocalBackend().cluster_kwargs(ResourceRequest())["memory_limit"] == "1GiB"
    assert LocalBackend(memory_limit="2GiB").cluster_kwargs(
        ResourceRequest())["memory_limit"] == "2GiB"


@pytest.mark.fast
def test_kwargs_give_every_nanny_the_requests_environment() -> None:
    request = ResourceRequest(workers=2, env={"MODE": "fast", "LEVEL": 2})
    assert LocalBackend().cluster_kwargs(request)["env"] == {"LEVEL": "2", "MODE": "fast"}
    assert "env" not in LocalBackend().cluster_kwargs(ResourceRequest())


@pytest.mark.fast
def test_kwargs_for_gpus_pin_one_device_per_worker(monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3,5")
    backend = LocalBackend()
    request = ResourceRequest(gpu=1, workers=2)
    assert backend.cluster_class(request) == "dask_cuda:LocalCUDACluster"
    kwargs = backend.cluster_kwargs(request)
    assert kwargs["CUDA_VISIBLE_DEVICES"] == "2,3"
    assert "processes" not in kwargs  # LocalCUDACluster always uses processes


@pytest.mark.fast
def test_unknown_option_lists_the_allowed_ones() -> None:
    with pytest.raises(Exception, match="unknown option 'memory_limt'.*memory_limit"):
        LocalBackend(memory_limt="1GiB")


@pytest.mark.fast
@pytest.mark.parametrize("value, delay", [(None, None), ("", None), ("0", 0.0), ("1s", 1.0),
                                          ("500ms", 0.5)])
def test_dasks_pages_load_at_the_first_visit_or_after_the_delay_given(value, delay) -> None:
    import dask.config
    with dask.config.set({"daskflow.local.dashboard-delay": value}):
        assert LocalBackend().dashboard_delay() == delay


@pytest.mark.fast
@pytest.mark.parametrize("value", ["soon", "-", "1 fortnight"])
def test_a_dashboard_delay_that_is_no_duration_is_one_clear_line(value) -> None:
    import dask.config

    from daskflow.exceptions import ConfigurationError
    with dask.config.set({"daskflow.local.dashboard-delay": value}), \
            pytest.raises(ConfigurationError, match="give a duration such as 1s") as info:
        LocalBackend().dashboard_delay()
    assert "\n" not in str(info.value)


# -- refusals -------------------------------------------------------------------------------
@pytest.mark.fast
def test_refuses_more_memory_than_the_machine() -> None:
    with pytest.raises(ResourceRequestError, match="this machine has") as info:
        LocalBackend().check(ResourceRequest(memory=machine_memory() + 2**30))
    assert "backend='slurm'" in str(info.value)


@pytest.mark.fast
def test_refuses_more_cores_than_the_machine() -> None:
    with pytest.raises(ResourceRequestError, match=f"this machine has {machine_cores()}"):
        LocalBackend().check(ResourceRequest(cpu=machine_cores() + 1))


@pytest.mark.fast
def test_refuses_more_disk_than_is_free() -> None:
    with pytest.raises(ResourceRequestError, match="free"):
        LocalBackend().check(ResourceRequest(disk=2**60))


@pytest.mark.fast
def test_refuses_gpus_it_does_not_have(monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(ResourceRequestError, match="0 NVIDIA GPU"):
        LocalBackend().check(ResourceRequest(gpu=1))
    with pytest.raises(ResourceRequestError, match="one GPU"):
        LocalBackend().check(ResourceRequest(gpu=2))


@pytest.mark.fast
def test_gpus_without_dask_cuda_say_what_to_install(monkeypatch) -> None:
    import sys
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setitem(sys.modules, "dask_cuda", None)  # as if not installed
    with pytest.raises(BackendNotInstalledError, match=r"pip install .daskflow\[gpu\]"):
        LocalBackend().check(ResourceRequest(gpu=1))


# -- a worker that dies -----------------------------------------------------------------------
def test_a_worker_killed_for_memory_is_reported_as_such() -> None:
    from distributed import Client

    def hog() -> int:
        import numpy as np
        blocks = []
        for _ in range(40):  # 40 x 50 MiB, far over the 300 MiB limit
            blocks.append(np.ones(50 * MiB // 8))
        return len(blocks)

    with pytest.raises(WorkerKilledError) as info:
        with get_backend("local").open(ResourceRequest(memory=300 * MiB)) as cluster, \
                Client(cluster) as client:
            client.submit(hog).result(timeout=120)
    assert info.value.cause == "out-of-memory"
    assert "ran out of memory" in str(info.value) and "300 MiB" in str(info.value)
    assert type(info.value.__cause__).__name__ == "KilledWorker"


def _get(url: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _once_loaded(link: str) -> tuple[int, str]:
    """What ``link`` answers once it stops answering the starting page (at most 30 s)."""
    import time
    deadline = time.monotonic() + 30
    code, body = _get(link)
    while code == 503 and time.monotonic() < deadline:
        time.sleep(0.2)
        code, body = _get(link)
    return code, body


def test_the_dashboard_link_answers_at_once_and_its_pages_follow() -> None:
    import dask.config
    with dask.config.set({"daskflow.local.dashboard-delay": "1s"}), \
            get_backend("local").open(ResourceRequest(cpu=1, workers=1)) as cluster:
        link = cluster.dashboard_link
        assert link.startswith("http://127.0.0.1:") and link.endswith("/status")
        code, body = _get(link)  # before the pages: a page that reloads itself
        assert code == 503 and 'http-equiv="refresh"' in body
        assert _get(link.replace("/status", "/health")) == (200, "ok")
        code, body = _once_loaded(link)
        assert code == 200 and "bokeh" in body.lower()  # Dask's own status page
        code, body = _get(link.replace("/status", "/workers"))
        assert code == 200 and "bokeh" in body.lower()


CLOSE_WHILE_LOADING = '''
import importlib.abc, importlib.machinery, sys, threading
import dask.config
from daskflow.clusters import get_backend
from daskflow.clusters.request import ResourceRequest

loading, release = threading.Event(), threading.Event()

class HoldTheDashboard(importlib.abc.MetaPathFinder):
    """Bokeh's dashboard module: its code runs once the cluster has closed."""
    def find_spec(self, name, path, target=None):
        if name != "distributed.dashboard.scheduler":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        real = spec.loader

        class Held(importlib.abc.Loader):
            def create_module(self, spec):
                return real.create_module(spec)

            def exec_module(self, module):  # under the module's own lock only
                loading.set()
                release.wait(60)
                real.exec_module(module)

        spec.loader = Held()
        return spec

sys.meta_path.insert(0, HoldTheDashboard())
with dask.config.set({"daskflow.local.dashboard-delay": "0s"}), \\
        get_backend("local").open(ResourceRequest(cpu=1, workers=1)) as cluster:
    assert loading.wait(60)
    app = cluster.scheduler.http_application
    rules = len(app.default_router.rules)
loader = cluster.daskflow_dashboard_pages.loader
print("closed:", cluster.scheduler.status.name, "loading:", loader.is_alive())
release.set()
loader.join(60)
print("loader ended:", not loader.is_alive(), "pages added:", len(app.default_router.rules) != rules)
'''


def test_dasks_own_pages_load_when_first_asked_for_and_not_before() -> None:
    import time

    with get_backend("local").open(ResourceRequest(cpu=1, workers=1)) as cluster:
        link = cluster.dashboard_link
        time.sleep(1.5)  # longer than any delay before: nobody asked, nothing loaded
        assert cluster.daskflow_dashboard_pages.loader is None
        assert _get(link.replace("/status", "/health")) == (200, "ok")
        assert cluster.daskflow_dashboard_pages.loader is None  # not one of Dask's pages
        code, body = _get(link.replace("/status", "/workers"))  # the first visit
        assert code == 503 and 'http-equiv="refresh"' in body
        code, body = _once_loaded(link)
        assert code == 200 and "bokeh" in body.lower()


def test_the_list_of_dasks_plots_loads_them_and_lists_them() -> None:
    """dask-labextension's panel reads ``/individual-plots.json``: the first ask loads
    Dask's pages and is answered with them, not with an empty list."""
    import json

    with get_backend("local").open(ResourceRequest(cpu=1, workers=1)) as cluster:
        plots = cluster.dashboard_link.replace("/status", "/individual-plots.json")
        assert cluster.daskflow_dashboard_pages.loader is None
        code, body = _get(plots)
        assert code == 200
        listed = json.loads(body)
        assert listed.get("Individual Task Stream") == "/individual-task-stream", listed


AT_ONCE_WITH_BOKEH_LOADED = '''
import time
import dask.config
import distributed.dashboard.scheduler  # loaded already, as for a notebook's second cluster
from daskflow.clusters import get_backend
from daskflow.clusters.request import ResourceRequest
for _ in range(4):
    with dask.config.set({"daskflow.local.dashboard-delay": "0s"}), \\
            get_backend("local").open(ResourceRequest(cpu=1, workers=1)) as cluster:
        scheduler = cluster.scheduler
        deadline = time.monotonic() + 10
        while scheduler._daskflow_starting_rule in scheduler.http_application.default_router.rules \\
                and time.monotonic() < deadline:
            time.sleep(0.05)
        print("starting page gone:", time.monotonic() < deadline)
'''


def test_pages_loaded_at_once_replace_the_starting_page(tmp_path) -> None:
    """With no delay and Bokeh imported already, the pages may be added as soon as the
    cluster starts: the starting page is in place before, and goes when they come."""
    import subprocess
    import sys
    script = tmp_path / "at_once.py"
    script.write_text(AT_ONCE_WITH_BOKEH_LOADED)
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("\n").count("starting page gone: True") == 4, result.stdout


def test_a_cluster_closed_while_its_pages_load_leaves_the_loader_to_end_alone(
        tmp_path) -> None:
    """A run that ends as its dashboard's pages load (Bokeh's import, most of a second)
    does not wait for them: the loader, left alone, finds the scheduler closed, adds
    nothing to it and ends."""
    import subprocess
    import sys
    script = tmp_path / "close_while_loading.py"
    script.write_text(CLOSE_WHILE_LOADING)
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "closed: closed loading: True" in result.stdout, result.stdout
    assert "loader ended: True pages added: False" in result.stdout, result.stdout
