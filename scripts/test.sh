#!/usr/bin/env bash
# Run every test from a clean checkout: sets up, then Python tests (incl. slow ones and the
# real-browser tests), doctests, and the JavaScript unit tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PEEKLENS_BROWSER=1 bash scripts/setup.sh
. .venv/bin/activate
export PEEKLENS_DATA="${PEEKLENS_DATA:-$(cd .. && pwd)/shared/data}"
mkdir -p test-artifacts
status=0
if [ -f package.json ] && grep -q '"test"' package.json; then
  echo "[test] TypeScript type check and JavaScript unit tests"
  npm run typecheck --silent || status=1
  npm test --silent || status=1
fi
echo "[test] Python tests"
python -m pytest tests src/peeklens "$@" || status=$?
exit $status
