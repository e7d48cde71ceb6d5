#!/bin/bash
# The GPU check of @resources(gpu=1), for a machine with an NVIDIA GPU, CUDA, cupy or
# torch, and no network. Wheels for what the machine lacks (dask, distributed, dask-cuda
# and their pure-Python needs) travel in .whl/, fetched beforehand with
#   pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl \
#       dask==2026.7.1 distributed==2026.7.1 dask-cuda==26.10.0 tornado tblib zict partd \
#       locket bokeh xyzservices
# (dask-cuda 26.10 pins dask and distributed to 2026.7.1 through rapids-dask-dependency,
# so that is what `pip install 'daskflow[gpu]'` gives a user.)
# Usage, from the repository root: bash bench/gpu_check.sh [OUTDIR]
set -o pipefail
out=${1:-${OUT:-/tmp/gpu-check}}
mkdir -p "$out"
repo=$PWD
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$repo
else
    export PYTHONPATH=$repo
fi
export PYTHONUNBUFFERED=1
nvidia-smi -L
python3 -c "import sys, dask, distributed, dask_cuda; print(sys.version.split()[0], 'dask', dask.__version__, 'distributed', distributed.__version__, 'dask-cuda', dask_cuda.__version__)"
python3 -m pytest -p no:cacheprovider -v tests/runtime/test_gpu.py tests/clusters/test_local.py \
    2>&1 | tee "$out/pytest.log"
rc=$?
# the same flow by hand, as a user runs it, with its report and its step's Dask report
work=$(mktemp -d) && cd "$work" || exit 1
python3 "$repo/tests/flows/gpu_flow.py" show 2>&1 | tee "$out/flow.log"
python3 "$repo/tests/flows/gpu_flow.py" run 2>&1 | tee -a "$out/flow.log" || rc=1
python3 - <<'PY' 2>&1 | tee -a "$out/flow.log"
from daskflow import Flow
run = Flow("GPUFlow").latest_run
print("run", run.pathspec, "successful:", run.successful)
print("train.result =", run["train"].task.data.result)
PY
cp .daskflow/GPUFlow/*/_report.html "$out/" 2>/dev/null
exit $rc
