"""The ``fast`` marker means what it says: such a test starts no process and no cluster."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.fast
def test_a_fast_test_cannot_start_a_process() -> None:
    with pytest.raises(RuntimeError, match="marked fast started a process"):
        subprocess.run([sys.executable, "-c", "pass"], check=False)


@pytest.mark.fast
def test_a_fast_test_cannot_start_a_cluster_or_client() -> None:
    from distributed import Client, LocalCluster

    with pytest.raises(RuntimeError, match="marked fast started a Dask cluster"):
        LocalCluster(n_workers=1, processes=False)
    with pytest.raises(RuntimeError, match="marked fast started a Dask client"):
        Client("tcp://127.0.0.1:1")


def test_the_guard_is_gone_after_a_fast_test() -> None:
    from distributed import Client, LocalCluster

    assert "__new__" not in vars(Client)
    assert subprocess.run([sys.executable, "-c", "pass"]).returncode == 0
    # a cluster and a client start again (a fast test ran just before this one)
    with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        assert client.submit(sum, [1, 2]).result() == 3
