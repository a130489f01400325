"""pl.explain: a whole fit's interpretation for the views, kept on the factorization and in its file."""

from __future__ import annotations

import base64
import importlib
import io
import json
import re
import zipfile

import numpy as np
import pytest
import torch

import peeklens as pl
from peeklens import schema, views
from peeklens.errors import InputError, LayerNotFoundError
from peeklens.interpret import Explanation
from peeklens.widgets import _payload

explain_module = importlib.import_module("peeklens.interpret.explain")  # the package exports the function by that name


@pytest.fixture()
def small_sweep(small_fit):
    model, fit, x = small_fit
    acts = pl.capture(model, x, layers=["1", "4"], progress=False)
    return model, pl.sweep(acts, ranks=[2, 3], max_iter=30, progress=False, seed=0)


def test_explain_attaches_and_aligns_with_display(small_sweep):
    model, sw = small_sweep
    out = pl.explain(model, sw, "1", steps=8, top_k=4, progress=False)
    assert sorted(out) == [2, 3]
    for r, ex in out.items():
        fit = sw[r]
        assert fit.interpretation == {"1": ex}
        assert ex.factors.tolist() == list(range(r)) and ex.method == "spatial" and not ex.interrupted
        assert ex.maximized.dtype == np.uint8 and ex.maximized.shape == (r, 1, 8, 8, 1)
        assert ex.heatmaps.dtype == np.uint8 and ex.heatmaps.shape == (r, 4, 8, 8)
        # the attributed samples are the thumbnails the views show: each factor's top inputs, strongest first
        np.testing.assert_array_equal(ex.samples, views.top_inputs(fit, 4))
        for f in range(r):
            one = pl.attribute(model, fit, "1", f, method="spatial", k=4)
            np.testing.assert_array_equal(one.indices, ex.samples[f])
            # stored as uint8 of map / max: within half a level of the full-precision map
            np.testing.assert_allclose(ex.heatmap(f, 0), one.heatmaps[0], atol=0.5 / 255 * one.heatmaps[0].max() + 1e-6)
            assert ex.heatmaps[f].reshape(4, -1).max(axis=1).tolist() == [255] * 4
            np.testing.assert_allclose(ex.scores[f], one.scores, rtol=1e-5)
    # every attributed sample's image is in the display section the views read
    meta, arrays = schema.to_payload(sw, include_inputs=False, top_k=4)
    shown = set(arrays[meta["display"]["samples"]].tolist())
    assert all(set(ex.samples.ravel().tolist()) <= shown for ex in out.values())


def test_schema_round_trip_is_exact(small_sweep, tmp_path):
    model, sw = small_sweep
    pl.explain(model, sw, "1", ranks=[3], factors=[0, 2], n_images=2, steps=6, top_k=3, progress=False)
    p = pl.save(sw, tmp_path / "s.peeklens")
    back = pl.load(p)
    assert back[2].interpretation is None  # rank 2 was not explained
    a, b = sw[3].interpretation["1"], back[3].interpretation["1"]
    assert isinstance(b, Explanation)
    assert a.meta() == b.meta()
    assert a.factors.tolist() == [0, 2] and a.maximized.shape == (2, 2, 8, 8, 1)
    for name in Explanation.ARRAY_FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        np.testing.assert_array_equal(x, y)
    with zipfile.ZipFile(p) as zf:
        meta = json.loads(zf.read("meta.json"))
        names = zf.namelist()
    entry = meta["fits"]["3"]["interpretation"][0]
    assert "interpretation" not in meta["fits"]["2"]
    assert meta["format_version"] == 2
    assert entry["layer"] == "1" and entry["method"] == "spatial" and entry["top_k"] == 3
    assert meta["dtypes"][entry["maximized"]] == "|u1" and meta["dtypes"][entry["heatmaps"]] == "|u1"
    assert meta["dtypes"][entry["heat_scale"]] == "<f4"
    assert not any(n.endswith(".pkl") for n in names)


def test_file_without_section_reads(small_sweep, tmp_path):
    _, sw = small_sweep
    back = pl.load(pl.save(sw, tmp_path / "plain.peeklens"))
    assert back[2].interpretation is None and back[3].interpretation is None


def test_interrupt_keeps_finished_factors(small_sweep, monkeypatch, tmp_path):
    model, sw = small_sweep
    real = explain_module._attribute_one
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # rank 2's two factors and rank 3's first one finish
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(explain_module, "_attribute_one", flaky)
    with pytest.warns(UserWarning, match="keeping the 3 factors"):
        out = pl.explain(model, sw, "1", steps=4, top_k=2, progress=False)
    assert sorted(out) == [2, 3]
    assert out[2].factors.tolist() == [0, 1] and not out[2].interrupted
    assert out[3].factors.tolist() == [0] and out[3].interrupted
    assert out[3].maximized.shape[0] == 1 and out[3].heatmaps.shape[0] == 1
    back = pl.load(pl.save(sw, tmp_path / "i.peeklens"))
    assert back[3].interpretation["1"].interrupted and back[3].interpretation["1"].factors.tolist() == [0]


def test_bad_input_fails_before_work(small_fit, monkeypatch):
    model, fit, _ = small_fit

    def boom(*args, **kwargs):
        raise AssertionError("work started")

    monkeypatch.setattr(explain_module, "_maximize_one", boom)
    monkeypatch.setattr(explain_module, "_attribute_one", boom)
    with pytest.raises(LayerNotFoundError, match="relu9"):
        pl.explain(model, fit, "relu9", progress=False)
    with pytest.raises(InputError, match="input-channel block"):
        pl.explain(model, fit, "input:0", progress=False)
    with pytest.raises(InputError, match="factors must be non-negative"):
        pl.explain(model, fit, "1", factors=[-1], progress=False)
    with pytest.raises(InputError, match="none of factors"):
        pl.explain(model, fit, "1", factors=[7], progress=False)
    with pytest.raises(InputError, match="needs a convolutional layer"):
        pl.explain(model, fit, "4", attribute="spatial", progress=False)
    with pytest.raises(InputError, match="attribute must be"):
        pl.explain(model, fit, "1", attribute="saliency", progress=False)
    with pytest.raises(InputError, match="ranks \\[5\\]"):
        pl.explain(model, fit, "1", ranks=[5], progress=False)
    with pytest.raises(InputError, match="nothing to do"):
        pl.explain(model, fit, "1", maximize=False, attribute=None, progress=False)
    with pytest.raises(InputError, match="Factorization or a Sweep"):
        pl.explain(model, {"a": fit}, "1", progress=False)
    with pytest.raises(InputError, match="may not set 'steps'"):
        pl.explain(model, fit, "1", maximize_options={"steps": 3}, progress=False)
    bare = pl.Factorization(**{**fit.__dict__, "inputs": None, "interpretation": None})
    with pytest.raises(InputError, match="carries none"):
        pl.explain(model, bare, "1", progress=False)
    assert fit.interpretation is None


def test_dense_layer_uses_captum_and_maximize_only(small_fit):
    pytest.importorskip("captum")
    model, fit, _ = small_fit
    fit = pl.Factorization(**{**fit.__dict__, "interpretation": None})
    ex = pl.explain(model, fit, "4", factors=[1], steps=4, top_k=2, progress=False)[3]
    assert ex.method == "guided_backprop" and ex.factors.tolist() == [1] and ex.heatmaps.shape == (1, 2, 8, 8)
    only = pl.explain(model, fit, "1", attribute=None, steps=4, progress=False)[3]
    assert only.heatmaps is None and only.samples is None and only.maximized.shape == (3, 1, 8, 8, 1)
    assert set(fit.interpretation) == {"4", "1"}


def test_widget_payload_sends_the_section(small_sweep):
    model, sw = small_sweep
    pl.explain(model, sw, "1", ranks=[2], steps=4, top_k=2, progress=False)
    meta, arrays = _payload.sweep_payload(sw, top_k=2)
    keys = set(_payload.gallery_keys(meta))
    entry = meta["fits"]["2"]["interpretation"][0]
    for name in ("factors", "maximized", "samples", "heatmaps", "heat_scale", "boxes"):
        assert entry[name] in keys and entry[name] in arrays


def test_planted_factor_heatmap_peaks_on_the_stroke(planted):
    fit = pl.Factorization(**{**planted["fit"].__dict__, "interpretation": None})
    f = planted["factor"]
    ex = pl.explain(planted["net"], fit, "relu1", factors=[f], maximize=False, top_k=6, progress=False)[fit.rank]
    boxes = planted["boxes"][ex.samples[0]]
    hits = 0
    for j, (t, c, hh, ww) in enumerate(boxes):
        if t < 0:
            continue
        y, x = np.unravel_index(np.argmax(ex.heatmaps[0, j]), ex.heatmaps.shape[2:])
        hits += int(t - 2 <= y < t + hh + 2 and c - 2 <= x < c + ww + 2)
        # the stored crop box overlaps the stroke
        bt, bc, bh, bw = ex.boxes[0, j]
        assert bt < t + hh and t < bt + bh and bc < c + ww and c < bc + bw
    assert hits == sum(int(b[0] >= 0) for b in boxes) > 0
    assert torch.is_tensor(planted["x"])


def test_gallery_widget_picks_the_explained_layer(small_sweep):
    from peeklens.widgets import LatentGallery

    model, sw = small_sweep
    pl.explain(model, sw, "1", ranks=[2], steps=4, top_k=2, progress=False)
    w = LatentGallery(sw, interpret_layer="1")
    assert w.interpret_layer == "1"
    assert any(k.startswith("r2.interp.0.") for k in w.arrays)
    with pytest.raises(InputError, match="interpret_layer='4' was not explained; explained layers: \\['1'\\]"):
        w.interpret_layer = "4"
    from peeklens.widgets import Dashboard

    assert Dashboard(sw, interpret_layer="1").gallery.interpret_layer == "1"


def test_cli_explain_writes_the_section_and_a_report(tmp_path, capsys):
    from peeklens import cli
    from peeklens.studies import PaperNet

    torch.manual_seed(0)
    net = PaperNet().eval()
    ckpt = tmp_path / "net.pt"
    torch.save({"model": net.state_dict()}, ckpt)
    x = torch.rand(60, 1, 28, 28)
    acts = pl.capture(net, x, layers=["relu", "relu_1"], progress=False)
    src = pl.save(pl.sweep(acts, ranks=[2, 3], max_iter=20, progress=False), tmp_path / "s.peeklens", top_k=4)
    argv = ["explain", str(src), "--network", "paper", "--dataset", "mnist", "--steps", "4", "-q"]
    assert cli.main([*argv, "--checkpoint", str(tmp_path / "missing.pt")]) == 1
    assert "no checkpoint" in capsys.readouterr().err
    html = tmp_path / "r.html"
    code = cli.main([*argv, "--checkpoint", str(ckpt), "--output", str(tmp_path / "x.peeklens"), "--report", str(html)])
    assert code == 0, capsys.readouterr().err
    assert "layer relu_1, ranks [2], 2 factors" in capsys.readouterr().out
    back = pl.load(tmp_path / "x.peeklens")
    ex = back[2].interpretation["relu_1"]  # the smallest rank, the last convolutional layer, the file's top_k
    assert ex.method == "spatial" and ex.top_k == 4 and ex.maximized.shape == (2, 1, 28, 28, 1)
    assert back[3].interpretation is None and back[2].inputs is not None
    # the report embeds the explained file (base64 zip): its gallery draws the section (tests/browser)
    b64 = re.search(r'data-kind="sweep"[^>]*>([^<]+)<', html.read_text()).group(1)
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(b64))) as zf:
        meta = json.loads(zf.read("meta.json"))
    assert meta["fits"]["2"]["interpretation"][0]["layer"] == "relu_1"


def test_report_says_which_layer_is_explained(small_sweep, tmp_path):
    from peeklens.report import render_report

    model, sw = small_sweep
    assert "are explained" not in render_report({"net": sw})
    pl.explain(model, sw, "1", ranks=[2], steps=4, top_k=2, progress=False)
    assert "Factors of layer 1 are explained" in render_report({"net": sw})


def test_default_works_without_captum(small_fit, monkeypatch):
    import sys

    model, fit, _ = small_fit
    fit = pl.Factorization(**{**fit.__dict__, "interpretation": None})
    monkeypatch.setitem(sys.modules, "captum", None)  # import captum raises ImportError
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    ex = pl.explain(model, fit, "1", factors=[0], steps=4, top_k=2, progress=False)[3]
    assert ex.method == "spatial" and ex.heatmaps.shape == (1, 2, 8, 8)
    with pytest.warns(UserWarning, match="need Captum"):
        dense = pl.explain(model, fit, "4", factors=[0], steps=4, progress=False)[3]
    assert dense.method is None and dense.heatmaps is None and dense.maximized is not None
    with pytest.raises(InputError, match="uses Captum"):
        pl.explain(model, fit, "4", attribute="guided_backprop", progress=False)
