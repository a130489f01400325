#!/usr/bin/env bash
# The main job: set up, train the paper's network on 25 % and 100 % of MNIST, factorize, write a report.
#   bash scripts/demo.sh                 # extra arguments go to `peeklens demo` (see peeklens demo --help)
# PEEKLENS_DATA names the data directory (default: ../shared/data beside the checkout).
# PEEKLENS_SETUP_LOCK=/path/to/lockfile runs the set-up step under flock (for shared machines).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${PEEKLENS_SETUP_LOCK:-}" ]; then
  flock "$PEEKLENS_SETUP_LOCK" bash scripts/setup.sh
else
  bash scripts/setup.sh
fi
. .venv/bin/activate
export PEEKLENS_DATA="${PEEKLENS_DATA:-$(cd .. && pwd)/shared/data}"
exec peeklens demo "$@"
