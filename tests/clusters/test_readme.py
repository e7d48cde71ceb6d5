"""The steps to add a backend in daskflow/clusters/README.md, followed as written.

The README's blocks become a real ``pbs/`` folder (written to a temporary folder
that is put on ``daskflow.clusters``' package path, as if it were in the source
tree), its YAML block the settings and price, its registry line an entry of the
table. Then the new backend, with no file outside its folder, translates a request,
prices it, and shows up in ``daskflow clusters list`` / ``gc``.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import sys
import textwrap
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
    for module in [m for m in sys.modules if m.startswith("daskflow.clusters.pbs")]:
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
def pbs_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``qsub`` and ``qdel`` on PATH. PBS cannot run here: this ``qsub`` runs the job
    script on this machine at once, in a session of its own (what a one-node PBS with a
    free slot does), and prints its id; ``qdel`` kills that session."""
    bin_dir = tmp_path / "pbs-bin"
    bin_dir.mkdir()
    scripts = {
        "qsub": '#!/bin/sh\nscript=$(cat "$1")\n'
                'setsid sh -c "$script" </dev/null >/dev/null 2>&1 &\necho "$!.here"\n',
        "qdel": '#!/bin/sh\nfor job in "$@"; do kill -KILL -- "-${job%%.*}" 2>/dev/null; done\n'
                'exit 0\n',
    }
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def test_the_readme_backend_shows_up_in_clusters_list_and_gc(pbs, pbs_here) -> None:
    """A real cluster of the README's backend, whose driver counts as gone: listed with its
    labels while it runs, closed by ``gc``, listed no more."""
    import json
    import subprocess

    from click.testing import CliRunner
    from distributed import Client

    from daskflow.cli import daskflow_command
    from daskflow.clusters.labels import ClusterLabels, labelled

    def clusters(*args: str) -> str:
        done = CliRunner().invoke(daskflow_command, ["clusters", *args, "--backend", "pbs"])
        assert done.exit_code == 0, done.output
        return done.output

    def listed() -> list[dict]:
        return [c for c in json.loads(clusters("list", "--json"))["clusters"]
                if c["run"] == "PBSFlow/12"]

    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid: a driver that died
    labels = ClusterLabels(run="PBSFlow/12", step="train", user="ana", version="0.1.0",
                           driver=f"{socket.gethostname()}:{gone.pid}")
    with labelled(labels), get_backend("pbs").open(ResourceRequest(cpu=1, memory=GiB)) \
            as cluster:
        with Client(cluster) as client:
            assert client.submit(sum, [1, 2]).result(timeout=30) == 3  # a worker of PBS's
        [found] = listed()
        assert (found["backend"], found["step"], found["user"]) == ("pbs", "train", "ana")
        assert found["run_alive"] is False and found["why"] == f"driver pid {gone.pid} gone"
        name = found["name"]
        assert f"would close pbs cluster {name} (run PBSFlow/12" in clusters("gc", "--dry-run")
        done = clusters("gc")
        assert f"closed pbs cluster {name} (run PBSFlow/12, step train" in done
        assert "1 cluster(s) closed." in done
        assert listed() == []
    assert listed() == []
