#!/usr/bin/env bash
# The main job: set up, train the paper's network on 25 % and 100 % of MNIST, factorize, write a report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export PEEKLENS_DATA="${PEEKLENS_DATA:-$(cd .. && pwd)/shared/data}"
exec peeklens demo "$@"
