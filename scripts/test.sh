#!/usr/bin/env bash
# Run every test from a clean checkout: sets up, then Python tests (incl. slow ones and the
# real-browser tests), doctests, and the JavaScript unit tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PEEKLENS_BROWSER=1 bash scripts/setup.sh
. .venv/bin/activate
# Data: $PEEKLENS_DATA if set, else ../shared/data beside the checkout when it is there; otherwise the loaders
# look in ~/.cache/peeklens/data and ./data and download through torchvision when the data is missing.
if [ -z "${PEEKLENS_DATA:-}" ] && [ -d ../shared/data ]; then
  export PEEKLENS_DATA="$(cd ../shared/data && pwd)"
fi
if [ -z "${PEEKLENS_DATA:-}" ]; then
  # No local copy: fetch MNIST and CIFAR-10 once (torchvision, with a progress bar) into the cache the tests read.
  python -c "from peeklens.studies import load_mnist, load_cifar10, data_dir; load_mnist(); load_cifar10(); print(data_dir())" >/dev/null
  export PEEKLENS_DATA="$(python -c 'from peeklens.studies import data_dir; print(data_dir())')"
fi
mkdir -p test-artifacts
status=0
if [ -f package.json ] && grep -q '"test"' package.json; then
  echo "[test] TypeScript type check and JavaScript unit tests"
  npm run typecheck --silent || status=1
  npm run lint --silent || status=1
  npm test --silent || status=1
fi
echo "[test] ruff (Python lint)"
python -m ruff check src tests benchmarks scripts notebooks docs || status=1
echo "[test] documentation site (sphinx -W: broken references fail)"
PEEKLENS_SKIP_SETUP=1 bash scripts/docs.sh || status=1
echo "[test] Python tests"
export PEEKLENS_DOCS_HTML="$(pwd)/docs/_build/html"   # the docs browser test reads the site just built
python -m pytest tests src/peeklens "$@" || status=$?
exit $status
