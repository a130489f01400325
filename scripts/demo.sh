#!/usr/bin/env bash
# The main job: set up, train the paper's network on 25 % and 100 % of MNIST, factorize, write a report.
#   bash scripts/demo.sh                 # extra arguments go to `peeklens demo` (see peeklens demo --help)
# PEEKLENS_DATA names the data directory (default: ../shared/data beside the checkout, else the download cache).
# PEEKLENS_SETUP_LOCK=/path/to/lockfile runs the set-up step under flock (for shared machines).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${PEEKLENS_SETUP_LOCK:-}" ]; then
  flock "$PEEKLENS_SETUP_LOCK" bash scripts/setup.sh
else
  bash scripts/setup.sh
fi
. .venv/bin/activate
# Data: $PEEKLENS_DATA if set, else ../shared/data beside the checkout when it is there; otherwise the loaders
# look in ~/.cache/peeklens/data and ./data and download through torchvision when the data is missing.
if [ -z "${PEEKLENS_DATA:-}" ] && [ -d ../shared/data ]; then
  export PEEKLENS_DATA="$(cd ../shared/data && pwd)"
fi
exec peeklens demo "$@"
