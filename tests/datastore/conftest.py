"""Fixtures for the datastore tests: a store in a temporary folder, a real Dask cluster."""

from __future__ import annotations

import logging

import pytest

from daskflow.datastore import ArtifactStore


@pytest.fixture
def frame_store(tmp_path):
    return ArtifactStore(str(tmp_path / "root"), "FrameFlow")


@pytest.fixture(scope="module")
def cluster_client():
    """Two single-threaded worker processes, as a step's cluster would have."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL) as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(2, timeout=60)
        yield client
