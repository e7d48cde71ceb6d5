"""Which Dask client code is on: none, the current one, or its worker's cluster in a task."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from daskflow.dask_client import cluster_client, current_worker


@pytest.fixture(scope="module")
def one_thread_cluster() -> Iterator[Any]:
    from distributed import Client, LocalCluster

    # One thread: a task that maps on the cluster without handing its thread back hangs.
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster, set_as_default=False) as client:
        yield client


def _map_from_a_task(n: int) -> tuple[int, str]:
    worker = current_worker()
    assert worker is not None
    with cluster_client() as client:
        total = sum(client.gather(client.map(lambda x: x * 2, range(n))))
    return total, worker.address


def test_outside_any_cluster_there_is_none() -> None:
    assert current_worker() is None
    with cluster_client() as client:
        assert client is None


def test_the_current_client_while_it_runs(one_thread_cluster: Any) -> None:
    with one_thread_cluster.as_current(), cluster_client() as client:
        assert client is one_thread_cluster
    with cluster_client() as client:
        assert client is None  # not the default client: only current inside as_current()


def test_in_a_task_the_workers_cluster_with_the_thread_handed_back(
        one_thread_cluster: Any) -> None:
    future = one_thread_cluster.submit(_map_from_a_task, 10, pure=False)
    total, address = future.result(timeout=60)
    assert total == 90
    assert address in one_thread_cluster.scheduler_info()["workers"]


@pytest.mark.fast
def test_a_failed_futures_error_is_read_without_waiting_and_opened_when_sealed() -> None:
    import cloudpickle
    from distributed.client import FutureState

    from daskflow.dask_client import erred_with
    from daskflow.remote._packages import MARK
    from daskflow.remote.calls import OpenedFuture

    class Erred:  # what the driver holds: a future whose state Dask's client keeps
        def __init__(self, error: BaseException) -> None:
            self._state = FutureState("work-3-17")
            self._state.set_error(error, None)

        def exception(self) -> BaseException:  # Future.exception() waits for a rerun
            raise AssertionError("waited")

    plain = Erred(ValueError("no"))
    assert isinstance(erred_with(plain), ValueError)
    plain._state.retry()  # Dask runs it again meanwhile: its error still answers
    assert isinstance(erred_with(plain), ValueError)

    class Sealed(Erred):  # a sealed call's future (remote/calls.py: OpenedFuture)
        opened_error = staticmethod(OpenedFuture.opened_error)

    sealed = Sealed(RuntimeError(MARK, cloudpickle.dumps(ValueError("cannot scale 2")), ""))
    error = erred_with(sealed)
    assert isinstance(error, ValueError) and str(error) == "cannot scale 2"
