"""maximize / attribute / invert: errors, layer addressing as capture names it, determinism,
interruption, model state, shapes and ranges, result round trips."""

from __future__ import annotations

import functools
import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import peeklens as pl
from peeklens.interpret import Attribution, Inversion, Maximized
from peeklens.studies import AlexNet, PaperNet, denormalizer, normalize

FAST = {"steps": 12, "progress": False}


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def paper():
    """Untrained paper net (FX nodes relu, relu_1), inputs captured in [0, 1] through a denormalizer."""
    torch.manual_seed(0)
    net = PaperNet()
    x01 = torch.rand(60, 1, 28, 28) * 0.8
    acts = pl.capture(
        net, normalize(x01, "mnist"), layers=["relu", "relu_1"], input_transform=denormalizer("mnist"), progress=False
    )
    fit = pl.factorize(acts, rank=4, seed=0)
    return net, acts, fit, functools.partial(normalize, dataset="mnist")


def _scores_from_capture(acts, fit, layer, factor, idx):
    return acts[layer].data[:, idx].T @ fit.loadings[layer][:, factor]


# ------------------------------------------------------------------------------- errors
def test_layer_not_in_the_fit_names_the_closest(paper):
    net, _, fit, _ = paper
    with pytest.raises(pl.LayerNotFoundError, match=r"'relu_2'.*closest: \['relu_1', 'relu'\]"):
        pl.maximize(net, fit, "relu_2", 0, **FAST)


def test_layer_missing_from_the_model_names_the_closest(paper):
    _, _, fit, _ = paper
    other = nn.Sequential()
    other.add_module("relu1", nn.ReLU())
    with pytest.raises(pl.LayerNotFoundError, match=r"layer 'relu_1' of the factorization is not in Sequential.*relu1"):
        pl.attribute(other, fit, "relu_1", 0, method="spatial")


def test_input_block_factor_range_and_options_are_checked_before_work(paper):
    net, _, fit, _ = paper
    with pytest.raises(pl.InputError, match="input-channel block"):
        pl.invert(net, fit, "input:0", 0, **FAST)
    with pytest.raises(pl.InputError, match=r"factor 4 is out of range.*rank 4"):
        pl.maximize(net, fit, "relu", 4, **FAST)
    with pytest.raises(pl.InputError, match="factor must be an integer"):
        pl.maximize(net, fit, "relu", True, **FAST)
    with pytest.raises(pl.InputError, match="param must be one of"):
        pl.maximize(net, fit, "relu", 0, param="wavelet", **FAST)
    with pytest.raises(pl.InputError, match="n must be a positive integer"):
        pl.maximize(net, fit, "relu", 0, n=0, **FAST)
    with pytest.raises(pl.InputError, match="jitter must be a non-negative number"):
        pl.maximize(net, fit, "relu", 0, jitter=-1, **FAST)
    with pytest.raises(pl.InputError, match="scale must be"):
        pl.maximize(net, fit, "relu", 0, scale=1.1, **FAST)
    with pytest.raises(pl.InputError, match="method must be one of"):
        pl.attribute(net, fit, "relu", 0, method="lrp")
    with pytest.raises(pl.InputError, match="crop_size must fit"):
        pl.attribute(net, fit, "relu", 0, method="spatial", crops=True, crop_size=40)
    with pytest.raises(pl.InputError, match="fit must be a peeklens.Factorization"):
        pl.maximize(net, {"relu": 1}, "relu", 0, **FAST)


def test_inputs_of_the_wrong_shape(paper):
    net, _, fit, pre = paper
    with pytest.raises(pl.InputError, match=r"shape \(5, 3, 28, 28\).*per-sample shape \(1, 28, 28\)"):
        pl.attribute(net, fit, "relu", 0, torch.rand(5, 3, 28, 28), method="spatial", preprocess=pre)
    with pytest.raises(pl.InputError, match="sample indices must be in 0..59"):
        pl.attribute(net, fit, "relu", 0, np.array([3, 60]), method="spatial", preprocess=pre)
    # (N, H, W) is accepted for one-channel inputs
    att = pl.attribute(net, fit, "relu", 0, torch.rand(2, 28, 28), method="spatial", preprocess=pre)
    assert att.inputs.shape == (2, 1, 28, 28) and (att.indices == -1).all()


def test_without_captum_gradient_methods_say_how_to_install_it(small_fit, monkeypatch):
    import sys

    model, fit, _ = small_fit
    monkeypatch.setitem(sys.modules, "captum", None)  # import captum -> ImportError
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    with pytest.raises(ImportError, match=r"pip install 'peeklens\[interpret\]'"):
        pl.attribute(model, fit, "1", 0, method="guided_backprop")
    assert pl.attribute(model, fit, "1", 0, method="spatial").heatmaps.shape == (8, 8, 8)


def test_spatial_needs_a_conv_layer(small_fit):
    model, fit, _ = small_fit
    with pytest.raises(pl.InputError, match=r"needs a convolutional layer.*'4' has shape \(6,\)"):
        pl.attribute(model, fit, "4", 0, method="spatial")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_without_cuda_is_a_device_error(small_fit):
    model, fit, _ = small_fit
    with pytest.raises(pl.DeviceError, match="CUDA is not available"):
        pl.maximize(model, fit, "1", 0, device="cuda", **FAST)


# ------------------------------------------------------- the objective is capture's block
def test_scores_match_the_captured_block_fx_nodes_and_preprocess(paper):
    net, acts, fit, pre = paper
    for layer in ("relu", "relu_1"):
        att = pl.attribute(net, fit, layer, 2, method="spatial", k=5, preprocess=pre)
        want = _scores_from_capture(acts, fit, layer, 2, att.indices)
        np.testing.assert_allclose(att.scores, want, rtol=1e-4)
        # the spatial map is the score split over positions
        np.testing.assert_allclose(att.layer_maps.sum(axis=(1, 2)), att.scores, rtol=1e-4)
        # the top k of F, strongest first
        assert att.indices.tolist() == np.argsort(-fit.F[:, 2], kind="stable")[:5].tolist()


class _Pair(nn.Module):
    def forward(self, x):
        return torch.relu(x), {"neg": torch.relu(-x)}


class _Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.act = nn.ReLU()
        self.pair = _Pair()
        self.head = nn.Linear(3 * 36, 2)

    def forward(self, x):
        x = self.act(self.conv(x))
        x = self.act(self.conv(x[:, :1]) - 0.1)  # the same modules, a second time
        pos, rest = self.pair(x - 0.2)
        return self.head((pos + rest["neg"]).flatten(1))


def test_module_called_twice_tuple_outputs_split_and_pool():
    torch.manual_seed(1)
    model = _Twice()
    x = torch.rand(30, 1, 6, 6)
    acts = pl.capture(model, x, layers=["act", "conv"], nonneg="split", pool=2, progress=False)
    assert {"act@0", "act@1", "conv@0+", "conv@1-"} <= set(acts.names)
    fit = pl.factorize(acts, rank=3, seed=0)
    for layer in ("act@1", "conv@0+", "conv@1-"):
        att = pl.attribute(model, fit, layer, 1, method="spatial", k=4)
        np.testing.assert_allclose(
            att.scores, _scores_from_capture(acts, fit, layer, 1, att.indices), rtol=1e-4, atol=1e-6
        )
    # a module returning a tuple holding a dict: blocks "pair[0]" and "pair[1][neg]"
    acts2 = pl.capture(model, x, layers=["pair", "head"], progress=False, nonneg="abs")
    assert {"pair[0]", "pair[1][neg]", "head"} <= set(acts2.names)
    fit2 = pl.factorize(acts2, rank=2, seed=0)
    for layer in ("pair[0]", "pair[1][neg]", "head"):
        att = pl.attribute(model, fit2, layer, 0, method="guided_backprop", k=3)
        np.testing.assert_allclose(att.scores, _scores_from_capture(acts2, fit2, layer, 0, att.indices), rtol=1e-4)


# ------------------------------------------------------------ determinism and state
def test_same_seed_same_result_other_seed_other_result(paper):
    net, _, fit, pre = paper
    a = pl.maximize(net, fit, "relu_1", 1, seed=3, preprocess=pre, **FAST)
    b = pl.maximize(net, fit, "relu_1", 1, seed=3, preprocess=pre, **FAST)
    c = pl.maximize(net, fit, "relu_1", 1, seed=4, preprocess=pre, **FAST)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.history, b.history)
    assert np.abs(a.inputs - c.inputs).max() > 1e-3
    i1 = pl.invert(net, fit, "relu", 0, seed=3, preprocess=pre, jitter=1, **FAST)
    i2 = pl.invert(net, fit, "relu", 0, seed=3, preprocess=pre, jitter=1, **FAST)
    np.testing.assert_array_equal(i1.inputs, i2.inputs)


def test_model_state_is_restored(small_fit):
    model, fit, _ = small_fit
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pl.maximize(model, fit, "1", 0, **FAST)
    pl.invert(model, fit, "4", 0, **FAST)
    pl.attribute(model, fit, "1", 0, method="integrated_gradients", ig_steps=4)
    assert model.training
    assert all(p.requires_grad for p in model.parameters())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in model.parameters())


def test_guided_backprop_rewrites_functional_relus_on_fx_layers(paper):
    net, _, fit, pre = paper
    # FX layer: F.relu calls become nn.ReLU modules, so guided backprop differs from the plain gradient
    gbp = pl.attribute(net, fit, "relu_1", 0, method="guided_backprop", k=4, preprocess=pre)
    x = torch.from_numpy(gbp.inputs).requires_grad_(True)
    from peeklens.interpret._target import factor_objective

    obj = factor_objective(net, fit, "relu_1", 0, pre)
    net.eval()
    (grad,) = torch.autograd.grad(obj(x).sum(), x)
    assert np.abs(gbp.attributions - grad.numpy()).max() > 1e-3 * np.abs(grad.numpy()).max()
    # the same network reached by module hooks: functional ReLUs cannot be guided, and it says so
    acts2 = pl.capture(net, pre(torch.rand(20, 1, 28, 28)), layers=["conv2"], nonneg="abs", progress=False)
    fit2 = pl.factorize(acts2, rank=2, seed=0)
    with pytest.warns(UserWarning, match="has no nn.ReLU module.*plain gradient"):
        pl.attribute(net, fit2, "conv2", 0, method="guided_backprop", k=2, preprocess=pre)


def test_in_place_relus_work_and_are_restored():
    torch.manual_seed(0)
    net = AlexNet(3, 32)
    x = torch.rand(20, 3, 32, 32)
    acts = pl.capture(net, x, layers=["features.4"], progress=False)
    fit = pl.factorize(acts, rank=2, seed=0)
    for method in ("guided_backprop", "deconvnet"):
        att = pl.attribute(net, fit, "features.4", 0, method=method, k=3)
        assert att.heatmaps.shape == (3, 32, 32) and np.isfinite(att.heatmaps).all() and att.heatmaps.max() > 0
    assert all(m.inplace for m in net.modules() if isinstance(m, nn.ReLU))


# --------------------------------------------------------------------- interruption
def _interrupt_after(calls: int):
    """A preprocess that raises KeyboardInterrupt once, on call ``calls + 1`` (as one Ctrl-C does)."""
    seen = {"n": 0}

    def pre(x):
        seen["n"] += 1
        if seen["n"] == calls + 1:
            raise KeyboardInterrupt
        return x

    return pre


def test_interrupt_keeps_finished_images(small_fit):
    model, fit, _ = small_fit
    # 1 reference pass + 12 steps + 1 final pass per image: stop in the middle of the second image
    with pytest.warns(UserWarning, match="keeping the 1 of 3 images"):
        m = pl.maximize(model, fit, "1", 0, n=3, preprocess=_interrupt_after(1 + 14 + 5), **FAST)
    assert m.interrupted and m.inputs.shape == (1, 1, 8, 8) and m.history.shape == (1, 12)
    with pytest.raises(KeyboardInterrupt):
        pl.maximize(model, fit, "1", 0, n=1, preprocess=_interrupt_after(5), **FAST)
    assert all(p.requires_grad for p in model.parameters())
    with pytest.warns(UserWarning, match="invert interrupted after 4 of 12 steps"):
        inv = pl.invert(model, fit, "1", 0, preprocess=_interrupt_after(4), **FAST)
    assert inv.interrupted


# ------------------------------------------------------------------- shapes and ranges
def test_grayscale_range_from_the_captured_inputs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
    x = 0.2 + 0.4 * torch.rand(30, 1, 28, 28)  # inputs in [0.2, 0.6]
    fit = pl.factorize(pl.capture(model, x, layers=["1"], progress=False), rank=2, seed=0)
    for param in ("fourier", "maco", "pixel"):
        m = pl.maximize(model, fit, "1", 0, param=param, **FAST)
        assert m.inputs.shape == (1, 1, 28, 28) and m.images.shape == (1, 28, 28)
        assert m.inputs.min() >= 0.2 - 1e-6 and m.inputs.max() <= 0.6 + 1e-6
        assert m.settings["value_range"] == pytest.approx([float(x.min()), float(x.max())])
    # no inputs kept: the documented default (0, 1), or value_range=
    fit.inputs = None
    m = pl.maximize(model, fit, "1", 0, **FAST)
    assert m.settings["value_range"] == [0.0, 1.0] and np.isnan(m.reference)
    m = pl.maximize(model, fit, "1", 0, value_range=(-1, 1), **FAST)
    assert m.inputs.min() >= -1 and m.inputs.min() < 0


def test_rgb_inputs_with_measured_colour_decorrelation():
    from peeklens.interpret._inputs import input_spec

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, stride=2), nn.ReLU(), nn.Conv2d(6, 8, 3), nn.ReLU())
    base = torch.rand(40, 1, 64, 64)
    x = torch.cat([base, 0.8 * base + 0.2 * torch.rand(40, 1, 64, 64), torch.rand(40, 1, 64, 64)], dim=1)
    fit = pl.factorize(pl.capture(model, x, layers=["3"], progress=False), rank=2, seed=0)
    spec = input_spec(fit)
    assert spec.shape == (3, 64, 64) and spec.color.shape == (3, 3)
    # the colour matrix is the square root of the channel covariance (up to its scale)
    cov = np.cov(np.stack([np.asarray(fit.inputs[f"input:{c}"]).ravel() for c in range(3)]))
    s = spec.color.astype(np.float64)
    np.testing.assert_allclose(s @ s.T / (s @ s.T).max(), cov / cov.max(), atol=1e-4)
    m = pl.maximize(model, fit, "3", 1, n=2, **FAST)
    assert m.inputs.shape == (2, 3, 64, 64) and m.images.shape == (2, 64, 64, 3)
    assert m.settings["rotate"] == 10.0 and m.settings["scale"] == [0.9, 1.1]  # 64 px: Lucid's transforms
    att = pl.attribute(model, fit, "3", 1, method="guided_backprop", k=2, crops=True)
    assert att.heatmaps.shape == (2, 64, 64) and att.crops.shape == (2, 3, 26, 26)


def test_rgb_224_with_lucid_jitter():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 7, stride=4), nn.ReLU())
    fit = pl.factorize(pl.capture(model, torch.rand(6, 3, 224, 224), layers=["1"], progress=False), rank=2, seed=0)
    m = pl.maximize(model, fit, "1", 0, steps=3, progress=False)
    assert m.inputs.shape == (1, 3, 224, 224) and m.images.shape == (1, 224, 224, 3)
    assert m.settings["jitter"] == 8.0  # Lucid's 8 pixels at 224 px
    lo = min(float(v.min()) for v in fit.inputs.values())
    hi = max(float(v.max()) for v in fit.inputs.values())
    assert lo <= m.inputs.min() and m.inputs.max() <= hi


def test_flat_inputs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 8), nn.ReLU())
    fit = pl.factorize(pl.capture(model, torch.rand(30, 10), layers=["1"], progress=False), rank=2, seed=0)
    m = pl.maximize(model, fit, "1", 0, **FAST)
    assert m.inputs.shape == (1, 10) and m.settings["param"] == "fourier"  # falls back to pixels internally
    att = pl.attribute(model, fit, "1", 0, method="integrated_gradients", k=3)
    assert att.heatmaps.shape == (3, 1, 10)
    with pytest.raises(pl.InputError, match="crops=True needs image inputs"):
        pl.attribute(model, fit, "1", 0, crops=True)


def test_diversity_gives_distinct_images(paper):
    net, _, fit, pre = paper
    m = pl.maximize(net, fit, "relu_1", 0, n=3, preprocess=pre, steps=40, progress=False)
    flat = m.inputs.reshape(3, -1)
    corr = np.corrcoef(flat)
    assert m.history.shape == (3, 40) and (corr[np.triu_indices(3, 1)] < 0.95).all()
    assert (m.scores > 0).all()


# ------------------------------------------------------------------------ results
def test_results_split_into_arrays_and_json_meta_and_back(paper):
    net, _, fit, pre = paper
    objs = [
        pl.maximize(net, fit, "relu", 0, preprocess=pre, **FAST),
        pl.attribute(net, fit, "relu", 0, method="spatial", crops=True, preprocess=pre),
        pl.invert(net, fit, "relu", 0, preprocess=pre, **FAST),
    ]
    for obj, cls in zip(objs, (Maximized, Attribution, Inversion)):
        arrays, meta = obj.arrays(), obj.meta()
        assert all(isinstance(v, np.ndarray) for v in arrays.values())
        text = json.dumps(meta)  # JSON-ready, no pickle needed
        back = cls.from_parts(json.loads(text), {k: v.copy() for k, v in arrays.items()})
        assert meta["type"] == cls.__name__
        for k, v in arrays.items():
            np.testing.assert_array_equal(getattr(back, k), v)
        assert repr(back) == repr(obj)
    att = objs[1]
    assert att.attributions is None and "attributions" not in att.arrays()


def test_no_print_and_progress_bar_off(paper, capsys):
    net, _, fit, pre = paper
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pl.maximize(net, fit, "relu", 0, preprocess=pre, **FAST)
        pl.attribute(net, fit, "relu", 0, method="guided_backprop", preprocess=pre)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
