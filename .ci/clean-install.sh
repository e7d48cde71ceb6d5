#!/usr/bin/env bash
# The Quickstart on a clean install, before anything else: a throwaway virtual environment
# with the project and NO extras (no PYTHONPATH, nothing of the test environment), where
# the README's first command and its first flow example must run. A dependency that only
# the test extras bring in fails here, as it would for a new user.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_QUIET=1
quickstart="$(python .ci/readme_block.py Quickstart bash 1)"
flow="$(python .ci/readme_block.py "A flow" python 1)"

scratch="$(mktemp -d "${TMPDIR:-/tmp}/daskflow-clean-install.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
# a copy of the checkout, as a user's clone: the runs and the egg-info stay out of this one
mkdir "$scratch/repo"
git ls-files -z -co --exclude-standard | xargs -0 cp --parents -t "$scratch/repo"
python -m venv "$scratch/venv"
unset PYTHONPATH
export VIRTUAL_ENV="$scratch/venv" PATH="$scratch/venv/bin:$PATH"

echo "== clean install: $quickstart"
(cd "$scratch/repo" && bash -euo pipefail -c "$quickstart")
echo "== clean install: the README's first flow (train.py run)"
mkdir "$scratch/flow"
printf '%s' "$flow" > "$scratch/flow/train.py"
(cd "$scratch/flow" && python train.py run)
