"""The prebuilt JupyterLab extension: installed by pip, its browser-side reader, its notebook template."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import peeklens

REPO = Path(__file__).resolve().parents[2]
LABEXT = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "peeklens"


def test_extension_listed_enabled_and_ok():
    out = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)
    line = next((ln.strip() for ln in text.splitlines() if ln.strip().startswith("peeklens ")), None)
    assert line is not None, f"peeklens is not listed:\n{text}"
    assert re.match(rf"peeklens v{re.escape(peeklens.__version__)} enabled\s+OK\b", line), line
    assert "(python, peeklens)" in line  # installed by the Python package (install.json)


def test_installed_extension_is_the_prebuilt_one():
    pkg = json.loads((LABEXT / "package.json").read_text())
    assert pkg["name"] == "peeklens"
    assert pkg["jupyterlab"]["_build"]["load"].startswith("static/remoteEntry.")
    assert (LABEXT / pkg["jupyterlab"]["_build"]["load"]).exists()
    assert json.loads((LABEXT / "install.json").read_text())["packageName"] == "peeklens"
    tutorials = json.loads((LABEXT / "static" / "tutorials" / "index.json").read_text())
    committed = sorted(p.name for p in (REPO / "notebooks").glob("[0-9][0-9]*.ipynb"))
    assert tutorials["notebooks"] == committed
    for name in tutorials["notebooks"]:
        # the launcher's copies are stored clean (the committed ones carry full-size outputs and widget state)
        nb = json.loads((LABEXT / "static" / "tutorials" / name).read_text())
        assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), name
        assert "widgets" not in nb["metadata"], name


@pytest.mark.slow
def test_browser_reader_matches_python_views(tmp_path):
    """vitest: the TypeScript reader and derived views against files written by pl.save."""
    npx = shutil.which("npx")
    if npx is None or not (REPO / "node_modules" / "vitest").exists():
        pytest.skip("Node.js dependencies are not installed (npm install)")
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        import make_fixtures
    finally:
        sys.path.pop(0)
    make_fixtures.main(str(tmp_path))
    env = dict(os.environ, PEEKLENS_FIXTURES=str(tmp_path), PEEKLENS_PYTHON=sys.executable)
    res = subprocess.run(
        [npx, "vitest", "run", "js/test/core.test.ts"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert re.search(r"Tests\s+\d+ passed", re.sub(r"\x1b\[[0-9;]*m", "", res.stdout))


@pytest.mark.slow
def test_quickstart_template_runs(tmp_path):
    """The notebook "New peeklens notebook" creates runs as written and saves a results file."""
    import nbclient
    import nbformat

    nb = nbformat.read(Path(peeklens.__file__).parent / "templates" / "quickstart.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=300, resources={"metadata": {"path": str(tmp_path)}}).execute()
    sweep = peeklens.load(tmp_path / "my-first-sweep.peeklens")
    assert sweep.ranks == [4, 8, 12]
