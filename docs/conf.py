"""Sphinx configuration of the peeklens documentation (built offline by ``bash scripts/docs.sh``).

Sphinx + MyST-NB: Markdown pages, the API reference from the numpydoc docstrings (napoleon), and the tutorial
notebooks rendered with their stored outputs (never executed here: ``scripts/docs.sh`` builds in seconds, and the
notebooks' numbers come from their full-size runs by ``scripts/execute_notebooks.py``).

The tutorials' widgets are live on the pages, drawn from the widget state stored in the notebooks without a kernel
and without a network: the Jupyter widgets HTML manager (``embed-amd.js``), RequireJS and the widget modules
(anywidget's and bqplot's front ends, which then run peeklens' own bundles from the state) are copied into
``_static/peeklens-widgets`` at build time (from ``node_modules`` and the Python environment; see
``scripts/execute_notebooks.py``'s ``vendor_widget_js``, which the PNG fallbacks are drawn with too).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import peeklens

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

project = "peeklens"
author = "peeklens developers"
copyright = "2026, peeklens developers"
release = version = peeklens.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx_copybutton",
]
myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # tutorials render their stored outputs; tests/test_notebooks.py executes them
napoleon_numpy_docstring = True
napoleon_google_docstring = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}
exclude_patterns = ["_build", "_generated/**/.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
html_theme = "furo"
html_title = f"peeklens {release}"
html_static_path = ["_generated/static"]
# Offline: no external link is followed. Internal references and documents are checked by -W (warnings are errors).
linkcheck_ignore = [r"https?://.*"]

# The tutorials live in notebooks/ at the top of the repository; copy them beside the pages (git-ignored).
_tut = HERE / "_generated" / "tutorials"
shutil.rmtree(_tut, ignore_errors=True)
_tut.mkdir(parents=True)
for nb in sorted((REPO / "notebooks").glob("[0-9]*.ipynb")):
    shutil.copy(nb, _tut / nb.name)


# The widget manager and the widget modules, served from this site's own _static (never a CDN).
_spec = importlib.util.spec_from_file_location("_peeklens_execute_notebooks", REPO / "scripts" / "execute_notebooks.py")
_exec = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_exec)
_static = HERE / "_generated" / "static"
shutil.rmtree(_static, ignore_errors=True)
WIDGET_SCRIPTS = _exec.vendor_widget_js(_static / "peeklens-widgets")
nb_ipywidgets_js = {f"peeklens-widgets/{name}": {} for name in WIDGET_SCRIPTS}


def _readme_paths(app, relative_path, parent_docname, content):
    """README.md links its pictures as docs/img/...; from a page in docs/ they are img/..."""
    if relative_path.name == "README.md":
        content[0] = content[0].replace("](docs/img/", "](img/").replace("](docs/", "](")


def setup(app):
    app.connect("include-read", _readme_paths)
