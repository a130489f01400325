"""Draw the views in headless Chromium from real .peeklens files and save the screenshots in docs/img.

    python docs/img/make_demo_data.py /tmp/demo          # the MNIST sweep files (once)
    python docs/img/harness/screenshots.py /tmp/demo     # bundles harness.ts with esbuild, then screenshots

Needs Chromium (/usr/bin/chromium) and Playwright for Python. Prints draw timings as JSON.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
IMG = HERE.parent
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main(data: str) -> None:
    site = Path(tempfile.mkdtemp(prefix="peeklens-shots-"))
    subprocess.run(["node_modules/.bin/esbuild", str(HERE / "harness.ts"), "--bundle", "--format=esm",
                    f"--outfile={site / 'bundle.js'}", "--log-level=warning"], cwd=REPO, check=True)
    shutil.copytree(data, site / "data")
    css = (REPO / "js/lab/style/index.css").read_text()
    (site / "index.html").write_text(
        "<!doctype html><meta charset=utf-8><style>body{margin:16px;font-family:system-ui,sans-serif;"
        "--jp-border-color2:#ddd;--jp-ui-font-color1:#222;background:#fff}" + css + "</style>"
        "<div id=host style='max-width:1240px'></div><script type=module src=bundle.js></script>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None  # type: ignore[assignment]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/index.html"
    timings: dict = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(url)
            page.wait_for_function("() => window.openDoc")
            page.evaluate("() => openDoc('mnist-25pct.peeklens', 10)")
            page.wait_for_timeout(300)
            heat = page.locator(".pl-lab-heatmaps")
            clip = _clip(page, ".pl-lab-heatmaps", 1000)
            heat.locator(".pl-layer").first.locator("canvas.pl-matrix").hover(position={"x": 130, "y": 50})
            page.wait_for_timeout(100)
            page.screenshot(path=str(IMG / "heatmap.png"), clip=clip)
            # the same layer per neuron, zoomed 4x (the box scrolls sideways)
            first = heat.locator(".pl-layer").first
            first.locator(".pl-mode button[data-mode='neurons']").click()
            first.locator(".pl-zoom button[aria-label='zoom in']").click()
            first.locator(".pl-zoom button[aria-label='zoom in']").click()
            first.locator(".pl-scroll").evaluate("e => { e.scrollLeft = 700; }")
            first.locator("canvas.pl-matrix").hover(position={"x": 1000, "y": 100})
            page.wait_for_timeout(100)
            page.screenshot(path=str(IMG / "heatmap-neurons-zoom.png"), clip=_clip(page, ".pl-lab-heatmaps .pl-layer", 520))
            # save buttons in the real browser: a composite PNG of the layer and an SVG chart
            with page.expect_download() as dl:
                first.locator(".pl-layer-controls .pl-export-png").click()
            timings["export_layer_png"] = _check_png(dl.value, None)
            timings["setRank_ms"] = {k: page.evaluate(f"() => setRank({k})") for k in (50, 2, 10, 50)}
            page.wait_for_timeout(200)
            page.screenshot(path=str(IMG / "gallery-rank50.png"), clip=_clip(page, ".pl-lab-gallery", 1100))
            with page.expect_download() as dl:
                page.locator(".pl-lab-gallery .pl-head .pl-export-png").click()
            timings["export_gallery_png"] = _check_png(dl.value, None)
            page.evaluate("() => setRank(2)")
            page.wait_for_timeout(200)
            page.screenshot(path=str(IMG / "heatmap-rank2.png"), clip=_clip(page, ".pl-lab-heatmaps", 700))
            page.screenshot(path=str(IMG / "explorer.png"), clip=_clip(page, ".pl-lab-explorer", 500))
            with page.expect_download() as dl:
                page.locator(".pl-lab-explorer .pl-figure .pl-export-svg").first.click(force=True)
            svg_text = Path(dl.value.path()).read_text()
            timings["export_rmse_svg"] = {"file": dl.value.suggested_filename, "bytes": len(svg_text),
                                          "is_svg": svg_text.lstrip().startswith("<?xml") and "<svg" in svg_text}
            page.evaluate("() => drawCompare()")
            page.wait_for_selector(".pl-compare")
            slider = page.locator(".pl-compare input.pl-rank-slider")
            slider.focus()
            page.keyboard.press("ArrowRight")  # rank 2 -> 10 with the keyboard
            page.wait_for_timeout(300)
            page.screenshot(path=str(IMG / "compare.png"), clip=_clip(page, ".pl-compare", 1400))
            page.evaluate("() => spectrum()")
            page.wait_for_timeout(200)
            page.screenshot(path=str(IMG / "spectrum.png"), clip=_clip(page, ".pl-spectrum", 700))
            timings["draw_gallery_and_heatmaps_ms"] = page.evaluate("() => drawTimes('mnist-25pct.peeklens', [2, 10, 50, 2, 10, 50])")
            timings["factor_update_ms_rank50"] = page.evaluate("() => updateTimes('mnist-25pct.peeklens', 50)")
            timings["factor_update_ms_rank10"] = page.evaluate("() => updateTimes('mnist-25pct.peeklens', 10)")
            # keyboard: an arrow key on the slider moves the rank and does not reach JupyterLab's shortcut
            page.evaluate("() => luminoSetup()")
            page.locator("#other").focus()
            page.keyboard.press("ArrowDown")
            page.keyboard.press("Control+s")
            page.locator(".pl-rank-explorer input.pl-rank-slider").focus()
            page.keyboard.press("Control+s")
            page.keyboard.press("ArrowDown")
            page.keyboard.press("Control+s")
            page.wait_for_timeout(100)
            timings["keys"] = {"commands_run": page.evaluate("() => ran"),
                               "rank_after_arrow": page.locator(".pl-rank-explorer .pl-rank-value").text_content()}
            moves = page.evaluate("() => sliderMoves('mnist-25pct.peeklens', [1, 2, 0, 2, 1, 0, 2, 1, 2, 0])")
            ms = sorted(m["ms"] for m in moves)
            timings["slider_move_ms"] = {"median": ms[len(ms) // 2], "max": ms[-1], "moves": moves}
            timings["errors"] = [e for e in errors if "favicon" not in e and "404" not in e]
            browser.close()
    finally:
        srv.shutdown()
        shutil.rmtree(site, ignore_errors=True)
    print(json.dumps(timings, indent=1))


def _check_png(download, keep) -> dict:
    """The downloaded file is a real PNG: signature and size from its IHDR chunk."""
    data = Path(download.path()).read_bytes()
    ok = data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    Path("/tmp/peeklens-export-" + download.suggested_filename).write_bytes(data)
    return {"file": download.suggested_filename, "png": ok, "width": w, "height": h, "bytes": len(data)}


def _clip(page, selector: str, max_h: int) -> dict:
    box = page.locator(selector).first.bounding_box()
    page.evaluate(f"() => document.querySelector({json.dumps(selector)}).scrollIntoView()")
    box = page.locator(selector).first.bounding_box()
    page.set_viewport_size({"width": 1280, "height": max(1000, int(box["height"]) + 40)})
    box = page.locator(selector).first.bounding_box()
    return {"x": max(0, box["x"] - 8), "y": box["y"] - 4, "width": min(1264, box["width"] + 16), "height": min(max_h, box["height"] + 8)}


if __name__ == "__main__":
    main(sys.argv[1])
