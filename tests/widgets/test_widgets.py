"""Widget traits and binary buffers (peeklens.widgets), without a browser."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ipywidgets.widgets.widget import _remove_buffers

import peeklens as pl
from peeklens import views
from peeklens.widgets import (
    STATIC,
    Compare,
    Dashboard,
    LatentGallery,
    NeuronHeatmaps,
    RankExplorer,
    SpectrumPlot,
    summary_html,
    widget_for,
)


def f32(b: bytes) -> np.ndarray:
    return np.frombuffer(b, dtype="<f4")


@pytest.fixture(scope="module")
def image_acts():
    """Non-negative 'images' (6x5 pixels) and two layers (one conv-like 2x3x3, one dense 7), with labels."""
    rng = np.random.default_rng(3)
    n = 80
    F = rng.random((n, 3))
    acts = pl.Activations.from_arrays(
        {"input:0": rng.random((30, 3)) @ F.T, "relu": rng.random((18, 3)) @ F.T, "fc": rng.random((7, 3)) @ F.T},
        shapes={"input:0": (6, 5), "relu": (2, 3, 3)},
        labels=rng.integers(0, 4, n),
    )
    return acts


@pytest.fixture(scope="module")
def sw(image_acts):
    return pl.sweep(image_acts, ranks=[2, 3, 5], max_iter=20, progress=False)


def test_explorer_carries_errors_as_float32_buffers(sw):
    w = RankExplorer(sw)
    assert w.ranks == [2, 3, 5] and w.rank == 2
    np.testing.assert_allclose(f32(w.rmse), sw.rmse, rtol=1e-6)
    errs = f32(w.block_errors).reshape(len(w.block_names), len(w.ranks))
    for i, n in enumerate(w.block_names):
        np.testing.assert_allclose(errs[i], sw.errors()[n], rtol=1e-6)
    state, buffer_paths, buffers = _remove_buffers(w.get_state())
    assert ["rmse"] in buffer_paths and ["block_errors"] in buffer_paths
    assert "_esm" in state and "render" in state["_esm"]
    json.dumps(state)  # everything else is JSON


def _float_lists(obj, path=()):
    """Paths of JSON lists that hold a float."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _float_lists(v, path + (k,))
    elif isinstance(obj, list):
        if any(isinstance(x, float) for x in obj):
            out.append(path)
        for i, v in enumerate(obj):
            out += _float_lists(v, path + (i,))
    return out


def test_no_float_lists_travel_as_json(sw, image_acts):
    widgets = [LatentGallery(sw), NeuronHeatmaps(sw), RankExplorer(sw), SpectrumPlot(pl.spectrum(image_acts, k=4)),
               Compare({"a": sw})]
    for w in widgets:
        state, paths, buffers = _remove_buffers(w.get_state())
        assert buffers, type(w).__name__
        assert all(isinstance(b, (bytes, memoryview)) for b in buffers)
        assert _float_lists(json.loads(json.dumps(state))) == [], type(w).__name__


def test_rank_must_be_swept(sw):
    w = RankExplorer(sw, rank=3)
    assert w.rank == 3 and w.fit is sw[3]
    with pytest.raises(pl.InputError, match=r"rank 4 is not in this sweep; ranks are \[2, 3, 5\]"):
        w.rank = 4


def test_gallery_payload_matches_views(sw, image_acts):
    g = LatentGallery(sw, top_k=4, hist_k=10)
    assert g.image_shape == [6, 5, 1] and g.top_k == 4 and g.n_classes == 4
    assert g.class_names == ["0", "1", "2", "3"]
    assert [f["rank"] for f in g.fits] == [2, 3, 5]
    fit5 = g.fits[2]
    lat = f32(fit5["latents"]).reshape(5, 6, 5)
    np.testing.assert_allclose(lat, views.latent_images(sw[5]), rtol=1e-6)
    top = f32(fit5["top"]).reshape(5, 4, 6, 5)
    idx = views.top_inputs(sw[5], 4)
    raw = views.input_images(sw[5], idx)
    lo, hi = image_acts["input:0"].data.min(), image_acts["input:0"].data.max()
    np.testing.assert_allclose(top, (raw - lo) / (hi - lo), rtol=1e-5, atol=1e-6)
    hist = np.frombuffer(fit5["hist"], "<i4").reshape(5, 4)
    np.testing.assert_array_equal(hist, views.class_histograms(sw[5], 10, 4))
    assert (hist.sum(axis=1) == 10).all()


def test_gallery_factor_follows_rank(sw):
    g = LatentGallery(sw, rank=5)
    g.factor = 4
    g.rank = 2
    assert g.factor == 1
    with pytest.raises(pl.InputError):
        g.factor = -1


def test_gallery_needs_inputs_and_enough_class_names(sw, image_acts):
    no_inputs = pl.sweep(image_acts.select(["relu", "fc"]), ranks=[2], max_iter=5, progress=False)
    with pytest.raises(pl.InputError, match="include_input=True"):
        LatentGallery(no_inputs)
    with pytest.raises(pl.InputError, match="class_names has 2 names"):
        LatentGallery(sw, class_names=["a", "b"])
    d = Dashboard(no_inputs)
    assert d.gallery is None and d.heatmaps is not None


def test_rgb_inputs_give_rgb_tiles():
    rng = np.random.default_rng(0)
    arrays = {f"input:{c}": rng.random((12, 20)) for c in range(3)}
    arrays["relu"] = rng.random((5, 20))
    acts = pl.Activations.from_arrays(arrays, shapes={f"input:{c}": (3, 4) for c in range(3)})
    g = LatentGallery(pl.factorize(acts, rank=2, max_iter=5))
    assert g.image_shape == [3, 4, 3]
    assert len(g.fits[0]["latents"]) == 2 * 3 * 4 * 3 * 4


def test_heatmaps_payload(sw):
    h = NeuronHeatmaps(sw)
    assert h.layer_names == ["relu", "fc"] and h.layer_shapes == [[2, 3, 3], [7]]
    f3 = h.fits[1]
    np.testing.assert_array_equal(f32(f3["loadings"][0]).reshape(18, 3), sw[3].loadings["relu"].astype(np.float32))
    np.testing.assert_allclose(f32(f3["unused"]), [views.utilisation(sw[3], n)["unused_share"] for n in h.layer_names])
    with pytest.raises(pl.InputError, match="no block named 'nope'"):
        NeuronHeatmaps(sw, layers=["nope"])


def test_dashboard_links_rank_and_factor(sw, image_acts):
    sp = pl.spectrum(image_acts, k=5)
    d = Dashboard(sw, spectrum={"net": sp}, rank=3)
    assert (d.rank, d.gallery.rank, d.heatmaps.rank) == (3, 3, 3)
    assert d.fit is sw[3]
    d.rank = 5
    assert (d.gallery.rank, d.heatmaps.rank) == (5, 5)
    d.gallery.factor = 4  # a tile click arrives as a change of the gallery's factor
    assert d.heatmaps.factor == 4 and d.factor == 4
    d.factor = 1
    assert (d.gallery.factor, d.heatmaps.factor) == (1, 1)
    # the browser-side links, saved with the notebook
    links = {(l.source[0].model_id, l.source[1], l.target[0].model_id, l.target[1]) for l in d._links}
    assert (d.explorer.model_id, "rank", d.gallery.model_id, "rank") in links
    assert (d.gallery.model_id, "factor", d.heatmaps.model_id, "factor") in links
    assert d.spectrum is not None and len(d.spectrum.series) == 3


def test_dashboard_of_a_loaded_sweep(sw, tmp_path):
    path = tmp_path / "s.peeklens"
    pl.save(sw, path)
    d = Dashboard(pl.load(path))
    assert d.explorer.ranks == [2, 3, 5]


def test_spectrum_overlay_and_errors(image_acts):
    a = pl.spectrum(image_acts, k=4)
    b = pl.spectrum(image_acts.select(["relu"]), k=4)
    w = SpectrumPlot({"A": a, "B": b}, k=3)
    assert [(s["network"], s["layer"]) for s in w.series] == [("A", "input:0"), ("A", "relu"), ("A", "fc"), ("B", "relu")]
    np.testing.assert_allclose(f32(w.series[1]["values"]), a.values["relu"][:3], rtol=1e-6)
    assert len(SpectrumPlot(a, layers=["fc"]).series) == 1
    with pytest.raises(pl.InputError, match="expected a Spectrum"):
        SpectrumPlot([1, 2])


def test_compare(sw, image_acts):
    other = pl.sweep(image_acts, ranks=[3, 4], max_iter=5, progress=False)
    c = Compare({"A": sw, "B": other}, spectra={"A": pl.spectrum(image_acts, k=3)})
    assert [n["name"] for n in c.networks] == ["A", "B"]
    assert c.rank == 2 and c.image_shape == [6, 5, 1]
    assert len(c.networks[1]["latents"]) == 2
    c.rank = 4
    with pytest.raises(pl.InputError, match="swept by none"):
        c.rank = 7
    with pytest.raises(pl.InputError, match="dict of name -> Sweep"):
        Compare({})


def test_widget_for_and_show(sw, image_acts):
    assert isinstance(widget_for(sw), Dashboard)
    assert isinstance(widget_for(sw[2]), Dashboard)
    assert isinstance(widget_for({"a": sw, "b": sw}), Compare)
    assert isinstance(widget_for(pl.spectrum(image_acts, k=3)), SpectrumPlot)
    assert "relu" in widget_for(image_acts).value
    with pytest.raises(pl.InputError, match="cannot show a str"):
        pl.show("x")


def test_summaries_escape_names():
    rng = np.random.default_rng(0)
    evil = "<script>alert(1)</script>"
    acts = pl.Activations.from_arrays({"input:0": rng.random((4, 10)), evil: rng.random((3, 10))})
    fit = pl.factorize(acts, rank=2, max_iter=5)
    sw = pl.sweep(acts, ranks=[1, 2], max_iter=5, progress=False)
    for obj in (acts, fit, sw, pl.spectrum(acts, k=2)):
        html = summary_html(obj)
        assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in widget_for(acts).value


def test_bundles_are_built():
    for name in ("rank_explorer", "latent_gallery", "neuron_heatmaps", "spectrum_plot", "compare"):
        js = (STATIC / f"{name}.js").read_text()
        assert "render" in js and "export" in js


def test_heatmaps_warn_about_a_heavy_payload(sw, monkeypatch):
    import peeklens.widgets as W

    monkeypatch.setattr(W, "_LARGE_PAYLOAD", 100)
    with pytest.warns(UserWarning, match=r"pass layers=\[\.\.\.\] or sweep fewer ranks"):
        NeuronHeatmaps(sw)
