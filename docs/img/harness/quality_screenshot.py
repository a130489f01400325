"""Screenshot the ranked quality-score panel of a report's Comparison section (docs/img/compare-quality.png).

    peeklens demo --out /tmp/demo                               # a report whose networks carry their score
    python docs/img/harness/quality_screenshot.py /tmp/demo/demo.html [docs/img/compare-quality.png]

Opens the report from disk in headless Chromium (Playwright, /usr/bin/chromium), network off, and fails when the
panel is missing. Prints what the panel says (rows, noise markers, confidence note).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

IMG = Path(__file__).resolve().parents[1]


def main(report: str, out: str = str(IMG / "compare-quality.png")) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        ctx = browser.new_context(viewport={"width": 1200, "height": 900}, device_scale_factor=1, offline=True)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(Path(report).resolve().as_uri())
        panel = page.wait_for_selector("#pl-report-compare .pl-quality", timeout=120_000)
        info = page.evaluate(
            """() => ({
              rows: [...document.querySelectorAll('#pl-report-compare .pl-quality-row')].map(r =>
                [r.dataset.network, Number(r.dataset.score).toFixed(3)]),
              noise: [...document.querySelectorAll('#pl-report-compare .pl-quality-noise')].map(g =>
                [g.dataset.a, g.dataset.b]),
              notes: [...document.querySelectorAll('#pl-report-compare .pl-quality .pl-caption')]
                .map(c => c.textContent),
            })"""
        )
        head = page.locator("h2", has_text="Comparison")
        head.evaluate("e => e.scrollIntoView()")
        top = head.bounding_box()["y"]
        box = panel.bounding_box()
        page.screenshot(
            path=out,
            clip={
                "x": 0,
                "y": max(0, top - 8),
                "width": max(box["x"] + box["width"] + 24, 700),
                "height": box["y"] + box["height"] - top + 16,
            },
        )
        browser.close()
    print(json.dumps({**info, "page_errors": errors, "png": out}, indent=1, ensure_ascii=False))
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main(*sys.argv[1:])
