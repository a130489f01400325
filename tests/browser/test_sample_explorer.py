"""The bqplot sample explorer in a real JupyterLab driven by headless Chromium (Playwright).

Starts ``jupyter lab`` on 127.0.0.1 (own temporary root, settings and runtime directories; stopped by
PID), opens ``fixtures/sample_explorer_e2e.ipynb`` (the 10,000 MNIST test images factorized at ranks
6 and 10, shown in :class:`peeklens.plots.SampleExplorer`), runs all cells, then:

* checks that all 10,000 points are drawn, one scatter (legend entry) per digit;
* brushes a rectangle with the mouse and checks that the kernel's ``explorer.selected`` is non-empty
  and equal to the points inside the brush extent (computed in the kernel), that the page's own
  selection (the marks' ``selected``) agrees, and that the extent is where the mouse went;
* moves the rank slider and checks that the kernel sees the new rank and an empty selection, and that
  the linked LatentGallery followed;
* clicks a gallery tile and checks that the scatter rings that factor's top inputs (kernel and page);
* switches to the lasso, draws a closed quadrilateral with the mouse and checks that the kernel's
  ``explorer.selected`` holds the points inside it (page pixels mapped to data through the axis ticks);
* switches to hover mode and checks that hovering a point shows its coordinates;
* logs (does not assert) how long drawing and brushing 10,000 points take.

Screenshots go to ``test-artifacts/`` (and, with ``PEEKLENS_DOCS_SCREENSHOT=1``, to ``docs/img/sample-explorer.png``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import statistics
import time
from pathlib import Path

import pytest
from _notebook_js import KERNEL_IDLE, LAST_OUTPUT, RUN_LAST_CELL

pytestmark = [pytest.mark.browser, pytest.mark.slow]

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ARTIFACTS = REPO / "test-artifacts"
playwright_api = pytest.importorskip("playwright.sync_api")
NOTEBOOK = "sample_explorer_e2e.ipynb"
FIG = ".pl-sample-explorer-figure"


@pytest.fixture(scope="module")
def lab(start_lab, tmp_path_factory):
    root = tmp_path_factory.mktemp("explorer-root")
    shutil.copy(HERE / "fixtures" / NOTEBOOK, root / NOTEBOOK)
    return start_lab(
        root,
        # every cell stays in the page (no windowing of off-screen cells)
        settings={"@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"}},
        env={
            "PEEKLENS_DATA": os.environ.get("PEEKLENS_DATA", str(REPO.parent / "shared" / "data")),
            "OMP_NUM_THREADS": "1",
        },
    )


@pytest.fixture(scope="module")
def page(lab, browser):
    pg = browser.new_page(viewport={"width": 1400, "height": 1600})
    pg.set_default_timeout(60_000)
    return pg


N_DOTS = f"() => document.querySelectorAll('{FIG} .dot').length"

# Brush with synthetic mouse events (d3-brush listens on the overlay, then on the window) and time
# every move: the synchronous handling (brush + restyling 10,000 points) and until the next frame.
TIME_BRUSH = (
    """async ([x0, y0, x1, y1, steps]) => {
  const overlay = document.querySelector('%s rect.overlay');
  const ev = (type, x, y, target) => target.dispatchEvent(new MouseEvent(type, {
    clientX: x, clientY: y, bubbles: true, cancelable: true, view: window, button: 0, buttons: 1 }));
  ev('mousedown', x0, y0, overlay);
  const out = [];
  for (let i = 1; i <= steps; i++) {
    await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 10)));
    const t0 = performance.now();
    ev('mousemove', x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps, window);
    void document.body.offsetHeight;
    const t1 = performance.now();
    await new Promise((r) => requestAnimationFrame(() => r()));
    out.push({ sync: t1 - t0, frame: performance.now() - t0 });
  }
  ev('mouseup', x1, y1, window);
  return out;
}"""
    % FIG
)


# Record when the first point of the first class scatter moves (a rank change redraws every point).
WATCH_FIRST_DOT = (
    """() => {
  const fig = document.querySelector('%s');
  const first = () => fig.querySelector('.object_grp')?.getAttribute('transform');  // one group per point
  const before = first();
  const t0 = performance.now();
  window.__plDotMoved = undefined;
  window.__plLongTasks = [];  // main-thread tasks over 50 ms: the page's own share of the wait
  new PerformanceObserver((l) => window.__plLongTasks.push(...l.getEntries().map((e) => e.duration)))
    .observe({ type: 'longtask' });
  const obs = new MutationObserver(() => {
    if (first() !== before) { window.__plDotMoved = performance.now() - t0; obs.disconnect(); }
  });
  obs.observe(fig, { attributes: true, childList: true, subtree: true });
}"""
    % FIG
)


def _result(page, timeout: float = 60) -> dict:
    """Run the last cell (it prints what the kernel sees) and parse its output."""
    before = page.evaluate(LAST_OUTPUT)
    page.evaluate(RUN_LAST_CELL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = page.evaluate(LAST_OUTPUT)
        if out.startswith("RESULT=") and out != before:
            return json.loads(out[len("RESULT=") :])
        if out.startswith("RESULT=") and page.evaluate(KERNEL_IDLE):  # same output as before: reran, unchanged
            time.sleep(0.5)
            out = page.evaluate(LAST_OUTPUT)
            return json.loads(out[len("RESULT=") :])
        time.sleep(0.2)
    raise AssertionError(f"the report cell printed nothing in {timeout} s; last output {before!r}")


def _settled(page, check, timeout: float = 30) -> dict:
    """Rerun the report until ``check(result)`` holds (the page's messages reach the kernel asynchronously)."""
    deadline = time.monotonic() + timeout
    res = _result(page)
    while not check(res) and time.monotonic() < deadline:
        time.sleep(0.5)
        res = _result(page)
    return res


SET_LAST_CELL = """(src) => {
  const nb = window.jupyterapp.shell.currentWidget.content;
  nb.widgets[nb.widgets.length - 1].model.sharedModel.setSource(src);
}"""

# Page position -> data value of each axis, from the tick marks bqplot drew (their lines and labels).
TICKS = """(fig) => Array.from(document.querySelectorAll(fig + ' g.axis')).map((ax) =>
  Array.from(ax.querySelectorAll('g.tick')).map((t) => {
    const r = t.querySelector('line').getBoundingClientRect();
    return { x: r.x + r.width / 2, y: r.y + r.height / 2, text: t.querySelector('text').textContent };
  }).filter((t) => t.text !== ''))"""


def _axis_maps(page):
    """Linear maps page pixel -> data for x and y, fitted to the tick marks."""
    import numpy as np

    maps = []
    axes = page.evaluate(TICKS, FIG)
    for ticks in axes:
        if len(ticks) < 2:
            continue
        px_x, px_y = np.array([t["x"] for t in ticks]), np.array([t["y"] for t in ticks])
        vals = np.array([float(t["text"].replace("\u2212", "-")) for t in ticks])
        px = px_x if np.ptp(px_x) > np.ptp(px_y) else px_y  # horizontal axis: ticks spread along x
        slope, icpt = np.polyfit(px, vals, 1)
        maps.append((np.ptp(px_x) > np.ptp(px_y), slope, icpt))
    (xm,) = [m for m in maps if m[0]]
    (ym,) = [m for m in maps if not m[0]]
    return (xm[1], xm[2]), (ym[1], ym[2])


def test_brush_selection_reaches_the_kernel(lab, page):
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{lab['url']}/lab/tree/{NOTEBOOK}")
    page.wait_for_selector(".jp-NotebookPanel", timeout=90_000)
    page.wait_for_function(KERNEL_IDLE, timeout=90_000)
    t0 = time.monotonic()
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")

    # all 10,000 points are drawn, one scatter per digit (legend entries with the class names)
    page.wait_for_function(f"() => ({N_DOTS})() === 10000", timeout=300_000)
    first_draw = time.monotonic() - t0
    page.wait_for_function(f"() => ({LAST_OUTPUT})().startsWith('RESULT=')", timeout=120_000)
    legend = page.eval_on_selector_all(f"{FIG} text.legendtext", "ts => ts.map(t => t.textContent)")
    assert [f"digit {i}" for i in range(10)] == sorted(set(legend) & {f"digit {i}" for i in range(10)})
    res = _result(page)
    assert res["n"] == 10000 and res["rank"] == 6 and res["selected"] == []

    # brush a rectangle with the mouse, as a user does
    overlay = page.locator(f"{FIG} rect.overlay")
    overlay.scroll_into_view_if_needed()
    box = overlay.bounding_box()
    fx0, fy0, fx1, fy1 = 0.02, 0.45, 0.35, 0.98  # fractions of the plot area (y from the top)
    x0, y0 = box["x"] + fx0 * box["width"], box["y"] + fy0 * box["height"]
    x1, y1 = box["x"] + fx1 * box["width"], box["y"] + fy1 * box["height"]
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=12)
    page.mouse.up()
    assert overlay.bounding_box() == box, "the figure moved while the brush was drawn"
    # the ticks are read now, in the layout the mouse moved in: running the report cell below
    # may scroll the notebook, which moves the figure on the page
    (sx, ix), (sy, iy) = _axis_maps(page)
    res = _settled(page, lambda r: bool(r["selected"]) and "extent" in r and r["front"])
    assert res["selected"], "the kernel saw no selection after brushing"
    assert res["selected"] == res["expected"], "explorer.selected differs from the points inside the brush extent"
    assert res["front"] == res["expected"], "the page's own selection differs from the kernel's"
    assert 0 < len(res["selected"]) < 10000
    # the extent is where the mouse went (page pixels -> data through the axis ticks, within 2 px)
    (ex0, ex1), (ey0, ey1) = res["extent"]
    assert ex0 == pytest.approx(ix + sx * x0, abs=2 * abs(sx)) and ex1 == pytest.approx(ix + sx * x1, abs=2 * abs(sx))
    assert ey0 == pytest.approx(iy + sy * y1, abs=2 * abs(sy)) and ey1 == pytest.approx(iy + sy * y0, abs=2 * abs(sy))
    # the page greys out the rest
    n_selected = len(res["selected"])
    readout = page.locator(".pl-explorer-readout").text_content()
    assert readout.startswith(f"{n_selected} of 10000 samples selected")

    explorer = page.locator(".pl-sample-explorer")
    explorer.screenshot(path=str(ARTIFACTS / "sample-explorer.png"))
    if os.environ.get("PEEKLENS_DOCS_SCREENSHOT"):
        explorer.screenshot(path=str(REPO / "docs" / "img" / "sample-explorer.png"))

    # brushing 10,000 points, timed in the page (logged, not asserted)
    moves = page.evaluate(
        TIME_BRUSH,
        [
            box["x"] + 0.5 * box["width"],
            box["y"] + 0.1 * box["height"],
            box["x"] + 0.95 * box["width"],
            box["y"] + 0.6 * box["height"],
            15,
        ],
    )
    sync = statistics.median(m["sync"] for m in moves)
    frame = statistics.median(m["frame"] for m in moves)
    line = (
        f"sample explorer, 10,000 points: first draw {first_draw:.1f} s after 'run all' (incl. kernel work); "
        f"brush move median {sync:.1f} ms synchronous (worst {max(m['sync'] for m in moves):.1f} ms), "
        f"median {frame:.1f} ms to the next frame"
    )
    log.warning(line)
    (ARTIFACTS / "sample-explorer-timing.txt").write_text(line + "\n" + json.dumps(moves, indent=1) + "\n")
    res = _settled(
        page,
        lambda r: "extent" in r and r["selected"] == r["expected"] and r["selected"] != [] and r["extent"][0][0] > ex1,
    )
    assert res["selected"] == res["expected"] and res["front"] == res["expected"]

    # the rank slider swaps F: the kernel sees rank 10, the selection is cleared, the points move
    page.evaluate(WATCH_FIRST_DOT)
    slider = page.locator(".pl-explorer-rank .slider-container, .pl-explorer-rank .noUi-target").first
    for _ in range(3):  # a click on the far end of the track; again if a loaded machine lost it
        slider.scroll_into_view_if_needed()
        sb = slider.bounding_box()
        page.mouse.click(sb["x"] + sb["width"] - 2, sb["y"] + sb["height"] / 2)
        res = _settled(page, lambda r: r["rank"] == 10, timeout=40)
        if res["rank"] == 10:
            break
    assert res["rank"] == 10 and res["selected"] == [] and res["front"] == []
    page.wait_for_function("() => window.__plDotMoved !== undefined", timeout=60_000)
    moved_ms = page.evaluate("() => window.__plDotMoved")
    assert res["gallery_rank"] == 10  # the linked gallery followed
    assert page.evaluate(N_DOTS) == 10000
    time.sleep(1)
    long_ms = page.evaluate("() => window.__plLongTasks")
    line = (
        f"rank 6 -> 10 from the slider click to the 10,000 points redrawn (kernel round trip): {moved_ms:.0f} ms; "
        f"page tasks over 50 ms meanwhile and just after: {len(long_ms)}, {sum(long_ms):.0f} ms in all "
        f"(longest {max(long_ms, default=0):.0f} ms)"
    )
    log.warning(line)
    with open(ARTIFACTS / "sample-explorer-timing.txt", "a") as f:
        f.write(line + "\n")


def test_gallery_tile_rings_its_top_inputs(lab, page):
    """Clicking a tile of the linked LatentGallery rings that factor's top inputs in the scatter."""
    tiles = "() => document.querySelectorAll('.pl-latent-gallery .pl-tile').length"
    try:
        page.wait_for_function(f"() => ({tiles})() === 10", timeout=60_000)  # the gallery followed to rank 10
    except playwright_api.TimeoutError:
        n_galleries = page.evaluate("() => document.querySelectorAll('.pl-latent-gallery').length")
        raise AssertionError(
            f"the gallery shows {page.evaluate(tiles)} tiles, not 10; {n_galleries} galleries; "
            f"the kernel's gallery rank: {_result(page)['gallery_rank']}"
        ) from None
    tile = page.locator('.pl-latent-gallery .pl-tile[data-factor="7"]')
    tile.scroll_into_view_if_needed()
    tile.click()
    page.wait_for_function(f"() => ({N_DOTS})() === 10008", timeout=60_000)  # 8 rings over the 10,000 points
    res = _settled(page, lambda r: r["factor"] == 7)
    assert res["factor"] == 7 and res["rank"] == 10
    assert res["highlighted"] == res["top"] and len(res["top"]) == 8
    assert "ringed: top 8 inputs of factor 7" in page.locator(".pl-explorer-readout").text_content()
    page.locator('.pl-latent-gallery .pl-tile[data-factor="2"]').click()
    res = _settled(page, lambda r: r["factor"] == 2)
    assert res["highlighted"] == res["top"]
    page.locator(".pl-sample-explorer").screenshot(path=str(ARTIFACTS / "sample-explorer-gallery-link.png"))


# What the gallery rings, per tile: the samples of its top-input thumbnails marked as selected.
RINGS = """() => Object.fromEntries(Array.from(document.querySelectorAll('.pl-latent-gallery .pl-tile')).map((t) =>
  [t.dataset.factor, {ringed: Array.from(t.querySelectorAll('.pl-top-cell.pl-hit')).map((c) => Number(c.dataset.sample))
     .sort((a, b) => a - b), hits: t.dataset.hits, badge: t.querySelector('.pl-hits')?.textContent ?? ''}]))"""

# The kernel's side: each factor's top 8 inputs (as the gallery shows them) inside the brush extent,
# computed from the coordinates and F here, not from the gallery.
RING_REPORT = """r = report()
tops = top_inputs(explorer.fit, 8)
inside = set(r.get('expected', []))
r['rings'] = {str(f): sorted(int(i) for i in tops[f] if int(i) in inside) for f in range(explorer.rank)}
r['gallery_highlighted'] = list(gallery.highlighted)
print('RESULT=' + json.dumps(r))"""


def test_brush_rings_the_samples_in_the_gallery(lab, page):
    """Brushing points in the scatter rings those samples among the linked gallery's top-input thumbnails,
    and each tile counts them; the expected rings are computed in the kernel from the brush extent and F."""
    page.evaluate(SET_LAST_CELL, RING_REPORT)
    plot_area = page.locator(f"{FIG} rect.plotarea_background")
    plot_area.evaluate("e => e.scrollIntoView({block: 'center'})")
    box = page.locator(f"{FIG} rect.overlay").bounding_box()
    # the right half of the plot: the samples that load most on factor 0 (the x axis) and some others
    x0, y0 = box["x"] + 0.55 * box["width"], box["y"] + 0.01 * box["height"]
    x1, y1 = box["x"] + 0.995 * box["width"], box["y"] + 0.99 * box["height"]
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=8)
    page.mouse.up()
    res = _settled(
        page, lambda r: bool(r["selected"]) and r["selected"] == r.get("expected") and r["gallery_highlighted"]
    )
    assert res["selected"] == res["expected"] and res["gallery_highlighted"] == res["selected"]
    want = res["rings"]
    assert sum(len(v) for v in want.values()) > 0, "the brush holds none of the top inputs; the test brushed elsewhere"
    assert any(len(v) < 8 for v in want.values()), "every top input is inside: the test checks nothing"
    page.wait_for_function(
        f"(want) => {{ const g = ({RINGS})(); return Object.keys(want).every((f) => "
        "JSON.stringify(g[f]?.ringed) === JSON.stringify(want[f])); }",
        arg=want,
        timeout=30_000,
    )
    rings = page.evaluate(RINGS)
    for f, samples in want.items():
        assert rings[f]["ringed"] == samples, f"factor {f}"
        assert rings[f]["hits"] == str(len(samples))
        assert rings[f]["badge"] == (f"{len(samples)} of 8 selected" if samples else "")
    page.locator(".pl-latent-gallery").first.screenshot(path=str(ARTIFACTS / "sample-explorer-gallery-rings.png"))
    # clearing the selection clears the rings
    page.evaluate(SET_LAST_CELL, "explorer.clear()\n" + RING_REPORT)
    res = _settled(page, lambda r: r["selected"] == [])
    page.wait_for_function(f"() => Object.values(({RINGS})()).every((t) => t.ringed.length === 0)", timeout=30_000)


def test_lasso_selection_reaches_the_kernel(lab, page):
    """Switch to the lasso, draw a quadrilateral with the mouse: the kernel gets the points inside it."""
    page.locator(".pl-sample-explorer .widget-toggle-button", has_text="lasso").click()
    res = _settled(page, lambda r: r["mode"] == "lasso")
    assert res["mode"] == "lasso" and res["selected"] == []
    # the previous tests scrolled down to the gallery: bring the whole plot area on screen first
    plot_area = page.locator(f"{FIG} rect.plotarea_background")
    plot_area.evaluate("e => e.scrollIntoView({block: 'center'})")
    area = plot_area.bounding_box()
    (sx, ix), (sy, iy) = _axis_maps(page)
    # a rectangle in the lower left (where the points are dense), drawn as a closed lasso
    px0, px1 = area["x"] + 0.05 * area["width"], area["x"] + 0.4 * area["width"]
    py0, py1 = area["y"] + 0.55 * area["height"], area["y"] + 0.9 * area["height"]
    page.mouse.move(px0, py0)
    page.mouse.down()
    for x, y in [(px1, py0), (px1, py1), (px0, py1), (px0, py0)]:
        page.mouse.move(x, y, steps=6)
    page.mouse.up()
    assert plot_area.bounding_box() == area, "the figure moved while the lasso was drawn"
    rect = [sorted([ix + sx * px0, ix + sx * px1]), sorted([iy + sy * py0, iy + sy * py1])]
    tol = [abs(sx) * 2.5, abs(sy) * 2.5]  # 2.5 px: the lasso path and the tick fit are pixel-exact at best
    page.evaluate(SET_LAST_CELL, f"print('RESULT=' + json.dumps(report(rect={rect!r}, tol={tol!r})))")
    res = _settled(page, lambda r: bool(r["selected"]))
    sel, surely, possibly = set(res["selected"]), set(res["surely"]), set(res["possibly"])
    assert surely, "the lasso rectangle holds no points; the test drew it in an empty region"
    assert surely <= sel <= possibly, (
        f"lasso selection of {len(sel)} points: {len(surely - sel)} inside it missed, "
        f"{len(sel - possibly)} outside it selected"
    )
    assert res["front"] == res["selected"]  # the kernel's selection is the page's
    page.locator(".pl-sample-explorer").screenshot(path=str(ARTIFACTS / "sample-explorer-lasso.png"))


def test_hover_shows_the_values(lab, page):
    """In hover mode (no interaction: bqplot's interactions take the mouse, bqplot issue #1352),
    hovering a point shows its two coordinates under the axis names."""
    page.locator(".pl-sample-explorer .widget-toggle-button", has_text="hover").click()
    res = _settled(page, lambda r: r["mode"] == "hover")
    assert res["mode"] == "hover" and res["selected"] == []
    page.wait_for_selector(f"{FIG} rect.overlay", state="detached")
    dots = page.locator(f"{FIG} .object_grp")
    for i in (0, 1, 2, 500, 5000):  # a point not hidden under the legend
        box = dots.nth(i).bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        try:
            page.wait_for_function(
                """() => Array.from(document.querySelectorAll('.bqplot_mark_tooltip'))
                .some((t) => getComputedStyle(t).opacity !== '0' && t.textContent.includes('factor 0'))""",
                timeout=5_000,
            )
            break
        except playwright_api.TimeoutError:
            continue
    else:
        raise AssertionError("no tooltip appeared over five points")
    text = page.evaluate("""() => Array.from(document.querySelectorAll('.bqplot_mark_tooltip'))
        .filter((t) => getComputedStyle(t).opacity !== '0').map((t) => t.textContent).join(' ')""")
    assert "factor 0" in text and "factor 1" in text
