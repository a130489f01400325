"""The documentation site's tutorial pages draw peeklens' widgets live from the state stored in the notebooks,
without a kernel and without a network: the widget manager and the widget modules come from the site's own
``_static`` (vendored at build time), and the page is opened from disk with every non-local request refused.

The site is built here (Sphinx, as ``bash scripts/docs.sh`` does) unless ``PEEKLENS_DOCS_HTML`` names a built
one. A screenshot is kept in ``test-artifacts/docs-tutorial.png``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
PAGE = "_generated/tutorials/01-quickstart.html"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    given = os.environ.get("PEEKLENS_DOCS_HTML")
    if given:
        return Path(given)
    nb = nbformat.read(REPO / "notebooks" / "01-quickstart.ipynb", as_version=4)
    if not nb.metadata.get("widgets"):
        pytest.fail("notebooks/01-quickstart.ipynb has no widget state: run python scripts/execute_notebooks.py")
    out = tmp_path_factory.mktemp("docs-html")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-q", str(REPO / "docs"), str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def page(site, browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000}, offline=True)
    requests: list[str] = []
    ctx.on("request", lambda r: requests.append(r.url))
    local = ("file:", "data:", "blob:", "http://127.0.0.1", "http://localhost")
    ctx.route("**/*", lambda route: route.continue_() if route.request.url.startswith(local) else route.abort())
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.set_default_timeout(90_000)
    pg.goto((site / PAGE).as_uri())
    pg.requests, pg.errors = requests, errors
    yield pg
    ctx.close()


def test_tutorial_page_draws_its_widgets_without_a_kernel(page):
    # the rank explorer's charts and the gallery's tiles are drawn by peeklens' own bundles (from the state)
    page.wait_for_selector(".pl-rank-explorer svg.pl-chart")
    page.wait_for_selector(".pl-latent-gallery .pl-tile canvas")
    tiles = page.locator(".pl-latent-gallery .pl-tile")
    assert tiles.count() >= 2
    # a latent image canvas holds pixels that are not all one colour
    distinct = page.evaluate(
        """() => { const c = document.querySelector('.pl-latent-gallery .pl-tile canvas');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; const seen = new Set();
            for (let i = 0; i < d.length; i += 4) seen.add(d[i] * 65536 + d[i + 1] * 256 + d[i + 2]);
            return seen.size; }"""
    )
    assert distinct > 10, distinct
    assert page.locator(".pl-neuron-heatmaps canvas.pl-matrix").count() >= 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator(".peeklens-dashboard").first.screenshot(path=str(ARTIFACTS / "docs-tutorial.png"))


def test_the_stored_widgets_stay_interactive(page):
    """Clicking a gallery tile selects its factor in the heatmaps too: the links are made in the browser."""
    page.wait_for_selector(".pl-latent-gallery .pl-tile canvas")
    dash = page.locator(".peeklens-dashboard").first
    heat = dash.locator(".pl-neuron-heatmaps").first
    page.wait_for_function("(el) => /factor 0\\b/.test(el.innerText)", arg=heat.element_handle())
    dash.locator(".pl-latent-gallery .pl-tile").nth(1).click()
    page.wait_for_function("(el) => /factor 1: loadings per channel/.test(el.innerText)", arg=heat.element_handle())


def test_nothing_came_from_the_network(page):
    page.wait_for_selector(".pl-latent-gallery .pl-tile canvas")
    assert page.errors == []
    outside = [u for u in page.requests if not u.startswith(("file:", "data:", "blob:"))]
    assert outside == [], outside
    # the manager and the modules were loaded from the site's _static
    assert any(u.endswith("peeklens-widgets/anywidget/index.js") for u in page.requests), page.requests


def _pages_with_widgets():
    return [
        p.stem
        for p in sorted((REPO / "notebooks").glob("0*.ipynb"))
        if nbformat.read(p, as_version=4).metadata.get("widgets")
    ]


@pytest.mark.parametrize("stem", _pages_with_widgets())
def test_every_tutorial_page_draws_without_errors(site, browser, stem):
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000}, offline=True)
    requests: list[str] = []
    ctx.on("request", lambda r: requests.append(r.url))
    ctx.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:", "blob:")) else r.abort())
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    try:
        pg.goto((site / "_generated" / "tutorials" / f"{stem}.html").as_uri())
        pg.wait_for_selector(".pl-view", timeout=90_000)
        pg.wait_for_timeout(3000)  # the other views of the page
        assert pg.locator(".pl-error").count() == 0, pg.locator(".pl-error").first.inner_text()
        assert errors == []
        assert [u for u in requests if not u.startswith(("file:", "data:", "blob:"))] == []
    finally:
        ctx.close()
