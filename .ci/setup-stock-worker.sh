#!/usr/bin/env bash
# A "stock Dask image" worker environment for tests/remote: a virtual environment, outside
# the repository, with only what ghcr.io/dask/dask ships (dask, distributed, pandas, numpy,
# pyarrow, cloudpickle; s3fs, which is commonly added) and NOT daskflow. Versions follow
# the driver's Python (the one running daskflow's tests), so that the environment check
# passes; dask and distributed must match it exactly anyway.
#
# Where: $DASKFLOW_STOCK_PYTHON names the venv's python (<venv>/bin/python); unset, the
# venv is ~/.cache/daskflow/stock-worker. Idempotent: a second run with the same versions
# only checks the venv (well under a second).
set -euo pipefail
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
driver_python="${DASKFLOW_DRIVER_PYTHON:-python}"
stock_python="${DASKFLOW_STOCK_PYTHON:-$HOME/.cache/daskflow/stock-worker/bin/python}"
venv="$(dirname "$(dirname "$stock_python")")"

# The driver's versions of the stock packages; s3fs releases in step with fsspec.
pins="$("$driver_python" - <<'PY'
import importlib.metadata as md
def version(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None
pins = [f"{name}=={version(name)}" if version(name) else name
        for name in ("dask", "distributed", "pandas", "numpy", "pyarrow", "cloudpickle")]
s3fs = version("s3fs") or version("fsspec")
pins.append(f"s3fs=={s3fs}")
print(" ".join(pins))
PY
)"
minor="$("$driver_python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
want="python$minor $pins"

if [ -x "$stock_python" ] && [ "$(cat "$venv/.daskflow-stock" 2>/dev/null)" = "$want" ] \
        && "$stock_python" -c "import dask, distributed, pandas, pyarrow, s3fs" 2>/dev/null; then
    echo "stock worker ready: $stock_python ($want)"
    exit 0
fi

echo "creating the stock worker venv in $venv: $want"
rm -rf "$venv"
"$driver_python" -m venv "$venv"
# shellcheck disable=SC2086  # $pins is a list of requirements
"$venv/bin/python" -m pip install -q $pins
# From / : run from the repository root, `-c` would find its daskflow/ folder.
if (cd / && "$stock_python" -c "import daskflow" 2>/dev/null); then
    echo "error: daskflow is importable in $venv; a stock worker must not have it" >&2
    exit 1
fi
echo "$want" > "$venv/.daskflow-stock"
echo "stock worker ready: $stock_python ($want)"
