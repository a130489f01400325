"""The offline HTML report in a real browser: opened from disk in headless Chromium with the network
disabled, it draws the charts, the gallery and the heatmaps with the same views as the widgets and the
lab document, and is interactive (rank slider, tile selection, save as PNG/SVG).

A screenshot is kept in ``test-artifacts/report-offline.png``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

import peeklens as pl
from peeklens.report import write_report
from peeklens.studies import PaperNet

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="module")
def report_file(tmp_path_factory, mnist_test):
    x, y = mnist_test
    sweeps, spectra = {}, {}
    for seed, label in ((0, "net <b>A</b>"), (1, "net B")):
        torch.manual_seed(seed)
        net = PaperNet().eval()
        acts = pl.capture(net, TensorDataset(x[:300], y[:300]), layers=["relu", "relu_1"], progress=False)
        sweeps[label] = pl.sweep(acts, [4, 8], max_iter=40, progress=False)
        spectra[label] = pl.spectrum(acts, k=10, blocks=["relu", "relu_1"])
        if seed == 0:  # net A's factors at rank 4 explained (pl.explain): maximized images, attribution overlay
            pl.explain(net, sweeps[label], "relu_1", ranks=[4], steps=8, progress=False)
    out = tmp_path_factory.mktemp("report") / "report.html"
    return write_report(
        sweeps, out, spectra=spectra, title="offline report", verdict="net A < net B at every rank", verdict_ok=True
    )


@pytest.fixture(scope="module")
def page(report_file, browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True, offline=True)
    requests: list[str] = []
    ctx.on("request", lambda r: requests.append(r.url))
    # belt and braces: anything that is not the file itself or an inline data: URL is refused
    ctx.route(
        "**/*",
        lambda route: route.continue_() if route.request.url.startswith(("file:", "data:")) else route.abort(),
    )
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.set_default_timeout(60_000)
    pg.goto(report_file.as_uri())
    pg.wait_for_function("document.body.dataset.plReady === '1'")
    pg.requests, pg.errors = requests, errors
    return pg


def test_report_draws_offline(page):
    assert page.errors == []
    assert all(u.startswith(("file:", "data:")) for u in page.requests), page.requests
    nets = page.locator("#pl-report-networks details.pl-report-network")
    assert nets.count() == 2
    first = nets.first
    assert first.locator("summary").text_content() == "net <b>A</b>"  # a name is text
    # charts, gallery and heatmaps of each network
    assert first.locator(".pl-rank-explorer svg.pl-chart").count() == 2
    assert first.locator(".pl-latent-gallery .pl-tile").count() == 4
    assert first.locator(".pl-latent-gallery canvas.pl-top").count() == 4  # thumbnails from the display section
    assert first.locator(".pl-latent-gallery canvas.pl-hist").count() == 4
    assert first.locator(".pl-neuron-heatmaps canvas.pl-matrix").count() == 2
    # comparison: one RMSE chart, one spectrum chart per layer, the galleries side by side
    cmp = page.locator("#pl-report-compare")
    assert cmp.locator("svg.pl-rmse-chart").count() == 1
    assert cmp.locator(".pl-spectrum svg.pl-chart").count() == 2
    assert cmp.locator(".pl-compare-network").count() == 2
    # the summary and the verdict; nothing wider than the window
    assert page.locator(".pl-verdict.ok").text_content() == "net A < net B at every rank"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # pictures are drawn: a latent image is not blank
    blank = page.eval_on_selector(
        ".pl-latent-gallery canvas.pl-latent",
        """c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        return d.every(v => v === d[0]); }""",
    )
    assert not blank
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report-offline.png"), full_page=False)


def test_report_shows_explained_factors(page):
    first, second = page.locator("#pl-report-networks details.pl-report-network").all()
    gallery = first.locator(".pl-latent-gallery")
    assert gallery.locator(".pl-tile .pl-pair canvas.pl-max").count() == 4  # beside each latent image
    assert second.locator("canvas.pl-max").count() == 0 and second.locator("button.pl-interp-toggle").count() == 0
    assert "Factors of layer relu_1 are explained" in page.locator("body").text_content()
    pixels = "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data).join(',')"
    top = gallery.locator("canvas.pl-top").first
    before = top.evaluate(pixels)
    toggle = gallery.locator("button.pl-interp-toggle")
    toggle.focus()
    page.keyboard.press("Enter")  # a button: the keyboard toggles it
    assert toggle.get_attribute("aria-pressed") == "true"
    assert top.evaluate(pixels) != before  # the heatmaps are laid over the thumbnails
    ARTIFACTS.mkdir(exist_ok=True)
    gallery.screenshot(path=str(ARTIFACTS / "report-gallery-interpret.png"))
    page.keyboard.press("Enter")
    assert toggle.get_attribute("aria-pressed") == "false" and top.evaluate(pixels) == before


def test_report_is_interactive(page):
    first = page.locator("#pl-report-networks details.pl-report-network").first
    doc = first.locator(".pl-lab-document")
    slider = first.locator(".pl-rank-explorer input.pl-rank-slider")
    slider.evaluate("s => { s.value = '1'; s.dispatchEvent(new Event('input')); }")
    page.wait_for_function(
        "() => document.querySelector('#pl-report-networks .pl-lab-document').dataset.completeRank === '8'"
    )
    assert first.locator(".pl-latent-gallery .pl-tile").count() == 8
    assert first.locator(".pl-neuron-heatmaps h4").text_content() == "Neuron heatmaps (rank 8)"
    first.locator('.pl-latent-gallery .pl-tile[data-factor="5"]').click()
    assert doc.get_attribute("data-factor") == "5"
    assert first.locator(".pl-neuron-heatmaps").get_attribute("data-factor") == "5"
    # every view can be saved; the PNG and SVG are produced offline
    # one set of buttons per chart or view (the views' own), none added by the document around them
    assert first.locator(".pl-lab-head .pl-export").count() == 0
    assert first.locator(".pl-lab-gallery .pl-export").count() == 1
    assert first.locator(".pl-lab-heatmaps > .pl-lab-body > .pl-neuron-heatmaps > .pl-head .pl-export").count() == 1
    figures = first.locator(".pl-lab-explorer .pl-figure")
    assert figures.count() >= 1
    for i in range(figures.count()):
        assert figures.nth(i).locator(".pl-export").count() == 1
    with page.expect_download() as dl:
        first.locator(".pl-lab-gallery .pl-export-png").click()
    assert dl.value.suggested_filename == "latent-images-rank-8.png"
    png = Path(dl.value.path()).read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    with page.expect_download() as dl:
        figures.first.locator(".pl-export-svg").click()
    assert dl.value.suggested_filename == "rmse-vs-rank.svg"
    svg = Path(dl.value.path()).read_text()
    assert "<svg" in svg[:200] and "RMSE vs rank" in svg
