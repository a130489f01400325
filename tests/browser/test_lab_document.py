"""The JupyterLab extension end to end: a saved Sweep opens as a document in a real JupyterLab,
driven by headless Chromium through Playwright; the launcher and palette commands work.

Starts ``jupyter lab`` on 127.0.0.1 with a temporary root holding results saved with ``pl.save``
(the paper network on 300 real MNIST test images, ranks 4/8/12), and stops it by PID.
A screenshot is kept in ``test-artifacts/lab-document.png``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
import torch

import peeklens as pl
from peeklens.studies import PaperNet

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"


def _save_results(root: Path, mnist_test) -> None:
    x, y = mnist_test
    data = [(x[i : i + 100], y[i : i + 100]) for i in range(0, 300, 100)]
    for name, seed in (("mnist-a.peeklens", 0), ("mnist-b.peeklens", 1)):
        torch.manual_seed(seed)
        net = PaperNet().eval()
        acts = pl.capture(net, data, layers=["relu", "relu_1"], progress=False)
        sweep = pl.sweep(acts, [4, 8, 12], max_iter=60, progress=False)
        sweep.quality = pl.quality(acts)  # the label-free score travels in the file (schema "quality")
        if seed == 0:
            # what rank 4's factors mean in relu_1 (maximized inputs, attribution), saved for the kernel-less view
            pl.explain(net, sweep, "relu_1", ranks=4, steps=16, progress=False)
        pl.save(sweep, root / name)
        if seed == 0:
            tensor = pl.sweep(acts, [4], model="tensor", max_iter=30, progress=False)
            pl.save(tensor, root / "tensor-a.peeklens")
            pl.save(pl.spectrum(acts, k=20), root / "mnist-a-spectrum.peeklens")
            pl.save(sweep[8], root / "mnist-a-rank8.peeklens")  # a single Factorization
            pl.save(acts, root / "mnist-a-acts.peeklens")
    _edited_copy(root / "mnist-a-rank8.peeklens", root / "zz-edited.peeklens")


def _edited_copy(src: Path, dst: Path) -> None:
    """A copy whose meta.json was edited (a changed rmse), its digest member left as saved."""
    import zipfile

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for n in zin.namelist():
            raw = zin.read(n)
            if n == "meta.json":
                meta = json.loads(raw)
                meta["fit"]["rmse"] = 1e-6
                raw = json.dumps(meta).encode()
            zout.writestr(n, raw)


@pytest.fixture(scope="module")
def lab_server(start_lab, tmp_path_factory, mnist_test):
    root = tmp_path_factory.mktemp("labroot")
    _save_results(root, mnist_test)
    server = start_lab(
        root,
        args=[
            "--LabApp.extension_manager=readonly",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
    )
    return server["url"], root


@pytest.fixture(scope="module")
def page(lab_server, browser):
    url, _ = lab_server
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    pg.goto(url + "/lab?reset")
    pg.wait_for_selector(".jp-DirListing-item", timeout=90_000)
    pg.wait_for_function("window.jupyterapp && window.jupyterapp.commands")
    return pg


def _latent_pixels(pg) -> list[str]:
    return pg.eval_on_selector_all(
        ".jp-PeeklensPanel .pl-latent-gallery canvas", "cs => cs.slice(0, 4).map(c => c.toDataURL())"
    )


def test_saved_sweep_opens_as_document(page, lab_server):
    _, root = lab_server
    page.locator(".jp-DirListing-item", has_text="mnist-a.peeklens").first.dblclick()
    doc = page.locator(".jp-PeeklensPanel .pl-lab-document")
    doc.wait_for()
    page.wait_for_selector(".jp-PeeklensPanel .pl-lab-document[data-complete-rank='4']")

    # Rank explorer (chart with the three ranks), gallery tiles and heatmaps are drawn.
    assert page.locator(".jp-PeeklensPanel .pl-rank-explorer svg.pl-chart").count() >= 1
    assert page.locator(".jp-PeeklensPanel .pl-tile").count() == 4
    assert page.locator(".jp-PeeklensPanel .pl-neuron-heatmaps").count() == 1
    heat_text = page.locator(".jp-PeeklensPanel .pl-neuron-heatmaps").inner_text()
    assert "relu" in heat_text and "relu_1" in heat_text
    summary = page.locator(".jp-PeeklensPanel .pl-lab-summary").inner_text()
    assert "ranks 4, 8, 12" in summary and "300 samples" in summary
    # Only what the first view needs came over the wire, in several ranged reads of /files/.
    size = (root / "mnist-a.peeklens").stat().st_size
    fetched = page.evaluate(
        """() => performance.getEntriesByType('resource')
             .filter(e => e.name.includes('/files/mnist-a.peeklens'))
             .map(e => e.decodedBodySize)"""
    )
    print(f"\n[lab] opening rank 4 read {sum(fetched)} of {size} bytes in {len(fetched)} requests")
    assert len(fetched) > 1 and sum(fetched) < size

    before = _latent_pixels(page)
    assert len(before) >= 1 and all(u.startswith("data:image/png") for u in before)

    # Move the rank slider like a user (keyboard on the range input): every view follows.
    slider = page.locator(".jp-PeeklensPanel .pl-rank-explorer input.pl-rank-slider")
    slider.focus()
    slider.press("ArrowRight")
    page.wait_for_selector(".jp-PeeklensPanel .pl-lab-document[data-complete-rank='8']")
    assert page.locator(".jp-PeeklensPanel .pl-tile").count() == 8
    assert page.locator(".jp-PeeklensPanel .pl-neuron-heatmaps h4").first.inner_text().endswith("(rank 8)")
    after = _latent_pixels(page)
    assert after != before
    slider.press("ArrowRight")
    page.wait_for_selector(".jp-PeeklensPanel .pl-lab-document[data-complete-rank='12']")
    redraw_ms = float(doc.get_attribute("data-redraw-ms"))
    print(f"\n[lab] first paint after moving to rank 12 (first visit, reading its arrays): {redraw_ms:.1f} ms")
    slider.press("ArrowLeft")
    page.wait_for_selector(".jp-PeeklensPanel .pl-lab-document[data-complete-rank='8']")
    print(f"[lab] first paint back to rank 8 (cached): {float(doc.get_attribute('data-redraw-ms')):.1f} ms")
    assert page.locator(".jp-PeeklensPanel .pl-tile").count() == 8

    # The explained rank 4: every tile has its maximized input, and the attribution toggle is there.
    slider.press("ArrowLeft")
    page.wait_for_selector(".jp-PeeklensPanel .pl-lab-document[data-complete-rank='4']")
    assert page.locator(".jp-PeeklensPanel .pl-tile canvas.pl-max").count() == 4
    assert page.locator(".jp-PeeklensPanel .pl-interp-toggle").count() == 1
    slider.press("ArrowRight")
    page.wait_for_selector(".jp-PeeklensPanel .pl-lab-document[data-complete-rank='8']")

    # Clicking a tile selects the factor.
    page.locator(".jp-PeeklensPanel .pl-tile").nth(3).click()
    page.wait_for_selector(".jp-PeeklensPanel .pl-lab-document[data-factor='3']")
    assert "pl-selected" in (page.locator(".jp-PeeklensPanel .pl-tile").nth(3).get_attribute("class") or "")

    # Compare with the other files of the folder: RMSE curves of both sweeps, the spectrum, galleries.
    page.locator(".jp-PeeklensPanel .pl-lab-compare-button").click()
    page.wait_for_selector(".jp-PeeklensPanel .pl-compare")
    networks = page.eval_on_selector_all(
        ".jp-PeeklensPanel .pl-compare .pl-compare-network", "els => els.map(e => e.dataset.network)"
    )
    assert networks == ["mnist-a.peeklens", "mnist-a-rank8.peeklens", "mnist-b.peeklens", "tensor-a.peeklens"]
    assert page.locator(".jp-PeeklensPanel .pl-compare svg.pl-chart").count() >= 2  # RMSE + spectrum
    # The two scored sweeps are ranked by their saved quality score, best first.
    ranked = page.eval_on_selector_all(
        ".jp-PeeklensPanel .pl-quality-row", "gs => gs.map(g => [g.dataset.network, Number(g.dataset.score)])"
    )
    scores = {n: pl.load(root / n).quality.score for n in ("mnist-a.peeklens", "mnist-b.peeklens")}
    assert [n for n, _ in ranked] == sorted(scores, key=scores.get, reverse=True)
    for n, shown in ranked:
        assert shown == pytest.approx(scores[n], rel=1e-6)

    ARTIFACTS.mkdir(exist_ok=True)
    page.locator(".jp-PeeklensPanel .pl-lab-compare").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "lab-document-compare.png"))
    page.locator(".jp-PeeklensPanel .pl-lab-heatmaps").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "lab-document-heatmaps.png"))
    page.locator(".jp-PeeklensPanel .pl-lab-header").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "lab-document.png"))


def test_tensor_sweep_shows_channel_matrix_and_spatial_maps(page, lab_server):
    page.locator(".jp-DirListing-item", has_text="tensor-a.peeklens").first.dblclick()
    panel = page.locator(".jp-PeeklensPanel:visible")
    panel.locator(".pl-lab-document[data-complete-rank='4']").wait_for()
    heat = panel.locator(".pl-neuron-heatmaps")
    text = heat.inner_text()
    assert "tensor model" in text and "relu_1" in text
    # one spatial map per factor per tensor layer (relu, relu_1), each a drawn canvas
    assert panel.locator("canvas.pl-spatial").count() >= 8
    ARTIFACTS.mkdir(exist_ok=True)
    heat.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "lab-document-tensor.png"))


def test_layer_names_are_text_and_spectrum_file_opens(page, lab_server):
    page.locator(".jp-DirListing-item", has_text="mnist-a-spectrum.peeklens").first.dblclick()
    page.wait_for_selector(".jp-PeeklensPanel .pl-lab-spectrum svg.pl-chart")
    table = page.locator(".jp-PeeklensPanel .pl-lab-spectrum table").last.inner_text()
    assert "input channel 0" in table and "relu_1" in table  # names as the charts title them
    first = page.locator(".jp-PeeklensPanel .pl-lab-spectrum table").last.locator("td").first
    assert first.get_attribute("title") == "input:0"  # the saved name on hover
    heads = page.locator(".jp-PeeklensPanel .pl-lab-spectrum table").last.locator("th")
    assert heads.nth(1).get_attribute("title").startswith("entropy rank: exp(")  # the glossary explains the columns
    assert heads.nth(2).get_attribute("title").startswith("stable rank")


def test_factorization_and_activations_files_open(page, lab_server):
    page.locator(".jp-DirListing-item", has_text="mnist-a-rank8.peeklens").first.dblclick()
    doc = page.locator(".jp-PeeklensPanel:visible .pl-lab-document")
    page.wait_for_selector(".jp-PeeklensPanel:visible .pl-lab-document[data-complete-rank='8']")
    assert page.locator(".jp-PeeklensPanel:visible .pl-tile").count() == 8
    assert "Factorization" in doc.locator(".pl-lab-summary").inner_text()

    page.locator(".jp-DirListing-item", has_text="mnist-a-acts.peeklens").first.dblclick()
    page.wait_for_selector(".jp-PeeklensPanel:visible .pl-lab-activations canvas")
    table = page.locator(".jp-PeeklensPanel:visible .pl-lab-activations table").inner_text()
    assert "relu_1" in table and "1440" in table
    assert page.locator(".jp-PeeklensPanel:visible .pl-lab-activations canvas").count() == 32


def _open_error(page, name: str) -> str:
    page.evaluate("window.jupyterapp.commands.execute('application:close-all')")
    page.wait_for_function("document.querySelectorAll('.jp-PeeklensPanel').length === 0")
    page.locator(".jp-DirListing-item", has_text=name).first.dblclick()
    page.wait_for_selector(".jp-PeeklensPanel:visible .pl-lab-error")
    return page.locator(".jp-PeeklensPanel:visible .pl-lab-error").first.inner_text()


def test_edited_metadata_shows_a_clear_error_with_and_without_webcrypto(page, lab_server):
    msg = _open_error(page, "zz-edited.peeklens")
    assert "Cannot open zz-edited.peeklens" in msg and "meta.json does not match its recorded checksum" in msg
    page.evaluate("window.jupyterapp.commands.execute('application:close-all')")
    # A plain-HTTP server (not localhost) gives pages no crypto.subtle: the digests are still checked.
    page.evaluate(
        "Object.defineProperty(Crypto.prototype, 'subtle', {get() { return undefined; }, configurable: true})"
    )
    assert page.evaluate("window.crypto.subtle === undefined")
    msg = _open_error(page, "zz-edited.peeklens")
    assert "meta.json does not match its recorded checksum" in msg
    page.evaluate("window.jupyterapp.commands.execute('application:close-all')")
    page.wait_for_function("document.querySelectorAll('.jp-PeeklensPanel').length === 0")
    page.locator(".jp-DirListing-item", has_text="mnist-a-rank8.peeklens").first.dblclick()
    page.wait_for_selector(".jp-PeeklensPanel:visible .pl-lab-document[data-complete-rank='8']")
    assert page.locator(".jp-PeeklensPanel:visible .pl-tile").count() == 8


def test_launcher_and_palette_commands(page, lab_server):
    _, root = lab_server
    for cmd, label in (
        ("peeklens:new-notebook", "New peeklens notebook"),
        ("peeklens:open-tutorials", "Open peeklens tutorials"),
    ):
        assert page.evaluate(f"window.jupyterapp.commands.hasCommand('{cmd}')")
        assert page.evaluate(f"window.jupyterapp.commands.label('{cmd}')") == label

    # The palette lists both under "peeklens".
    page.keyboard.press("Control+Shift+C")
    page.wait_for_selector(".lm-CommandPalette-input")
    page.fill(".lm-CommandPalette-input", "peeklens")
    items = page.locator(".lm-CommandPalette-item").all_inner_texts()
    assert any("New peeklens notebook" in t for t in items)
    assert any("Open peeklens tutorials" in t for t in items)
    page.keyboard.press("Escape")

    # The launcher card creates a notebook from the quickstart template in the server root.
    page.evaluate("window.jupyterapp.commands.execute('launcher:create')")
    card = page.locator(".jp-LauncherCard:visible", has_text="New peeklens notebook").first
    # both cards show their picture, not the label's first letter
    for text in ("New peeklens notebook", "Open peeklens tutorials"):
        c = page.locator(".jp-LauncherCard:visible", has_text=text).first
        assert c.locator(".jp-LauncherCard-noKernelIcon").count() == 0
        icon = c.locator("img.jp-Launcher-kernelIcon")
        assert icon.get_attribute("src").startswith("data:image/svg+xml")
        assert icon.evaluate("i => i.complete && i.naturalWidth > 0")
    card.click()
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    nb_path = root / "peeklens-quickstart.ipynb"
    deadline = time.time() + 20
    while not nb_path.exists() and time.time() < deadline:
        time.sleep(0.2)
    nb = json.loads(nb_path.read_text())
    sources = ["".join(c["source"]) for c in nb["cells"]]
    assert any("pl.capture(" in s for s in sources) and any("pl.sweep(" in s for s in sources)

    # Tutorials: shipped notebooks are copied to peeklens-tutorials/ and the first one opens;
    # an installation without them says so.
    index = json.loads(
        (Path(sys.prefix) / "share/jupyter/labextensions/peeklens/static/tutorials/index.json").read_text()
    )
    result = (
        page.evaluate("window.jupyterapp.commands.execute('peeklens:open-tutorials', {cwd: ''})")
        if index["notebooks"]
        else None
    )
    if index["notebooks"]:
        copied = sorted(p.name for p in (root / "peeklens-tutorials").glob("*.ipynb"))
        assert copied == sorted(index["notebooks"])
        assert result == f"peeklens-tutorials/{index['notebooks'][0]}"
    else:
        page.evaluate("void window.jupyterapp.commands.execute('peeklens:open-tutorials', {cwd: ''})")
        page.wait_for_selector(".jp-Dialog", timeout=20_000)
        assert "tutorial" in page.locator(".jp-Dialog").inner_text().lower()
        page.keyboard.press("Escape")
