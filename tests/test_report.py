"""The offline HTML report: self-contained (bundle and data inline), escaped, and its data readable."""

import base64
import io
import re
import zipfile

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

import peeklens as pl
from peeklens import report
from peeklens.report import render_report, write_report


@pytest.fixture(scope="module")
def two_sweeps(mnist_test):
    from peeklens.studies import PaperNet

    x, y = mnist_test
    out = {}
    for seed, label in [(0, "net <script>alert(1)</script>"), (1, "other & co")]:
        torch.manual_seed(seed)
        acts = pl.capture(PaperNet(), TensorDataset(x[:200], y[:200]), layers=["relu", "relu_1"], progress=False)
        out[label] = (pl.sweep(acts, ranks=[2, 3], max_iter=20, progress=False),
                      pl.spectrum(acts, k=20, blocks=["relu", "relu_1"]))
    return out


def _embedded(html: str) -> list[tuple[str, str, bytes]]:
    pattern = (r'<script type="application/x-peeklens" data-kind="(\w+)" data-label="([^"]*)">'
               r"([A-Za-z0-9+/=]+)</script>")
    return [(m.group(1), m.group(2), base64.b64decode(m.group(3))) for m in re.finditer(pattern, html)]


def test_report_self_contained_and_escaped(two_sweeps, tmp_path):
    sweeps = {k: v[0] for k, v in two_sweeps.items()}
    spectra = {k: v[1] for k, v in two_sweeps.items()}
    p = write_report(sweeps, tmp_path / "sub" / "r.html", spectra=spectra, title="T <i>",
                     table={"network": list(sweeps), "accuracy": ["–", "50.0 %"]},
                     verdict="A < B holds", verdict_ok=True)
    html = p.read_text()
    # names are text: escaped in the page, and the only <script> elements are the data and the bundle
    assert "net &lt;script&gt;alert(1)&lt;/script&gt;" in html and "other &amp; co" in html
    assert "<script>alert" not in html
    assert "T &lt;i&gt;" in html and "50.0 %" in html and "A &lt; B holds" in html and 'pl-verdict ok' in html
    assert not re.search(r'(src|href)=["\']?(https?:)?//', html)  # nothing fetched from the network
    assert report.report_bundle()[:200] in html  # the bundle is inline
    data = _embedded(html)
    assert [(k, lab) for k, lab, _ in data] == [
        ("sweep", "net &lt;script&gt;alert(1)&lt;/script&gt;"), ("sweep", "other &amp; co"),
        ("spectrum", "net &lt;script&gt;alert(1)&lt;/script&gt;"), ("spectrum", "other &amp; co")]
    # each embedded result is a .peeklens file (no full inputs: the display section carries the thumbnails)
    sw = next(iter(sweeps.values()))
    raw = data[0][2]
    (tmp_path / "x.peeklens").write_bytes(raw)
    back = pl.load(tmp_path / "x.peeklens")
    np.testing.assert_array_equal(back[3].F, sw[3].F)
    assert back[3].inputs is None
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        assert "display.image.0.npy" in z.namelist() and "input.0.npy" not in z.namelist()


def test_report_default_table_single_sweep_and_bad_input(two_sweeps):
    sw = next(iter(two_sweeps.values()))[0]
    html = render_report(sw)
    assert "<th>RMSE r=2</th>" in html and f"{sw[2].rmse:.5f}" in html
    assert len(_embedded(html)) == 1
    with pytest.raises(pl.InputError, match="write_report needs"):
        render_report([1, 2])
    with pytest.raises(pl.InputError, match="at least one finished rank"):
        render_report({"empty": pl.Sweep({})})
    with pytest.raises(pl.InputError, match="expected a Spectrum"):
        render_report(sw, spectra={"x": 1})


def test_missing_bundle_is_a_clear_error(two_sweeps, monkeypatch, tmp_path):
    monkeypatch.setattr(report, "BUNDLE", tmp_path / "nope.js")
    with pytest.raises(pl.InputError, match="report bundle .* is missing"):
        render_report(next(iter(two_sweeps.values()))[0])


def test_report_module_does_not_know_studies():
    src = open(report.__file__).read()
    assert "studies" not in src.replace("knows nothing about studies", "")
