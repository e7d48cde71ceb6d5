"""The hooks a runtime calls on every backend, whatever its name."""

from __future__ import annotations

import dask.config
import pytest

from daskflow.clusters import (
    ClusterBackend,
    LocalBackend,
    ResourceRequest,
    get_backend,
)
from daskflow.exceptions import ConfigurationError


# -- the hooks a runtime calls on every backend ---------------------------------------------
def test_default_request_local_follows_its_settings_others_one_core_per_worker() -> None:
    import os
    from daskflow.clusters.local import default_request
    assert LocalBackend().default_request(3) == default_request(3)
    with dask.config.set({"daskflow.local.n-workers": 1, "daskflow.local.threads-per-worker": 2}):
        assert LocalBackend().default_request(8) == ResourceRequest(cpu=2, workers=1)
    expected = ResourceRequest(cpu=1, workers=min(os.cpu_count() or 1, 64))
    assert get_backend("slurm").default_request(64) == expected
    assert get_backend("distributed.LocalCluster").default_request(64) == expected
    assert get_backend("slurm").default_request(1) == ResourceRequest(cpu=1, workers=1)


def test_prepare_starts_the_local_fork_server_and_is_a_no_op_elsewhere() -> None:
    from daskflow.clusters import forkserver
    ClusterBackend().prepare()
    get_backend("slurm").prepare()
    LocalBackend().prepare()
    assert forkserver.is_warm() == (forkserver.start_method() == "forkserver")


@pytest.mark.parametrize("name, shares", [
    ("local", True), ("slurm", True), ("ssh", True), ("kubernetes", False),
    ("aws", False), ("aws-fargate", False), ("aws-ec2", False),
    ("distributed.LocalCluster", None),
])
def test_shares_filesystem_says_whether_workers_see_the_drivers_files(name, shares) -> None:
    pytest.importorskip({"kubernetes": "dask_kubernetes", "ssh": "asyncssh"}.get(
        name, "dask_cloudprovider.aws" if name.startswith("aws") else "dask"))
    assert get_backend(name).shares_filesystem is shares


@pytest.mark.parametrize("name", ["slurm", "ssh"])
def test_shares_filesystem_is_a_setting_where_it_depends_on_the_site(name) -> None:
    pytest.importorskip("asyncssh" if name == "ssh" else "dask_jobqueue")
    assert get_backend(name, shares_filesystem=False).shares_filesystem is False
    with dask.config.set({f"daskflow.cluster.{name}.shares-filesystem": False}):
        assert get_backend(name).shares_filesystem is False
    assert type(get_backend(name)).shares_filesystem is True


def test_worker_memory_without_a_default_is_a_clear_error() -> None:
    with dask.config.set({"daskflow.cluster.slurm.memory": None}):
        with pytest.raises(ConfigurationError, match=r"daskflow.cluster.slurm.memory is None"):
            get_backend("slurm").worker_memory(ResourceRequest())
        assert get_backend("slurm").worker_memory(ResourceRequest(memory=2**30)) == 2**30
