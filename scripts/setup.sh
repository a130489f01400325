#!/usr/bin/env bash
# Set up everything peeklens needs on a fresh machine, from a clean checkout.
#   bash scripts/setup.sh            # Python venv + package (+ JS bundle built by pip install)
#   PEEKLENS_BROWSER=1 bash scripts/setup.sh   # also Debian's chromium for the browser tests
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip

# PyTorch: this exact pair installs from local disk here (other versions download gigabytes).
if ! python -c "import torch, torchvision" 2>/dev/null; then
  echo "[setup] installing torch 2.14.1 + torchvision 0.29.1"
  python -m pip install -q torch==2.14.1 torchvision==0.29.1
fi

# JavaScript dependencies, pinned by package-lock.json (pip install runs the build).
if [ -f package.json ]; then
  # `npm ci` refuses this lock file here: the npm registry reachable from this machine has no metadata for
  # other platforms' optional packages (rollup's darwin/win32 builds), so npm cannot record them in the lock
  # and `npm ci` reports the lock "out of sync". `npm install --no-save` installs the locked versions and
  # leaves package.json and package-lock.json untouched (checked below).
  echo "[setup] npm install (locked versions)"
  npm install --no-save --no-audit --no-fund --loglevel=error
  if command -v git >/dev/null && git rev-parse --git-dir >/dev/null 2>&1 && ! git diff --quiet -- package-lock.json; then
    echo "[setup] error: npm changed package-lock.json; it is out of date with package.json (run npm install and commit it)" >&2
    exit 1
  fi
fi

echo "[setup] pip install -e .[test,docs]"
python -m pip install -q -e ".[test,docs]"

if [ "${PEEKLENS_BROWSER:-0}" = "1" ] && [ ! -x /usr/bin/chromium ]; then
  echo "[setup] apt-get install chromium"
  if [ "$(id -u)" = "0" ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
if [ "${PEEKLENS_BROWSER:-0}" = "1" ]; then
  # The browser tests drive Debian's chromium through Playwright for Python (executable_path=/usr/bin/chromium);
  # Playwright's own browser download is not used.
  /usr/bin/chromium --version
  python -c "import playwright.sync_api" || { echo "[setup] playwright for Python is missing (pip install -e .[test])"; exit 1; }
fi
echo "[setup] done"
