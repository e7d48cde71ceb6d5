"""@resources(gpu=1): a step that computes on an NVIDIA GPU through dask-cuda.

It needs a GPU, dask-cuda and cupy or torch; without them it skips and says which is
missing (CI machines have no GPU).
"""

from __future__ import annotations

import importlib.util
import shutil

import pytest

from daskflow import Flow


def missing_for_gpu() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return "no NVIDIA GPU here (nvidia-smi not found)"
    if importlib.util.find_spec("dask_cuda") is None:
        return "dask-cuda is not installed (pip install 'daskflow[gpu]')"
    if importlib.util.find_spec("cupy") is None and importlib.util.find_spec("torch") is None:
        return "neither cupy nor torch is installed"
    return None


def test_a_step_computes_on_the_gpu(run_flow, workdir):
    reason = missing_for_gpu()
    if reason:
        pytest.skip(reason)
    result = run_flow("gpu_flow.py", "run")
    assert result.returncode == 0, result.stderr
    data = Flow("GPUFlow").latest_run["train"].task.data.result
    assert data["trace"] == 1024.0 * 1024.0
    assert "computed on" in result.stdout


def test_without_a_gpu_the_request_is_refused_before_the_run(run_flow, workdir):
    if missing_for_gpu() is None:
        pytest.skip("this machine has a GPU: the refusal cannot happen here")
    result = run_flow("gpu_flow.py", "run")
    assert result.returncode == 1
    assert "GPU" in result.stderr and "Traceback" not in result.stderr
    assert not (workdir / ".daskflow" / "GPUFlow").exists() or not list(Flow("GPUFlow"))
