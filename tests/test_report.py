import re
import struct
import zlib

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

import peeklens as pl
from peeklens.report import colormap, line_chart_svg, png_bytes, render_report, write_report


def _decode_png(data: bytes) -> np.ndarray:
    """A minimal PNG reader (filter 0 rows only, as png_bytes writes) to check the encoder."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w, h, ch = 8, b"", 0, 0, 1
    while pos < len(data):
        n = struct.unpack(">I", data[pos:pos + 4])[0]
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(tag + body) & 0xFFFFFFFF
        if tag == b"IHDR":
            w, h, _, color = struct.unpack(">IIBB", body[:10])
            ch = 3 if color == 2 else 1
        elif tag == b"IDAT":
            idat += body
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * ch)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].reshape(h, w, ch).squeeze(-1) if ch == 1 else raw[:, 1:].reshape(h, w, 3)


def test_png_roundtrip():
    img = np.random.default_rng(0).random((5, 7))
    back = _decode_png(png_bytes(img))
    np.testing.assert_array_equal(back, np.round(img * 255).astype(np.uint8))
    rgb = (np.random.default_rng(1).random((3, 4, 3)) * 255).astype(np.uint8)
    np.testing.assert_array_equal(_decode_png(png_bytes(rgb)), rgb)
    with pytest.raises(pl.InputError):
        png_bytes(np.zeros((2, 2, 4)))


def test_colormap_ends():
    c = colormap(np.array([0.0, 1.0, 2.0, np.nan]))
    assert c.shape == (4, 3) and c.dtype == np.uint8
    assert c[0].tolist() == [68, 1, 84] and c[1].tolist() == [253, 231, 37] == c[2].tolist()


def test_line_chart_log_and_escape():
    svg = line_chart_svg({"<b>net</b>": ([1, 2, 3], [100.0, 10.0, 1.0])}, logy=True, title="s")
    assert "&lt;b&gt;net&lt;/b&gt;" in svg and "<b>net" not in svg
    assert svg.count("<circle") == 3
    ys = [float(v) for v in re.findall(r'cy="([0-9.]+)"', svg)]
    assert ys[0] < ys[1] < ys[2] and abs((ys[1] - ys[0]) - (ys[2] - ys[1])) < 0.5  # equal steps per decade


@pytest.fixture(scope="module")
def two_sweeps(mnist_test):
    from peeklens.studies import PaperNet

    x, y = mnist_test
    out = {}
    for seed, label in [(0, "net <script>alert(1)</script>"), (1, "other & co")]:
        torch.manual_seed(seed)
        acts = pl.capture(PaperNet(), TensorDataset(x[:200], y[:200]), layers=["relu", "relu_1"], progress=False)
        out[label] = (pl.sweep(acts, ranks=[2, 3], max_iter=20, progress=False), pl.spectrum(acts, k=20, blocks=["relu", "relu_1"]))
    return out


def test_report_self_contained_and_escaped(two_sweeps, tmp_path):
    sweeps = {k: v[0] for k, v in two_sweeps.items()}
    spectra = {k: v[1] for k, v in two_sweeps.items()}
    p = write_report(sweeps, tmp_path / "sub" / "r.html", spectra=spectra,
                     accuracies={"other & co": 0.5}, title="T <i>", rank=3)
    html = p.read_text()
    assert "<script" not in html.lower()  # the label is text, never markup
    assert "net &lt;script&gt;alert(1)&lt;/script&gt;" in html and "other &amp; co" in html
    assert "T &lt;i&gt;" in html and "50.0 %" in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from the network
    assert html.count("<svg") == 1 + 3 + 2  # RMSE, one per block, one spectrum per layer
    # latent images at rank 3: 3 tiles + 3 top-input strips per network; heatmaps: 3 rows x 2 layers per network
    n_png = html.count("data:image/png;base64,")
    assert n_png == 2 * (3 + 3) + 2 * (3 * 2)
    assert "Latent images at rank 3" in html
    for m in re.finditer(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html):
        import base64

        _decode_png(base64.b64decode(m.group(1)))


def test_report_from_single_sweep_and_bad_input(two_sweeps):
    sw = next(iter(two_sweeps.values()))[0]
    html = render_report(sw)
    assert "Latent images at rank 2" in html and "<svg" in html
    with pytest.raises(pl.InputError, match="write_report needs"):
        render_report([1, 2])
    with pytest.raises(pl.InputError, match="at least one finished rank"):
        render_report({"empty": pl.Sweep({})})
