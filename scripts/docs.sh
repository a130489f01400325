#!/usr/bin/env bash
# Build the documentation site offline: docs/_build/html/index.html.
#   bash scripts/docs.sh            # sets up first (as the other scripts), then sphinx with warnings as errors
# Broken internal links, references and documents fail the build (-W); external links are not followed (offline).
# The tutorials render with live widgets from their stored state: docs/conf.py copies the widget manager and the
# widget modules into _static (from node_modules and the environment), so the site needs no CDN and no kernel.
# The notebooks' outputs come from `python scripts/execute_notebooks.py` (committed), not from this build.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${PEEKLENS_SKIP_SETUP:-0}" != "1" ]; then
  bash scripts/setup.sh
fi
. .venv/bin/activate
python -m sphinx -b html -W --keep-going -q docs docs/_build/html
echo "[docs] $(pwd)/docs/_build/html/index.html"
