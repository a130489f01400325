"""maximize / attribute / invert on a CUDA GPU: deterministic for a seed, close to the CPU (skipped without a GPU)."""

import numpy as np
import pytest
import torch

import peeklens as pl
from peeklens import studies

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.fixture(scope="module")
def paper():
    torch.manual_seed(0)
    net = studies.PaperNet()
    acts = pl.capture(net, torch.rand(60, 1, 28, 28), layers=["relu", "relu_1"], progress=False)
    return net, pl.factorize(acts, rank=3, seed=0)


def test_maximize_on_cuda_is_deterministic_and_leaves_the_model_where_it_was(paper):
    net, fit = paper
    a = pl.maximize(net, fit, "relu_1", 0, n=2, steps=30, device="cuda", progress=False)
    b = pl.maximize(net, fit, "relu_1", 0, n=2, steps=30, device="cuda", progress=False)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    assert a.settings["device"].startswith("cuda")
    assert next(net.parameters()).device.type == "cpu"


def test_rgb_transforms_on_cuda_are_deterministic():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(3, 2),
        torch.nn.Conv2d(8, 8, 3),
        torch.nn.ReLU(),
    ).cuda()
    fit = pl.factorize(pl.capture(model, torch.rand(30, 3, 96, 96).cuda(), layers=["4"], progress=False), rank=2)
    a = pl.maximize(model, fit, "4", 1, steps=30, progress=False)  # scale and rotation on at 96 px
    b = pl.maximize(model, fit, "4", 1, steps=30, progress=False)
    np.testing.assert_array_equal(a.inputs, b.inputs)


def test_attribute_and_invert_on_cuda_match_the_cpu(paper):
    net, fit = paper
    for method in ("guided_backprop", "integrated_gradients", "spatial"):
        g = pl.attribute(net, fit, "relu_1", 1, method=method, device="cuda")
        c = pl.attribute(net, fit, "relu_1", 1, method=method)
        np.testing.assert_allclose(g.heatmaps, c.heatmaps, rtol=1e-3, atol=1e-4 * float(c.heatmaps.max()))
    inv = pl.invert(net, fit, "relu", 0, steps=200, device="cuda", progress=False)
    assert inv.cosine > 0.9


def test_explain_on_cuda_is_deterministic_and_attributes_like_the_cpu(paper):
    net, fit = paper
    runs = []
    for device in ("cuda", "cuda", "cpu"):
        f = pl.Factorization(**{**fit.__dict__, "interpretation": None})
        runs.append(pl.explain(net, f, "relu_1", steps=20, top_k=4, device=device, progress=False)[3])
    a, b, c = runs
    np.testing.assert_array_equal(a.maximized, b.maximized)
    np.testing.assert_array_equal(a.samples, c.samples)
    assert np.abs(a.heatmaps.astype(int) - c.heatmaps.astype(int)).max() <= 1  # uint8 levels
    assert next(net.parameters()).device.type == "cpu"
