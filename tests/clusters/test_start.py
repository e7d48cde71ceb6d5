"""How long a new cluster is waited for: a step cluster starts with its first worker and
fails only when none came within ``cluster.start-timeout``, naming what is pending."""

from __future__ import annotations

import dask
import pytest

from daskflow.clusters import ClusterBackend, ResourceRequest
from daskflow.clusters.errors import ClusterStartTimeoutError


class Started:
    """What the wait reads of a Dask cluster: the workers its scheduler knows."""

    def __init__(self, workers: int) -> None:
        self.scheduler_info = {"workers": {f"tls://127.0.0.1:{4000 + i}": {}
                                           for i in range(workers)}}


class QueuedBackend(ClusterBackend):
    name = "queued"

    def pending_reason(self, cluster, name):
        return "squeue: job 9 pending (Resources)."


SIX = ResourceRequest(cpu=1, workers=6)


@pytest.mark.fast
def test_enough_workers_is_the_first_one_when_asked() -> None:
    with dask.config.set({"daskflow.cluster.start-timeout": "60s"}):
        QueuedBackend().wait_for_workers(Started(1), SIX, name="c", enough=1)  # at once


@pytest.mark.fast
def test_by_default_every_worker_is_waited_for() -> None:
    with dask.config.set({"daskflow.cluster.start-timeout": "0.2s"}):
        with pytest.raises(ClusterStartTimeoutError) as info:
            QueuedBackend().wait_for_workers(Started(2), SIX, name="c")
    assert str(info.value).startswith("Only 2 of 6 queued worker(s) of 6 workers x (1 core)")
    assert (info.value.expected, info.value.available) == (6, 2)


@pytest.mark.fast
def test_no_worker_in_time_fails_naming_what_is_pending() -> None:
    with dask.config.set({"daskflow.cluster.start-timeout": "0.2s"}):
        with pytest.raises(ClusterStartTimeoutError) as info:
            QueuedBackend().wait_for_workers(Started(0), SIX, name="c", enough=1)
    assert str(info.value) == (
        "None of the 6 queued worker(s) of 6 workers x (1 core) arrived within the start "
        "timeout of 0.2s. squeue: job 9 pending (Resources). Raise "
        "daskflow.cluster.start-timeout if the backend is just slow, or ask for less.")
    assert (info.value.expected, info.value.available) == (1, 0)
