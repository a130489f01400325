"""Widget traits and binary buffers (peeklens.widgets), without a browser."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ipywidgets.widgets.widget import _remove_buffers

import peeklens as pl
from peeklens import schema, views
from peeklens.widgets import (
    STATIC,
    Compare,
    Dashboard,
    LatentGallery,
    NeuronHeatmaps,
    RankExplorer,
    SpectrumPlot,
    _payload,
    summary_html,
    widget_for,
)


def f32(b: bytes) -> np.ndarray:
    return np.frombuffer(b, dtype="<f4")


def arr(w, key) -> np.ndarray:
    """A synced array, decoded with the dtype and shape of the schema metadata (as js/core does)."""
    return np.frombuffer(w.arrays[key], dtype=w.meta["dtypes"][key]).reshape(w.meta["shapes"][key])


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


def test_explorer_carries_the_results_metadata(sw):
    w = RankExplorer(sw)
    assert w.ranks == [2, 3, 5] and w.rank == 2
    assert w.meta["format_version"] == 2 and w.meta["type"] == "Sweep" and w.arrays == {}
    assert [w.meta["fits"][str(r)]["rmse"] for r in w.ranks] == [float(x) for x in sw.rmse]
    assert w.meta["fits"]["3"]["errors"] == [float(sw[3].errors[n]) for n in sw.block_names]
    state, buffer_paths, buffers = _remove_buffers(w.get_state())
    assert "_esm" in state and "render" in state["_esm"]
    json.dumps(state)  # everything is JSON: the explorer needs no array


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


def test_arrays_travel_as_binary_buffers_and_only_metadata_as_json(sw, image_acts):
    widgets = [LatentGallery(sw), NeuronHeatmaps(sw), SpectrumPlot(pl.spectrum(image_acts, k=4)), Compare({"a": sw})]
    for w in widgets:
        state, paths, buffers = _remove_buffers(w.get_state())
        assert buffers, type(w).__name__
        assert all(isinstance(b, (bytes, memoryview)) for b in buffers)
        floats = _float_lists(json.loads(json.dumps(state)))
        # float lists only in the schema metadata (errors per block, the thumbnails' value range): never arrays
        assert all("meta" in p for p in floats), (type(w).__name__, floats)
        assert len(json.dumps({k: v for k, v in state.items() if k != "_esm"})) < 20_000, type(w).__name__


def test_rank_must_be_swept(sw):
    w = RankExplorer(sw, rank=3)
    assert w.rank == 3 and w.fit is sw[3]
    with pytest.raises(pl.InputError, match=r"rank 4 is not in this sweep; ranks are \[2, 3, 5\]"):
        w.rank = 4


def test_gallery_syncs_the_results_it_derives_from(sw, image_acts):
    g = LatentGallery(sw, top_k=4, hist_k=10, class_names=["a", "b", "c", "d"])
    meta, arrays = schema.to_payload(sw, include_inputs=False, top_k=4)
    assert sorted(g.arrays) == sorted(_payload.gallery_keys(meta))
    assert g.hist_k == 10 and g.meta["inputs"] is None and "input.0" not in g.arrays  # never the full inputs
    for r in sw.ranks:
        np.testing.assert_array_equal(arr(g, f"r{r}.F"), sw[r].F)
        np.testing.assert_array_equal(arr(g, g.meta["fits"][str(r)]["W"][0]), sw[r].loadings["input:0"])
    np.testing.assert_array_equal(arr(g, "labels"), image_acts.labels)
    d = g.meta["display"]
    assert d["top_k"] == 4 and d["class_names"] == ["a", "b", "c", "d"]
    samples = arr(g, d["samples"])
    for r in sw.ranks:  # every factor's top inputs are among the samples sent
        assert set(views.top_inputs(sw[r], 4).ravel()) <= set(samples.tolist())
    np.testing.assert_array_equal(arr(g, d["images"][0]), image_acts["input:0"].data[:, samples].astype(np.float32))
    x = image_acts["input:0"].data
    assert d["value_range"] == [float(x.min()), float(x.max())]


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
    assert len(g.meta["display"]["images"]) == 3  # one image block per channel: the browser folds them to RGB
    assert [b["shape"] for b in g.meta["fits"]["2"]["blocks"][:3]] == [[3, 4]] * 3


def test_heatmaps_payload(sw):
    h = NeuronHeatmaps(sw)
    assert h.layer_names == ["relu", "fc"]
    f3 = h.meta["fits"]["3"]
    np.testing.assert_array_equal(arr(h, f3["W"][f3["names"].index("relu")]), sw[3].loadings["relu"])
    assert len(h.arrays) == 2 * 3  # two layers at three ranks: no F, no input loadings
    assert len(NeuronHeatmaps(sw, layers=["fc"]).arrays) == 3
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
    links = {(lk.source[0].model_id, lk.source[1], lk.target[0].model_id, lk.target[1]) for lk in d._links}
    assert (d.explorer.model_id, "rank", d.gallery.model_id, "rank") in links
    assert (d.gallery.model_id, "factor", d.heatmaps.model_id, "factor") in links
    assert d.spectrum is not None and [p["name"] for p in d.spectrum.spectra] == ["net"]
    assert d.gallery.meta == d.heatmaps.meta  # one payload, made once


def test_dashboard_of_a_loaded_sweep(sw, tmp_path):
    path = tmp_path / "s.peeklens"
    pl.save(sw, path)
    d = Dashboard(pl.load(path))
    assert d.explorer.ranks == [2, 3, 5]


def test_spectrum_overlay_and_errors(image_acts):
    a = pl.spectrum(image_acts, k=4)
    b = pl.spectrum(image_acts.select(["relu"]), k=4)
    w = SpectrumPlot({"A": a, "B": b}, k=3)
    assert [p["name"] for p in w.spectra] == ["A", "B"] and w.k == 3
    assert [p["meta"]["names"] for p in w.spectra] == [["input:0", "relu", "fc"], ["relu"]]
    A = w.spectra[0]
    np.testing.assert_allclose(np.frombuffer(A["arrays"]["sv.1"], A["meta"]["dtypes"]["sv.1"]), a.values["relu"])
    assert SpectrumPlot(a, layers=["fc"]).layers == ["fc"]
    with pytest.raises(pl.InputError, match="expected a Spectrum"):
        SpectrumPlot([1, 2])


def test_compare(sw, image_acts):
    other = pl.sweep(image_acts, ranks=[3, 4], max_iter=5, progress=False)
    c = Compare({"A": sw, "B": other}, spectra={"A": pl.spectrum(image_acts, k=3)})
    assert [n["name"] for n in c.networks] == ["A", "B"]
    assert c.rank == 2
    assert sorted(c.networks[1]["arrays"]) == ["r3.W.0", "r4.W.0"]  # input-side loadings only
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
    assert "peeklens" in (STATIC / "report.js").read_text()  # the offline report's bundle


def test_heatmaps_warn_about_a_heavy_payload(sw, monkeypatch):
    import peeklens.widgets as W

    monkeypatch.setattr(W, "_LARGE_PAYLOAD", 100)
    with pytest.warns(UserWarning, match=r"pass layers=\[\.\.\.\] or sweep fewer ranks"):
        NeuronHeatmaps(sw)
    with pytest.warns(UserWarning, match=r"the gallery sends .* sweep fewer ranks or fewer samples"):
        LatentGallery(sw)
