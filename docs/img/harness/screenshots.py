"""Draw the views in headless Chromium from real .peeklens files and save the screenshots in docs/img
(the JupyterLab and report screenshots: lab_screenshots.py).

    python docs/img/make_demo_data.py /tmp/demo          # the MNIST sweep files (once)
    python docs/img/harness/screenshots.py /tmp/demo     # bundles harness.ts with esbuild, then screenshots

Needs Chromium (/usr/bin/chromium) and Playwright for Python. Prints draw timings as JSON.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright

from peeklens._chromium import launch

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
IMG = HERE.parent


def _bundle(site: Path, out: str, views: Path) -> None:
    subprocess.run(
        [
            "node_modules/.bin/esbuild",
            str(HERE / "harness.ts"),
            "--bundle",
            "--format=esm",
            f"--alias:peeklens-views={views}",
            f"--outfile={site / out}",
            "--log-level=warning",
        ],
        cwd=REPO,
        check=True,
    )


def _old_views(commit: str) -> Path:
    """js/views as of `commit` (the reference the timings are compared with), in a temporary folder."""
    d = Path(tempfile.mkdtemp(prefix="peeklens-views-ref-")) / "views"
    d.mkdir()
    names = subprocess.run(
        ["git", "ls-tree", "--name-only", commit, "js/views/"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.split()
    for n in names:
        (d / Path(n).name).write_text(
            subprocess.run(
                ["git", "show", f"{commit}:{n}"], cwd=REPO, check=True, capture_output=True, text=True
            ).stdout
        )
    return d / "index.ts"


def main(data: str, reference: str = "658d7d1") -> None:
    site = Path(tempfile.mkdtemp(prefix="peeklens-shots-"))
    _bundle(site, "bundle.js", REPO / "js/views/index.ts")
    _bundle(site, "bundle-ref.js", _old_views(reference))
    shutil.copytree(data, site / "data")
    css = (REPO / "js/lab/style/index.css").read_text()
    for page_name, bundle in [("index.html", "bundle.js"), ("ref.html", "bundle-ref.js")]:
        (site / page_name).write_text(
            "<!doctype html><meta charset=utf-8><style>body{margin:16px;font-family:system-ui,sans-serif;"
            "--jp-border-color2:#ddd;--jp-ui-font-color1:#222;background:#fff}" + css + "</style>"
            f"<div id=host style='max-width:1240px'></div><script type=module src={bundle}></script>"
        )
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None  # type: ignore[assignment]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/index.html"
    timings: dict = {}
    try:
        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(url)
            page.wait_for_function("() => window.openDoc")
            if os.environ.get("PEEKLENS_BENCH_ONLY"):
                timings["bench"] = _bench(browser, url, bench or "mnist-25pct.peeklens")
                browser.close()
                print(json.dumps(timings, indent=1))
                return
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
            page.screenshot(
                path=str(IMG / "heatmap-neurons-zoom.png"), clip=_clip(page, ".pl-lab-heatmaps .pl-layer", 520)
            )
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
            timings["export_rmse_svg"] = {
                "file": dl.value.suggested_filename,
                "bytes": len(svg_text),
                "is_svg": svg_text.lstrip().startswith("<?xml") and "<svg" in svg_text,
            }
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
            timings["draw_gallery_and_heatmaps_ms"] = page.evaluate(
                "() => drawTimes('mnist-25pct.peeklens', [2, 10, 50, 2, 10, 50])"
            )
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
            timings["keys"] = {
                "commands_run": page.evaluate("() => ran"),
                "rank_after_arrow": page.locator(".pl-rank-explorer .pl-rank-value").text_content(),
            }
            moves = page.evaluate("() => sliderMoves('mnist-25pct.peeklens', [1, 2, 0, 2, 1, 0, 2, 1, 2, 0])")
            ms = sorted(m["ms"] for m in moves)
            timings["slider_move_ms"] = {"median": ms[len(ms) // 2], "max": ms[-1], "moves": moves}
            timings["errors"] = [e for e in errors if "favicon" not in e and "404" not in e]
            timings["bench"] = _bench(browser, url, bench or "mnist-25pct.peeklens")
            browser.close()
    finally:
        srv.shutdown()
        shutil.rmtree(site, ignore_errors=True)
    print(json.dumps(timings, indent=1))


def _bench(browser, url: str, name: str, rounds: int = 3) -> dict:
    """Time the views (current and reference, alternating, same page set-up) on the widgets' paths."""
    out: dict = {"file": name}
    for version, page_url in [("current", url), ("reference", url.replace("index.html", "ref.html"))] * rounds:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(page_url)
        page.wait_for_function("() => window.sliderMoves")
        page.evaluate(f"() => sliderMoves('{name}', [0])")  # warm-up: reads the file, compiles the code
        k = page.evaluate(f"() => sliderMoves('{name}', [0, 1, 2, 3, 4, 0, 2, 4, 1, 3])")
        draw = page.evaluate(f"() => drawTimes('{name}', [10, 50, 10, 50])")
        rec0 = out.setdefault(version + "_parts", {"gallery50": [], "heatmaps50": []})
        rec0["gallery50"].append(round(draw["gallery50"], 1))
        rec0["heatmaps50"].append(round(draw["heatmaps50"], 1))
        upd = page.evaluate(f"() => updateTimes('{name}', 50)")
        rec = out.setdefault(version, {"slider_move_ms": [], "draw_rank50_ms": [], "factor_update_ms": []})
        rec["slider_move_ms"] += [m["ms"] for m in k]
        out.setdefault(version + "_moves", []).append([(m["rank"], round(m["ms"], 1)) for m in k])
        rec["draw_rank50_ms"].append(draw["50"])
        rec["factor_update_ms"].append(upd["median"])
        page.close()
    for version in ("current", "reference"):
        for key, vals in out[version].items():
            vals.sort()
            out[version][key] = {"median": round(vals[len(vals) // 2], 2), "max": round(vals[-1], 2), "n": len(vals)}
    out["ratio_current_over_reference"] = {
        key: round(out["current"][key]["median"] / max(1e-9, out["reference"][key]["median"]), 2)
        for key in out["current"]
    }
    return out


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
    return {
        "x": max(0, box["x"] - 8),
        "y": box["y"] - 4,
        "width": min(1264, box["width"] + 16),
        "height": min(max_h, box["height"] + 8),
    }


if __name__ == "__main__":
    # screenshots.py DATA_DIR [BENCH_FILE]: BENCH_FILE (in DATA_DIR) is timed; default the 2,000-sample sweep
    bench = sys.argv[2] if len(sys.argv) > 2 else None
    main(sys.argv[1])
