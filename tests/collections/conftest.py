"""A process-based Dask cluster shared by the parallel_map tests.

Its client is *not* the default one, so a test sees it only inside
``client.as_current()`` (the ``client`` fixture); the tests of parallel_map's
own cluster run with no client at all.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def shared_client() -> Iterator[Any]:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL) as cluster, \
            Client(cluster, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)
        yield client


@pytest.fixture
def client(shared_client: Any) -> Iterator[Any]:
    """The shared cluster's client, current for the test."""
    with shared_client.as_current():
        yield shared_client
