"""The backend registry: names, dotted paths, register_backend, entry points, install hints."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import dask.config
import pytest

from daskflow.clusters import (
    BackendNotInstalledError,
    ClusterBackend,
    DaskClusterBackend,
    LocalBackend,
    ResourceRequest,
    ResourceRequestError,
    UnknownBackendError,
    available_backends,
    get_backend,
    known_backends,
    register_backend,
    registry,
)


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch):
    """Each test registers into copies of the tables."""
    monkeypatch.setattr(registry, "known_backends", dict(registry.known_backends))
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))


def test_import_daskflow_imports_no_optional_backend() -> None:
    """Neither the optional packages nor any module of their backends' folders."""
    code = ("import sys, daskflow, daskflow.clusters, daskflow.steps; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('dask_jobqueue', 'asyncssh', 'dask_cuda', 'dask_kubernetes', "
            "'dask_cloudprovider', 'kr8s', 'kubernetes', 'jsonschema', 'boto3', "
            "'botocore', 'aiobotocore', 'moto') "
            "or m.startswith(('daskflow.clusters.slurm', 'daskflow.clusters.ssh', "
            "'daskflow.clusters.kubernetes', 'daskflow.clusters.aws'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.fast
def test_known_names_and_the_configured_default() -> None:
    assert {"local", "slurm", "ssh"} <= set(available_backends())
    assert isinstance(get_backend(), LocalBackend)
    assert isinstance(get_backend("local"), LocalBackend)
    with dask.config.set({"daskflow.cluster.backend": "slurm"}):
        assert type(get_backend()).__name__ == "SLURMBackend"


@pytest.mark.fast
def test_unknown_name_lists_known_ones_with_did_you_mean() -> None:
    with pytest.raises(UnknownBackendError) as info:
        get_backend("slurmm")
    message = str(info.value)
    assert "Unknown cluster backend 'slurmm'. Did you mean 'slurm'?" in message
    assert "Known backends: aws, aws-ec2, aws-ecs, aws-fargate, kubernetes, local, slurm, ssh." \
        in message
    assert isinstance(info.value, LookupError)


@pytest.mark.fast
def test_a_missing_optional_dependency_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)  # as if not installed
    for module in [m for m in sys.modules if m.startswith("daskflow.clusters.slurm")]:
        monkeypatch.delitem(sys.modules, module)  # the package and its modules
    registry._registry.pop("slurm", None)
    with pytest.raises(BackendNotInstalledError, match=r"pip install 'daskflow\[slurm\]'") as info:
        get_backend("slurm")
    assert isinstance(info.value, ImportError)


@pytest.mark.fast
def test_dotted_path_translates_the_request_and_merges_user_kwargs() -> None:
    backend = get_backend("distributed.LocalCluster", processes=False)
    assert isinstance(backend, DaskClusterBackend)
    request = ResourceRequest(cpu=2, memory=2**30, workers=3)
    with dask.config.set({"daskflow.cluster.cluster-kwargs": {"threads_per_worker": 5,
                                                              "silence_logs": 50}}):
        kwargs = backend.cluster_kwargs(request, name="daskflow-1")
    assert kwargs == {"n_workers": 3, "threads_per_worker": 5, "memory_limit": 2**30,
                      "dashboard_address": "127.0.0.1:0", "name": "daskflow-1",
                      "silence_logs": 50, "processes": False}


@pytest.mark.fast
def test_dotted_path_to_a_jobqueue_class_gets_cores_and_memory() -> None:
    kwargs = DaskClusterBackend("dask_jobqueue.PBSCluster", queue="short").cluster_kwargs(
        ResourceRequest(cpu=4, memory=2**33, workers=2))
    assert kwargs["cores"] == 4 and kwargs["memory"] == 2**33 and kwargs["processes"] == 1
    assert kwargs["n_workers"] == 2 and kwargs["queue"] == "short"
    assert "memory_limit" not in kwargs


@pytest.mark.fast
def test_dotted_path_passes_the_environment_where_the_class_takes_one() -> None:
    request = ResourceRequest(env={"MODE": "fast"})
    user_kwargs = {"env": {"MODE": "slow", "X": "1"}}
    with dask.config.set({"daskflow.cluster.cluster-kwargs": user_kwargs}):
        kwargs = get_backend("distributed.LocalCluster").cluster_kwargs(request)
    assert kwargs["env"] == {"MODE": "fast", "X": "1"}  # the step's value wins
    kwargs = DaskClusterBackend("dask_jobqueue.PBSCluster", job_script_prologue=[
        "module load x"]).cluster_kwargs(request)
    assert kwargs["job_script_prologue"] == ["module load x", "export MODE=fast"]
    with pytest.raises(ResourceRequestError, match="SSHCluster takes no worker environment"):
        get_backend("distributed.SSHCluster").check(request)
    get_backend("distributed.SSHCluster").check(ResourceRequest())  # no env: nothing to refuse


@pytest.mark.fast
def test_dotted_path_errors_name_the_problem() -> None:
    with pytest.raises(UnknownBackendError, match="has no 'LocalClustr'. Did you mean 'LocalCluster'"):
        get_backend("distributed.LocalClustr")
    with pytest.raises(UnknownBackendError, match="No module named 'nosuchpackage'"):
        get_backend("nosuchpackage.Cluster")


@pytest.mark.fast
def test_dotted_path_to_a_backend_class_makes_that_backend() -> None:
    assert isinstance(get_backend("daskflow.clusters.local.LocalBackend"), LocalBackend)


class PBSBackend(ClusterBackend):
    name = "pbs"


class OtherPBSBackend(ClusterBackend):
    name = "pbs"


@pytest.mark.fast
def test_register_backend_and_clobber() -> None:
    register_backend("pbs", PBSBackend)
    assert isinstance(get_backend("pbs"), PBSBackend)
    assert "pbs" in available_backends()
    with pytest.raises(ValueError, match="already registered.*clobber=True"):
        register_backend("pbs", OtherPBSBackend)
    register_backend("pbs", OtherPBSBackend, clobber=True)
    assert isinstance(get_backend("pbs"), OtherPBSBackend)
    with pytest.raises(ValueError, match="already registered"):
        register_backend("slurm", PBSBackend)  # the known table counts too


@pytest.mark.fast
def test_register_backend_lazily_by_string() -> None:
    register_backend("lazy", "tests.clusters.test_registry:PBSBackend",
                     errtxt="pip install lazy-backend")
    assert "lazy" in known_backends or "lazy" in registry.known_backends
    assert type(get_backend("lazy")).__name__ == "PBSBackend"
    register_backend("broken", "no_such_module_x:Backend", errtxt="pip install broken-backend")
    with pytest.raises(BackendNotInstalledError, match="pip install broken-backend"):
        get_backend("broken")


@pytest.mark.fast
def test_register_backend_refuses_what_is_not_a_backend() -> None:
    with pytest.raises(TypeError, match="ClusterBackend subclass"):
        register_backend("nope", dict)  # type: ignore[arg-type]


@pytest.mark.fast
def test_an_installed_package_adds_a_backend_by_entry_point(tmp_path: Path, monkeypatch) -> None:
    """A real distribution on sys.path, with its dist-info and entry_points.txt."""
    (tmp_path / "acme_backend.py").write_text(textwrap.dedent("""
        from daskflow.clusters import ClusterBackend

        class AcmeBackend(ClusterBackend):
            name = "acme"
    """))
    info = tmp_path / "acme_backend-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-backend\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[daskflow.backends]\nacme = acme_backend:AcmeBackend\n"
        "acme-broken = acme_missing_module:Backend\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "acme" in available_backends()
    assert type(get_backend("acme")).__name__ == "AcmeBackend"
    with pytest.raises(BackendNotInstalledError, match="acme-backend"):
        get_backend("acme-broken")
