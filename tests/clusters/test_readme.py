"""The steps to add a backend in daskflow/clusters/README.md, followed as written."""

from __future__ import annotations

import re
import types
from pathlib import Path

import dask.config
import pytest
import yaml

from daskflow.clusters import ResourceRequest, get_backend, registry

README = Path(__file__).parents[2] / "daskflow" / "clusters" / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), re.DOTALL)


def test_the_readme_backend_example_runs_as_written(monkeypatch) -> None:
    """Its YAML block, its class and its registry entry make a working ``pbs`` backend."""
    jobqueue = pytest.importorskip("dask_jobqueue")
    import textwrap
    [settings] = blocks("yaml")
    code, entry = blocks("python")
    module = types.ModuleType("daskflow.clusters.pbs")  # where step 2 puts the file
    module.__package__ = "daskflow.clusters"
    exec(compile(textwrap.dedent(code), "README.md", "exec"), module.__dict__)
    monkeypatch.setitem(__import__("sys").modules, "daskflow.clusters.pbs", module)
    table = eval(f"{{{textwrap.dedent(entry).strip().rstrip(',')}}}")
    monkeypatch.setattr(registry, "known_backends", {**registry.known_backends, **table})
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))  # its cache too
    block = yaml.safe_load(textwrap.dedent(settings))["cluster"]
    with dask.config.set({"daskflow.cluster.pbs": block["pbs"]}):
        backend = get_backend("pbs", queue="short")
        assert backend.shares_filesystem is True
        request = ResourceRequest(cpu=2, workers=3, env={"MODE": "it's fast"})
        kwargs = backend.cluster_kwargs(request, name="daskflow-pbs")
    script = jobqueue.PBSCluster.job_cls(scheduler="tcp://127.0.0.1:8786", name="x",
                                         **kwargs).job_script()
    assert "#PBS -q short" in script and "#PBS -N daskflow-pbs" in script
    assert "export MODE='it'\"'\"'s fast'" in script  # the step's environment
    assert "--memory-limit 4.00GiB" in script         # worker_memory from the YAML block
