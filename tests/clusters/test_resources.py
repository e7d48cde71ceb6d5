"""@resources: what it accepts, what it refuses, and the request it makes."""

from __future__ import annotations

import pytest

from daskflow.clusters import ResourceRequest
from daskflow.steps import Resources, StepDecoratorError, resources, step_decorators

pytestmark = pytest.mark.fast

MiB, GiB = 2**20, 2**30


def request_of(**options) -> ResourceRequest:
    return resources(**options).request()


@pytest.mark.fast
def test_defaults_are_one_core_one_worker_backend_default() -> None:
    assert request_of() == ResourceRequest(cpu=1, memory=None, gpu=0, disk=None, workers=1)
    assert resources().backend is None


@pytest.mark.fast
@pytest.mark.parametrize("memory, expected", [
    (4096, 4 * GiB),               # a bare number is megabytes, as in Metaflow
    (1536.0, 1536 * MiB),
    ("4096", 4 * GiB),             # `--with resources:memory=4096` arrives as text
    ("16GiB", 16 * GiB),           # strings as Dask reads them
    ("500MB", 500 * 10**6),
    ("1.5 GiB", 1536 * MiB),
    ("2G", 2 * 10**9),
])
def test_memory_in_megabytes_or_dask_strings(memory, expected) -> None:
    assert request_of(memory=memory).memory == expected


@pytest.mark.fast
def test_disk_parses_like_memory() -> None:
    assert request_of(disk="100GiB").disk == 100 * GiB
    assert request_of(disk=10240).disk == 10 * GiB


@pytest.mark.fast
def test_fractional_cpu_is_kept_and_rounded_up_to_threads() -> None:
    request = request_of(cpu=0.5)
    assert request.cpu == 0.5 and request.threads == 1
    assert request_of(cpu="2").cpu == 2 and isinstance(request_of(cpu=2.0).cpu, int)


@pytest.mark.fast
def test_workers_gpu_and_backend() -> None:
    decorator = resources(cpu=4, memory="16GiB", gpu=1, workers=8, backend="slurm")
    assert decorator.request() == ResourceRequest(cpu=4, memory=16 * GiB, gpu=1, workers=8)
    assert decorator.backend == "slurm"
    assert decorator.describe() == "slurm: 8 workers x (4 cores, 16 GiB, 1 GPU)"


@pytest.mark.fast
@pytest.mark.parametrize("options, message", [
    ({"cpu": 0}, r"cpu=0\) must be a number above 0"),
    ({"cpu": -2}, "must be a number above 0"),
    ({"cpu": "four"}, r"cpu='four'\) must be a number"),
    ({"cpu": True}, "must be a number"),
    ({"gpu": 0.5}, r"gpu=0.5\) must be a whole number of at least 0"),
    ({"gpu": -1}, "whole number of at least 0"),
    ({"workers": 0}, r"workers=0\) must be a whole number of at least 1"),
    ({"memory": "lots"}, r"memory='lots'\) is not a size.*'16GiB'"),
    ({"memory": 0}, "must be more than zero"),
    ({"memory": -5}, "must be more than zero"),
    ({"memory": "500B"}, "surely a unit mistake"),
    ({"memory": 2}, "a bare number means megabytes"),
    ({"memory": [4096]}, "not list"),
    ({"disk": "12 parsecs"}, "is not a size"),
    ({"backend": ""}, "must be a backend name"),
    ({"backend": 3}, "must be a backend name"),
    ({"memroy": "1GiB"}, "unknown argument 'memroy'. Did you mean 'memory'?.*Allowed: cpu, memory"),
])
def test_bad_values_are_refused_clearly(options, message) -> None:
    with pytest.raises(StepDecoratorError, match=message):
        resources(**options)


@pytest.mark.fast
def test_used_bare_or_called_above_a_step() -> None:
    @resources
    def bare(self): ...

    @resources(memory=2048)
    def called(self): ...

    assert isinstance(step_decorators(bare)[0], Resources)
    assert step_decorators(called)[0].request().memory == 2 * GiB


@pytest.mark.fast
def test_applied_twice_is_an_error() -> None:
    with pytest.raises(StepDecoratorError, match="applied twice"):
        @resources(cpu=1)
        @resources(cpu=2)
        def twice(self): ...
