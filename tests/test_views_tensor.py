"""The views of tensor-model fits (issue 18) and of signed, semi-NMF blocks (issue 15)."""

import numpy as np
import pytest
import torch
from torch import nn

import peeklens as pl
from peeklens import views
from peeklens.schema import to_payload

C, H, W = 3, 4, 5


@pytest.fixture(scope="module")
def tensor_fit():
    rng = np.random.default_rng(0)
    acts = pl.Activations.from_arrays(
        {"input:0": rng.random((16, 40)), "conv": rng.random((C * H * W, 40)), "fc": rng.random((6, 40))},
        shapes={"input:0": (4, 4), "conv": (C, H, W)},
    )
    return acts, pl.factorize(acts, 3, model="tensor", max_iter=30)


def test_tensor_neuron_matrix_is_the_channel_by_position_outer_product(tensor_fit):
    _, fit = tensor_fit
    Cf, S = fit.loadings["conv"], fit.spatial["conv"]
    assert Cf.shape == (C, 3) and S.shape == (H * W, 3)
    expect = np.einsum("cr,pr->cpr", Cf, S).reshape(C * H * W, 3)
    raw = views.neuron_factor_matrix(fit, "conv", normalize=None)
    np.testing.assert_allclose(raw, expect, rtol=1e-6)
    glob = views.neuron_factor_matrix(fit, "conv")
    assert glob.max() == pytest.approx(1.0)
    np.testing.assert_allclose(glob, expect / expect.max(), rtol=1e-5)
    # a matrix block of the same fit is unchanged
    np.testing.assert_array_equal(views.neuron_factor_matrix(fit, "fc", normalize=None), fit.loadings["fc"])


def test_tensor_spatial_maps_channel_maps_and_channel_matrix(tensor_fit):
    _, fit = tensor_fit
    Cf, S = fit.loadings["conv"], fit.spatial["conv"]
    maps = views.spatial_maps(fit, "conv", 2)
    assert maps.shape == (C, H, W)
    for c in range(C):
        np.testing.assert_allclose(maps[c], Cf[c, 2] * S[:, 2].reshape(H, W), rtol=1e-6)
    per_factor = views.factor_spatial_maps(fit, "conv")
    assert per_factor.shape == (3, H, W)
    np.testing.assert_allclose(per_factor[1], S[:, 1].reshape(H, W))
    cm = views.channel_factor_matrix(fit, "conv", normalize="column")
    assert cm.shape == (C, 3)
    np.testing.assert_allclose(cm.max(axis=0), 1.0)
    assert views.is_tensor(fit, "conv") and not views.is_tensor(fit, "fc")
    with pytest.raises(pl.InputError, match="not a tensor block"):
        views.channel_factor_matrix(fit, "fc")
    with pytest.raises(pl.InputError, match="no spatial factor"):
        views.factor_spatial_maps(fit, "fc")


def test_tensor_reconstruct_is_the_cp_model_and_matches_the_errors(tensor_fit):
    acts, fit = tensor_fit
    Cf, S, F = fit.loadings["conv"], fit.spatial["conv"], fit.F
    model = fit.reconstruct("conv")
    assert model.shape == (C * H * W, 40)
    np.testing.assert_allclose(model, np.einsum("cr,pr,nr->cpn", Cf, S, F).reshape(-1, 40), rtol=1e-5, atol=1e-6)
    X = acts["conv"].data.astype(np.float64)
    assert np.linalg.norm(X - model) / np.linalg.norm(X) == pytest.approx(fit.errors["conv"], rel=1e-3)
    with pytest.raises(pl.InputError, match="no block named"):
        fit.reconstruct("nope")


def _fit(loadings, blocks, spatial=None, settings=None, rank=2):
    return pl.Factorization(
        F=np.ones((5, rank), np.float32),
        loadings=loadings,
        errors={n: 0.0 for n in loadings},
        rmse=0.0,
        objective=np.zeros(1),
        n_iter=1,
        converged=True,
        seconds=0.0,
        settings=settings or {},
        blocks=blocks,
        spatial=spatial,
    )


def test_tensor_utilisation_and_strength_use_the_outer_products():
    Cf = np.array([[1.0, 0.5], [0.0, 0.0], [0.2, 2.0]], np.float32)  # channel 1 unused
    S = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.0, 0.0]], np.float32)  # position 3 unused
    fit = _fit(
        {"conv": Cf, "fc": np.array([[3.0, 0.0]], np.float32)},
        {"conv": {"kind": "layer", "shape": [3, 2, 2]}, "fc": {"kind": "layer", "shape": [1]}},
        spatial={"conv": S},
    )
    u = views.utilisation(fit, "conv")
    assert u["unused"].shape == (12,)
    assert u["unused_channels"].tolist() == [1]
    # channel 1 (4 neurons) plus position 3 of channels 0 and 2
    assert u["unused"].sum() == 6 and u["unused_share"] == pytest.approx(0.5)
    s = views.factor_strength(fit)
    kr = np.einsum("cr,pr->cpr", Cf, S).reshape(12, 2)
    wn = np.sqrt((kr**2).sum(0) + np.array([9.0, 0.0]))
    expect = np.linalg.norm(fit.F, axis=0) * wn
    np.testing.assert_allclose(s, expect / expect.sum(), rtol=1e-6)


def test_signed_utilisation_counts_negative_loadings_and_keeps_signs():
    loads = np.array([[-4.0, 0.0], [0.01, -0.01], [2.0, 1.0]], np.float32)
    fit = _fit({"h": loads}, {"h": {"kind": "layer", "shape": [3], "signed": True}})
    u = views.utilisation(fit, "h")
    # the strongly negative neuron 0 is used; neuron 1 is below 1 % of the largest magnitude (4)
    assert u["unused"].tolist() == [False, True, False]
    m = views.neuron_factor_matrix(fit, "h")
    assert m.min() == pytest.approx(-1.0) and m.max() == pytest.approx(0.5)
    col = views.neuron_factor_matrix(fit, "h", normalize="column")
    np.testing.assert_allclose(np.abs(col).max(axis=0), 1.0)
    assert col[0, 0] == pytest.approx(-1.0)
    assert views.is_signed(fit, "h")


def test_signed_flag_reaches_the_payload_blocks():
    rng = np.random.default_rng(1)
    acts = pl.Activations.from_arrays(
        {"input:0": rng.random((16, 30)), "tanh": rng.standard_normal((8, 30))},
        shapes={"input:0": (4, 4)},
        signed=["tanh"],
    )
    fit = pl.factorize(acts, 3, max_iter=30)
    assert (fit.loadings["tanh"] < 0).any()
    meta, _ = to_payload(fit)
    assert [b["signed"] for b in meta["fit"]["blocks"]] == [False, True]
    # a fit whose block descriptions lack the flag: taken from settings["signed"]
    for b in fit.blocks.values():
        b.pop("signed")
    assert views.is_signed(fit, "tanh") and not views.is_signed(fit, "input:0")
    meta, _ = to_payload(fit)
    assert [b["signed"] for b in meta["fit"]["blocks"]] == [False, True]


@pytest.mark.slow
def test_tensor_views_on_a_real_mnist_capture(monkeypatch):
    """A conv network on real MNIST digits, captured with hooks, fitted with the tensor lens."""
    from peeklens import studies

    x, y = studies.load_mnist(train=False, download=False)
    x, y = x[:200], y[:200]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 5, stride=2), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2), nn.ReLU())
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=100)
    acts = pl.capture(model, loader, layers=["1", "3"], progress=False)
    fit = pl.factorize(acts, 4, model="tensor", max_iter=40)
    assert set(fit.spatial) == {"1", "3"}
    for name in ("1", "3"):
        c, h, w = fit.blocks[name]["shape"]
        assert views.channel_factor_matrix(fit, name).shape == (c, 4)
        assert views.factor_spatial_maps(fit, name).shape == (4, h, w)
        X = acts[name].data.astype(np.float64)
        rel = np.linalg.norm(X - fit.reconstruct(name)) / np.linalg.norm(X)
        assert rel == pytest.approx(fit.errors[name], rel=1e-3)
    meta, arrays = to_payload(fit)
    spatial = meta["fit"]["spatial"]
    names = meta["fit"]["names"]
    _, h, w = fit.blocks["3"]["shape"]
    assert arrays[spatial[str(names.index("3"))]].shape == (h * w, 4)


def test_widgets_send_the_spatial_factors_of_tensor_blocks(tensor_fit):
    """The heatmaps and the gallery read a tensor block's spatial factor: the widgets must sync it."""
    from peeklens.widgets import LatentGallery, NeuronHeatmaps

    acts, _ = tensor_fit
    sweep = pl.sweep(acts, ranks=[2, 3], model="tensor", max_iter=10, progress=False)
    heat = NeuronHeatmaps(sweep)
    gallery = LatentGallery(sweep, top_k=2)
    for r in sweep.ranks:
        fit = heat.meta["fits"][str(r)]
        key = fit["spatial"][str(fit["names"].index("conv"))]
        for w in (heat, gallery):
            assert key in w.arrays, type(w).__name__
        got = np.frombuffer(bytes(heat.arrays[key]), dtype="<f4").reshape(H * W, r)
        np.testing.assert_array_equal(got, sweep[r].spatial["conv"])
    # a matrix-model sweep sends no spatial factor
    plain = NeuronHeatmaps(pl.sweep(acts, ranks=[2], max_iter=5, progress=False))
    assert plain.meta["fits"]["2"]["spatial"] is None and not any(".S." in k for k in plain.arrays)
