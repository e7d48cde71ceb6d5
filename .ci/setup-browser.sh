#!/usr/bin/env bash
# Idempotent: Debian's chromium + chromium-driver (the browser the report tests open),
# tmux (the real terminal the progress-view test runs in) and Playwright (drives
# chromium; we use Debian's binary, never `playwright install`, which downloads one).
# Usage: bash .ci/setup-browser.sh      (re-running is safe and takes well under a second)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
PYTHON=${PYTHON:-python}

missing=()
for pkg in chromium chromium-driver tmux; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! "$PYTHON" -c "import playwright.sync_api" 2>/dev/null; then
  "$PYTHON" -m pip install -q "playwright>=1.40"
fi

/usr/bin/chromium --version >/dev/null 2>&1
command -v tmux >/dev/null
echo "browser ready: $(/usr/bin/chromium --version 2>/dev/null | head -n1), tmux $(tmux -V | cut -d' ' -f2), playwright $("$PYTHON" -c 'from importlib.metadata import version; print(version("playwright"))')"
