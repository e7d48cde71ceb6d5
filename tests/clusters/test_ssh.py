"""The SSH backend against a private sshd on 127.0.0.1 (started by the ``sshd`` fixture)."""

from __future__ import annotations

from typing import Any

import dask.config
import pytest

from daskflow.clusters import ResourceRequest, ResourceRequestError

from .contract import ENV, ClusterContract, MiB


def test_kwargs_put_the_scheduler_on_the_first_host_and_workers_round_robin() -> None:
    pytest.importorskip("asyncssh")
    from daskflow.clusters.ssh import SSHBackend
    kwargs = SSHBackend(hosts=["s", "w1", "w2"], connect_options={"port": 2222}).cluster_kwargs(
        ResourceRequest(cpu=2, memory=GiB, workers=3), name="daskflow-x")
    assert kwargs["hosts"] == ["s", "w1", "w2", "w1"]
    assert kwargs["worker_options"] == {"nthreads": 2, "memory_limit": GiB, "death_timeout": 60}
    assert kwargs["scheduler_options"]["idle_timeout"] == "20 minutes"
    assert kwargs["connect_options"] == {"port": 2222}
    single = SSHBackend(hosts=["only"]).cluster_kwargs(ResourceRequest(workers=2))
    assert single["hosts"] == ["only", "only", "only"]


def test_kwargs_give_the_remote_nannies_the_environment() -> None:
    pytest.importorskip("asyncssh")
    from daskflow.clusters.ssh import SSHBackend
    kwargs = SSHBackend(hosts=["s"]).cluster_kwargs(ResourceRequest(env={"MODE": "fast"}))
    assert kwargs["worker_options"]["env"] == {"MODE": "fast"}
    assert "env" not in SSHBackend(hosts=["s"]).cluster_kwargs(
        ResourceRequest())["worker_options"]


def test_gpus_are_refused() -> None:
    pytest.importorskip("asyncssh")
    from daskflow.clusters.ssh import SSHBackend
    with pytest.raises(ResourceRequestError, match="does not assign GPUs"):
        SSHBackend(hosts=["localhost"]).check(ResourceRequest(gpu=1))


def test_an_environment_value_with_a_single_quote_is_refused() -> None:
    """SSHCluster writes the workers' options as JSON in '...' on the remote command line."""
    pytest.importorskip("asyncssh")
    from daskflow.clusters.ssh import SSHBackend
    with pytest.raises(ResourceRequestError, match=r"single quote \(' in MODE\)"):
        SSHBackend(hosts=["localhost"]).check(ResourceRequest(env={"MODE": "it's"}))


GiB = 2**30


@pytest.mark.ssh
class TestSSHContract(ClusterContract):
    backend_name = "ssh"
    request = ResourceRequest(cpu=1, memory=300 * MiB, workers=2)
    sigkill_grace = 90.0  # 15 s idle timeout, then the workers' death timeout
    env = {**ENV, "DASKFLOW_TEST_MODE": "no single quote; $HOME not expanded"}  # see below

    @pytest.fixture(autouse=True)
    def _connect(self, sshd: dict[str, Any]):
        # class attribute, so that the SIGKILLed driver (another process) gets it too
        type(self).backend_options = {"hosts": ["127.0.0.1"], "connect_options": sshd}

    def test_nothing_left_long_after_the_driver_is_sigkilled(self, tmp_path) -> None:
        """The remote scheduler outlives its driver; its idle timeout is what ends it."""
        with dask.config.set({"daskflow.cluster.idle-timeout": "15s"}):
            super().test_nothing_left_long_after_the_driver_is_sigkilled(tmp_path)

    def check_refusal(self, message: str) -> None:
        super().check_refusal(message.replace("Ask for less", "ask for less"))
        assert "this machine" in message
