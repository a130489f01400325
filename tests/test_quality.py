"""pl.quality and pl.compare: the label-free training-quality score on real captures."""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

import peeklens as pl
from peeklens.quality import Comparison, Quality, components
from peeklens.studies import PAPER_LAYERS, PaperNet, Regime, denormalizer, normalize, train


def _data_dir() -> Path:
    """$PEEKLENS_DATA, else ../shared/data beside the repository (as tests/conftest.py)."""
    return Path(os.environ.get("PEEKLENS_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def _capture(model, x):
    return pl.capture(model, TensorDataset(normalize(x, "mnist")), PAPER_LAYERS,
                      input_transform=denormalizer("mnist"), batch_size=500, progress=False)


@pytest.fixture(scope="module")
def real_pair(mnist_test, tmp_path_factory):
    """Captures of an untrained and a briefly trained paper network on 400 real MNIST test images."""
    from peeklens.studies import load_mnist

    torch.set_num_threads(1)
    x, _ = mnist_test
    x = x[:400]
    torch.manual_seed(0)
    untrained = PaperNet().eval()
    train_data = load_mnist(train=True, root=_data_dir())
    cache = tmp_path_factory.mktemp("quality-cache")
    trained = train(Regime(train_samples=6000, epochs=2), data=train_data, cache=cache, progress=False).model
    return _capture(untrained, x), _capture(trained, x)


@pytest.mark.slow
def test_trained_network_scores_higher_than_untrained(real_pair):
    a_untrained, a_trained = real_pair
    q0, q1 = pl.quality(a_untrained), pl.quality(a_trained)
    assert q1.score > q0.score
    assert q0.fingerprint == q1.fingerprint  # same inputs, same layers: comparable
    c = pl.compare({"untrained": a_untrained, "trained": q1}, noise=0.0)
    assert c.names == ["trained", "untrained"] and c.ties == []
    assert ("trust: held-out Spearman rho" in repr(c)) == bool(q1.calibration)


@pytest.mark.slow
def test_components_present_and_finite(real_pair):
    q = pl.quality(real_pair[1])
    assert isinstance(q, Quality) and isinstance(q.score, float) and math.isfinite(q.score)
    assert set(q.used) <= set(q.components) and q.used
    for layer in PAPER_LAYERS:
        for name in ("entropy_rank", "stable_rank", "active", "diversity", "density", "log_scale"):
            assert math.isfinite(q.components[f"{name}:{layer}"]), (name, layer)
        assert 0 < q.components[f"rel_error@10:{layer}"] < 1
        assert 0 <= q.components[f"active:{layer}"] <= 1 and 0 <= q.components[f"diversity:{layer}"] <= 1
    assert all(math.isfinite(v) for v in q.components.values())
    assert q.components["deep_diversity"] == q.components["diversity:relu_1"]
    assert q.layers == PAPER_LAYERS and q.n_samples == 400
    d = q.as_dict()
    assert json.loads(json.dumps(d))["score"] == pytest.approx(q.score)
    text = repr(q)
    assert "higher = better trained" in text and "comparable only" in text
    if q.calibration:
        assert "Spearman rho" in text and "Kendall tau" in text


@pytest.mark.slow
def test_compare_refuses_different_inputs_or_layers(real_pair, mnist_test):
    a_untrained, a_trained = real_pair
    torch.manual_seed(0)
    other = _capture(PaperNet().eval(), mnist_test[0][400:800])  # other test images
    with pytest.raises(pl.InputError, match="not comparable"):
        pl.compare({"a": a_trained, "b": other})
    with pytest.warns(UserWarning, match="not comparable"):
        c = pl.compare({"a": a_trained, "b": other}, strict=False)
    assert len(c.names) == 2
    one_layer = pl.quality(a_trained, layers=["relu_1"])
    with pytest.raises(pl.InputError, match="same test inputs and layers"):
        pl.compare({"a": pl.quality(a_trained), "b": one_layer})


def _q(score: float) -> Quality:
    return Quality(score, {"x": score}, ["x"], ["relu"], 10, "same")


def test_compare_ranks_and_flags_pairs_within_noise():
    c = pl.compare({"a": _q(1.0), "b": _q(1.03), "c": _q(2.0), "d": _q(-1.0)}, noise=0.05)
    assert isinstance(c, Comparison)
    assert c.names == ["c", "b", "a", "d"]
    assert c.ties == [("b", "a")]
    assert c.within_noise("a", "b") and not c.within_noise("a", "c")
    text = repr(c)
    assert text.splitlines()[2].split()[1] == "c"  # best first
    assert "within noise of" in text and "higher = better trained" in text
    assert [r["name"] for r in c.as_dict()["ranking"]] == ["c", "b", "a", "d"]
    # with a larger noise floor, everything near is flagged
    assert set(pl.compare({"a": _q(1.0), "b": _q(1.03), "c": _q(1.07)}, noise=0.1).ties) == {
        ("c", "b"), ("c", "a"), ("b", "a")}


def test_compare_bad_input():
    with pytest.raises(pl.InputError, match="at least one network"):
        pl.compare({})
    with pytest.raises(pl.InputError, match="expected Activations, Quality, Sweep or Factorization"):
        pl.compare({"a": np.zeros((3, 3))})
    with pytest.raises(pl.InputError, match="noise"):
        pl.compare({"a": _q(1.0)}, noise=-1)


def test_quality_bad_input():
    rng = np.random.default_rng(0)
    acts = pl.Activations.from_arrays({"input:0": rng.random((5, 40)), "relu": rng.random((8, 40))})
    with pytest.raises(pl.InputError, match="not in the activations"):
        pl.quality(acts, layers=["relu_9"])
    with pytest.raises(pl.InputError, match="no layer blocks"):
        components(pl.Activations.from_arrays({"input:0": rng.random((5, 40))}))
    with pytest.raises(pl.InputError, match="needs at least 50 inputs"):
        components(acts, ranks=(50,))


def test_components_see_collapse_and_dead_neurons():
    """A layer where half the neurons never fire and the rest copy one pattern scores low on usage and diversity."""
    rng = np.random.default_rng(0)
    x = rng.random((6, 80))
    healthy = rng.random((40, 80)) * (rng.random((40, 80)) > 0.5)
    pattern = rng.random(80)
    collapsed = np.vstack([np.outer(rng.random(20) + 0.5, pattern), np.zeros((20, 80))])
    ch = components(pl.Activations.from_arrays({"input:0": x, "relu": healthy}), ranks=(3,), max_iter=30)
    cc = components(pl.Activations.from_arrays({"input:0": x, "relu": collapsed}), ranks=(3,), max_iter=30)
    assert cc["active:relu"] == pytest.approx(0.5) and ch["active:relu"] == 1.0
    assert cc["diversity:relu"] < 0.05 < ch["diversity:relu"]
    assert cc["entropy_rank:relu"] < ch["entropy_rank:relu"]
    assert cc["rel_error@3:relu"] < 0.01 < ch["rel_error@3:relu"]


# ------------------------------------------------------------------ the score travels with the results
def _small_sweep(seed: int):
    """A tiny synthetic network's sweep and activations (input block + two layers, 60 samples)."""
    rng = np.random.default_rng(seed)
    acts = pl.Activations.from_arrays(
        {"input:0": rng.random((16, 60)), "relu": rng.random((30, 60)) ** (1 + seed), "relu_1": rng.random((10, 60))},
        kinds={"input:0": "input"}, shapes={"input:0": (4, 4)},
    )
    return pl.sweep(acts, ranks=[2, 3], max_iter=5, progress=False), acts


def test_quality_saved_with_sweep_and_factorization(tmp_path):
    from peeklens import schema

    sw, acts = _small_sweep(0)
    q = pl.quality(acts, max_iter=10)
    assert set(q.terms) == set(q.used) and q.score == pytest.approx(np.mean(list(q.terms.values())))
    sw.quality = q
    back = pl.load(pl.save(sw, tmp_path / "s.peeklens")).quality
    assert isinstance(back, Quality)
    assert back.score == q.score and back.used == q.used and back.terms == q.terms
    assert back.components == q.components and back.fingerprint == q.fingerprint
    assert back.calibration == q.calibration and back.layers == q.layers and back.n_samples == 60
    meta = pl.io.read_meta(tmp_path / "s.peeklens")
    assert meta["quality"]["score"] == q.score and "quality" not in meta["fits"]["2"]
    # a Factorization carries it too; a NaN component is stored as null and read back as NaN
    fit = sw[3]
    fit.quality = Quality(0.5, {"x": float("nan"), "y": 1.0}, ["y"], ["relu"], 60, "ab", {}, 0.1, {"y": 0.5})
    fmeta, arrays = schema.to_payload(fit)
    assert fmeta["quality"]["components"] == {"x": None, "y": 1.0}
    json.dumps(fmeta, allow_nan=False)  # strict JSON: the browser's JSON.parse reads it
    fback = schema.from_payload(fmeta, arrays.__getitem__).quality
    assert math.isnan(fback.components["x"]) and fback.terms == {"y": 0.5}
    # pl.compare takes loaded results that carry a score
    worse = Quality(-5.0, dict(q.components), list(q.used), list(q.layers), 60, q.fingerprint)
    assert pl.compare({"b": worse, "a": pl.load(tmp_path / "s.peeklens")}).names == ["a", "b"]
    # files without the section (older files, results never scored) still read, with no quality
    sw.quality = None
    plain = pl.save(sw, tmp_path / "plain.peeklens")
    assert "quality" not in pl.io.read_meta(plain) and pl.load(plain).quality is None
    with pytest.raises(pl.InputError, match="carries no quality score"):
        pl.compare({"a": pl.load(plain)})


def test_quality_section_errors():
    from peeklens import schema

    sw, _ = _small_sweep(0)
    sw.quality = {"score": 1.0}  # not a Quality
    with pytest.raises(pl.InputError, match="set it to the Quality of pl.quality"):
        schema.to_payload(sw)
    sw.quality = _q(1.0)
    meta, arrays = schema.to_payload(sw)
    for bad, match in [({"score": "high", "components": {}, "used": []}, "score must be a number"),
                       ({"score": 1.0, "components": {}, "used": ["x"]}, r"\['x'\] are listed in 'used'"),
                       ({"components": {}, "used": []}, "has no 'score'"),
                       ([1, 2], "must be an object")]:
        with pytest.raises(pl.FileFormatError, match=match):
            schema.from_payload({**meta, "quality": bad}, arrays.__getitem__, where="x.peeklens")


def test_compare_widget_carries_quality():
    from peeklens.widgets import Compare

    sa, sb = _small_sweep(0)[0], _small_sweep(1)[0]
    qa, qb = _q(0.2), _q(1.5)
    # default: each sweep's own quality
    sa.quality = qa
    w = Compare({"a": sa, "b": sb})
    assert w.networks[0]["meta"]["quality"]["score"] == 0.2 and "quality" not in w.networks[1]["meta"]
    assert w.noise is None
    # a Comparison: its scores and its noise threshold
    c = pl.compare({"a": qa, "b": qb}, noise=2.0)
    w = Compare({"a": sa, "b": sb}, quality=c)
    scores = {n["name"]: n["meta"]["quality"]["score"] for n in w.networks}
    assert scores == {"a": 0.2, "b": 1.5} and w.noise == 2.0
    assert sa.quality is qa  # the caller's sweep is left alone
    with pytest.raises(pl.InputError, match="not compared"):
        Compare({"a": sa}, quality={"zz": qa})
    with pytest.raises(pl.InputError, match="quality must be a Comparison"):
        Compare({"a": sa}, quality=[qa])


def test_report_embeds_quality():
    import base64
    import re
    import zipfile

    from peeklens.report import render_report

    sa, _ = _small_sweep(0)
    sb, _ = _small_sweep(1)
    sa.quality, sb.quality = _q(0.25), _q(-0.5)
    fit = sb[2]
    fit.quality = _q(0.75)
    html = render_report({"a": sa, "b": sb, "fit": fit})
    assert "label-free quality score" in html
    found = {}
    for m in re.finditer(r'data-kind="sweep" data-label="([^"]*)">([A-Za-z0-9+/=]+)</script>', html):
        with zipfile.ZipFile(io.BytesIO(base64.b64decode(m.group(2)))) as zf:
            found[m.group(1)] = json.loads(zf.read("meta.json"))["quality"]["score"]
    assert found == {"a": 0.25, "b": -0.5, "fit": 0.75}


@pytest.mark.slow
def test_studies_score_each_network_and_the_report_carries_it(mnist_test, tmp_path):
    """run_study scores every network on its first test images; files and report carry the score."""
    import base64
    import re
    import zipfile

    from peeklens.studies import run_study

    torch.set_num_threads(1)
    res = run_study("demo", samples=300, ranks=[3], train_samples=3000, cache=tmp_path / "cache", progress=False,
                    max_iter=10, out=tmp_path / "out", root=_data_dir())
    scores = {}
    for r in res.results:
        q = r.sweep.quality
        assert isinstance(q, Quality) and q.n_samples == 300 and math.isfinite(q.score)
        assert r.seconds["quality"] > 0
        scores[r.label] = q.score
        assert pl.load(res.files[r.label]).quality.score == q.score  # the saved file carries it
    fps = {r.sweep.quality.fingerprint for r in res.results}
    assert len(fps) == 1  # same test images and layers: comparable
    html = Path(res.files["report"]).read_text()
    embedded = {}
    for m in re.finditer(r'data-kind="sweep" data-label="([^"]*)">([A-Za-z0-9+/=]+)</script>', html):
        with zipfile.ZipFile(io.BytesIO(base64.b64decode(m.group(2)))) as zf:
            embedded[m.group(1)] = json.loads(zf.read("meta.json"))["quality"]["score"]
    assert embedded == scores
    assert "quality score" in html  # the summary table's column
