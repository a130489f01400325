import numpy as np
import pytest
import torch
from torch import nn

import peeklens as pl
from peeklens import views


@pytest.fixture
def fit_rgb():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    x = torch.rand(40, 3, 6, 6)
    y = torch.arange(40) % 5
    acts = pl.capture(model, list(zip(x.split(8), y.split(8))), progress=False)
    return pl.factorize(acts, rank=3, max_iter=30, solver="mu")


def test_latent_images_fold_rgb_loadings(fit_rgb):
    img = views.latent_images(fit_rgb)
    assert img.shape == (3, 6, 6, 3)
    assert np.allclose(img.max(axis=(1, 2, 3)), 1.0)
    raw = views.latent_images(fit_rgb, normalize=False)
    np.testing.assert_allclose(raw[1, :, :, 2], fit_rgb.loadings["input:2"][:, 1].reshape(6, 6))


def test_top_inputs_are_the_largest_F_entries(fit_rgb):
    top = views.top_inputs(fit_rgb, k=5)
    assert top.shape == (3, 5)
    for r in range(3):
        expect = np.argsort(-fit_rgb.F[:, r], kind="stable")[:5]
        np.testing.assert_array_equal(np.sort(top[r]), np.sort(expect))
        assert np.all(np.diff(fit_rgb.F[top[r], r]) <= 0)
    imgs = views.input_images(fit_rgb, top)
    assert imgs.shape == (3, 5, 6, 6, 3)
    np.testing.assert_allclose(imgs[0, 0, :, :, 1], fit_rgb.inputs["input:1"][:, top[0, 0]].reshape(6, 6))


def test_class_histograms_count_top_input_labels(fit_rgb):
    h = views.class_histograms(fit_rgb, k=10)
    assert h.shape == (3, 5) and (h.sum(axis=1) == 10).all()
    top = views.top_inputs(fit_rgb, k=10)
    np.testing.assert_array_equal(h[2], np.bincount(fit_rgb.labels[top[2]], minlength=5))
    no_labels = pl.factorize(pl.Activations.from_arrays({"a": np.ones((4, 6))}), 1, max_iter=2)
    assert views.class_histograms(no_labels) is None


def test_neuron_matrix_spatial_maps_and_utilisation(fit_rgb):
    Oj = views.neuron_factor_matrix(fit_rgb, "1")
    assert Oj.shape == (4 * 4 * 4, 3) and Oj.max() == pytest.approx(1.0)
    col = views.neuron_factor_matrix(fit_rgb, "1", normalize="column")
    assert np.allclose(col.max(axis=0), 1.0)
    maps = views.spatial_maps(fit_rgb, "1", 2)
    assert maps.shape == (4, 4, 4)
    np.testing.assert_array_equal(maps.reshape(-1), fit_rgb.loadings["1"][:, 2])
    with pytest.raises(pl.InputError, match="out of range"):
        views.spatial_maps(fit_rgb, "1", 3)
    with pytest.raises(pl.InputError, match="no block named"):
        views.neuron_factor_matrix(fit_rgb, "nope")


def test_utilisation_counts_dead_neurons():
    X = np.zeros((10, 30))
    X[:4] = np.random.default_rng(0).random((4, 30))
    fit = pl.factorize(pl.Activations.from_arrays({"layer": X}, shapes={"layer": (10,)}), 2, max_iter=50)
    u = views.utilisation(fit, "layer")
    assert u["unused_share"] == pytest.approx(0.6)
    assert u["unused"][4:].all() and not u["unused"][:4].any()


def test_factor_strength_sums_to_one(fit_rgb):
    s = views.factor_strength(fit_rgb)
    assert s.shape == (3,) and s.sum() == pytest.approx(1.0)


def test_thumbnails_use_the_range_of_all_inputs():
    import peeklens as pl
    from peeklens import views

    rng = np.random.default_rng(1)
    x = rng.random((9, 20)) * 5 + 2
    fit = pl.factorize(pl.Activations.from_arrays({"input:0": x}, shapes={"input:0": (3, 3)}), rank=2, max_iter=5)
    kept = fit.inputs["input:0"]  # as captured (float32)
    assert views.input_range(fit) == (float(kept.min()), float(kept.max()))
    np.testing.assert_allclose(views.input_range(fit), (x.min(), x.max()), rtol=1e-6)
    t = views.thumbnails(fit, 4)
    raw = views.input_images(fit, views.top_inputs(fit, 4))
    np.testing.assert_allclose(t, (raw - kept.min()) / (kept.max() - kept.min()), rtol=1e-5, atol=1e-6)
