"""pl.quality and pl.compare: the label-free training-quality score on real captures."""

from __future__ import annotations

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
    with pytest.raises(pl.InputError, match="expected Activations or Quality"):
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
