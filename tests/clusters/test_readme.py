"""The steps to add a backend in daskflow/clusters/README.md, followed as written.

The README's blocks become a real ``pbs/`` folder (written to a temporary folder
that is put on ``daskflow.clusters``' package path, as if it were in the source
tree), its YAML block the settings and price, its registry line an entry of the
table; the new backend, with no file outside its folder, translates a request and
prices it. PBS cannot run here, so a second backend made by the same steps wraps this
machine's real SLURM under a name of its own, and its cluster shows up in
``daskflow clusters list``, is closed by ``gc`` and leaves no job behind.
"""

from __future__ import annotations

import re
import socket
import sys
import textwrap
import time
from pathlib import Path

import dask.config
import pytest
import yaml

import daskflow.clusters
from daskflow.clusters import ResourceRequest, get_backend, registry

README = Path(__file__).parents[2] / "daskflow" / "clusters" / "README.md"
GiB = 2**30


def blocks(language: str) -> list[str]:
    return [textwrap.dedent(block) for block in
            re.findall(rf"```{language}\n(.*?)```", README.read_text(), re.DOTALL)]


@pytest.fixture
def pbs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The README's ``pbs`` backend: its folder, its settings and price, its registry line."""
    pytest.importorskip("dask_jobqueue")
    init, code, entry = blocks("python")
    folder = tmp_path / "clusters" / "pbs"   # step 2: clusters/pbs/
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(init)
    (folder / "backend.py").write_text(code)
    monkeypatch.setattr(daskflow.clusters, "__path__",
                        [*daskflow.clusters.__path__, str(folder.parent)])
    table = eval(f"{{{entry.strip().rstrip(',')}}}")  # step 4
    monkeypatch.setattr(registry, "known_backends", {**registry.known_backends, **table})
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))  # its cache too
    [settings] = blocks("yaml")
    block = yaml.safe_load(settings)["cluster"]  # step 1
    with dask.config.set({"daskflow.cluster.pbs": block["pbs"],
                          "daskflow.cluster.prices.pbs": block["prices"]["pbs"]}):
        yield block
    for module in [m for m in sys.modules
                   if m == "daskflow.clusters.pbs" or m.startswith("daskflow.clusters.pbs.")]:
        del sys.modules[module]


@pytest.mark.fast
def test_the_readme_backend_translates_and_prices_a_request(pbs) -> None:
    """Its class and settings make a working ``pbs`` backend, priced from its YAML line."""
    import dask_jobqueue
    backend = get_backend("pbs", queue="short")
    assert type(backend).__module__ == "daskflow.clusters.pbs.backend"  # from its folder
    assert backend.shares_filesystem is True
    request = ResourceRequest(cpu=2, workers=3, env={"MODE": "it's fast"})
    kwargs = backend.cluster_kwargs(request, name="daskflow-pbs")
    script = dask_jobqueue.PBSCluster.job_cls(scheduler="tcp://127.0.0.1:8786", name="x",
                                              **kwargs).job_script()
    assert "#PBS -q short" in script and "#PBS -N daskflow-pbs" in script
    assert "export MODE='it'\"'\"'s fast'" in script  # the step's environment
    assert "--memory-limit 4.00GiB" in script         # worker_memory from the YAML block
    # cost: 2 cores and 4 GiB (the block's default memory) at the block's rates
    rates = pbs["prices"]["pbs"]
    assert backend.hourly_price(request) == pytest.approx(
        rates["worker-hour"] + 2 * rates["cpu-hour"] + 4 * rates["gib-hour"])
    assert backend.hourly_price(ResourceRequest(gpu=1, memory=GiB)) == pytest.approx(
        rates["cpu-hour"] + rates["gib-hour"] + rates["gpu-hour"])


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, require_slurm):
    """A backend written by the README's steps for a service that runs here: a lab's
    SLURM queue through dask-jobqueue under a name of its own (``lab``), with nothing
    but its folder, its settings and price, and its registry line (PBS cannot run here).
    Its clusters are listed and ended the README's default way: this machine's records."""
    monkeypatch.chdir(tmp_path)  # dask-jobqueue writes its jobs' logs (slurm-N.out) here
    folder = tmp_path / "clusters" / "lab"   # step 2: clusters/lab/
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(
        '"""A lab\'s SLURM queue."""\n\nfrom .backend import LabBackend\n')
    (folder / "backend.py").write_text(textwrap.dedent("""
        import dask_jobqueue  # noqa: F401

        from ..base import ClusterBackend
        from ..request import export_lines

        class LabBackend(ClusterBackend):
            name = "lab"
            config_section = "cluster.lab"
            shares_filesystem = True

            def cluster_kwargs(self, request, *, name=None):
                return {"cores": request.threads, "processes": 1,
                        "memory": self.worker_memory(request),
                        "queue": self.option("queue"), "walltime": self.option("walltime"),
                        "job_name": name, "job_script_prologue": export_lines(request.env),
                        "scheduler_options": {"host": "127.0.0.1",
                                              "dashboard_address": "127.0.0.1:0"}}

            def make_cluster(self, request, *, name):
                from dask_jobqueue import SLURMCluster
                cluster = SLURMCluster(**self.cluster_kwargs(request, name=name))
                cluster.scale(jobs=request.workers)
                return cluster
        """))
    monkeypatch.setattr(daskflow.clusters, "__path__",
                        [*daskflow.clusters.__path__, str(folder.parent)])
    monkeypatch.setattr(registry, "known_backends", {
        **registry.known_backends,  # step 4
        "lab": {"class": "daskflow.clusters.lab:LabBackend",
                "err": "The lab backend needs dask-jobqueue: pip install 'daskflow[slurm]'"}})
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))
    settings = {"queue": "debug", "walltime": "00:10:00", "memory": "1GiB"}  # step 1
    with dask.config.set({"daskflow.cluster.lab": settings,
                          "daskflow.cluster.prices.lab": {"worker-hour": 0.1}}):
        yield
    for module in [m for m in sys.modules
                   if m == "daskflow.clusters.lab" or m.startswith("daskflow.clusters.lab.")]:
        del sys.modules[module]


def test_a_backend_made_by_the_readme_shows_up_in_clusters_list_gc_and_cost(lab) -> None:
    """A real cluster (SLURM jobs) of a backend made by the README's steps, whose driver
    counts as gone: priced, listed with its labels while it runs, closed by ``gc``, listed
    no more, and no job of it left in ``squeue``."""
    import json
    import subprocess

    from click.testing import CliRunner
    from distributed import Client

    from daskflow.cli import daskflow_command
    from daskflow.clusters.labels import ClusterLabels, labelled

    def clusters(*args: str) -> str:
        done = CliRunner().invoke(daskflow_command, ["clusters", *args, "--backend", "lab"])
        assert done.exit_code == 0, done.output
        return done.output

    def listed() -> list[dict]:
        return [c for c in json.loads(clusters("list", "--json"))["clusters"]
                if c["run"] == "LabFlow/12"]

    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid: a driver that died
    labels = ClusterLabels(run="LabFlow/12", step="train", user="ana", version="0.1.0",
                           driver=f"{socket.gethostname()}:{gone.pid}")
    backend = get_backend("lab")
    assert backend.hourly_price(ResourceRequest(cpu=1, memory=GiB)) == pytest.approx(0.1)
    with labelled(labels), backend.open(ResourceRequest(cpu=1, memory=GiB)) as cluster:
        with Client(cluster) as client:
            assert client.submit(sum, [1, 2]).result(timeout=60) == 3  # a SLURM job's worker
        [found] = listed()
        assert (found["backend"], found["step"], found["user"]) == ("lab", "train", "ana")
        assert found["run_alive"] is False and found["why"] == f"driver pid {gone.pid} gone"
        name = found["name"]
        assert f"would close lab cluster {name} (run LabFlow/12" in clusters("gc", "--dry-run")
        done = clusters("gc")
        assert f"closed lab cluster {name} (run LabFlow/12, step train" in done
        assert "1 cluster(s) closed." in done
        assert listed() == []
    assert listed() == []
    deadline = time.time() + 60  # a cancelled job leaves squeue a few seconds later
    while (jobs := subprocess.run(["squeue", "-h", "-n", name, "-o", "%i %T"],
                                  capture_output=True, text=True, timeout=30).stdout.split()):
        assert time.time() < deadline, f"jobs of {name} left in squeue: {jobs}"
        time.sleep(0.5)
