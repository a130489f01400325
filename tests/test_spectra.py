import numpy as np
import pytest

import peeklens as pl
from peeklens import spectra


def test_exact_values_match_numpy_svd():
    rng = np.random.default_rng(0)
    X = rng.random((40, 300))
    sv = pl.spectrum(pl.Activations.from_arrays({"a": X}), k=10)
    ref = np.linalg.svd(X, compute_uv=False)
    np.testing.assert_allclose(sv.values["a"], ref[:10], rtol=1e-4)
    assert sv.method["a"] == "exact"
    assert sv.stable_rank["a"] == pytest.approx(np.sum(X**2) / ref[0] ** 2, rel=1e-4)
    p = ref / ref.sum()
    assert sv.entropy_rank["a"] == pytest.approx(np.exp(-np.sum(p * np.log(p))), rel=1e-3)


def test_randomized_path_for_big_blocks(monkeypatch):
    monkeypatch.setattr(spectra, "EXACT_LIMIT", 20)
    rng = np.random.default_rng(1)
    # low-rank plus small noise: the randomized top values are accurate
    X = rng.random((300, 8)) @ rng.random((8, 200)) + 0.01 * rng.random((300, 200))
    sv = pl.spectrum(pl.Activations.from_arrays({"a": X}), k=8)
    ref = np.linalg.svd(X, compute_uv=False)[:8]
    assert sv.method["a"] == "randomized"
    np.testing.assert_allclose(sv.values["a"], ref, rtol=1e-2)


def test_k_is_capped_by_the_block_and_validated():
    sv = pl.spectrum(pl.Activations.from_arrays({"a": np.ones((3, 5))}), k=50)
    assert sv.values["a"].shape == (3,)
    assert sv.entropy_rank["a"] == pytest.approx(1.0, abs=1e-3)  # rank one
    with pytest.raises(pl.InputError, match="k must be"):
        pl.spectrum(pl.Activations.from_arrays({"a": np.ones((3, 5))}), k=0)


@pytest.mark.slow
def test_trained_layers_spectrum_on_real_mnist(paper_net, mnist_test):
    x, _ = mnist_test
    acts = pl.capture(paper_net, x[:2000], layers=["relu", "relu_1"], progress=False)
    sv = pl.spectrum(acts, k=50)
    assert set(sv.names) == {"input:0", "relu", "relu_1"}
    for n in sv.names:
        v = sv.values[n]
        assert v.shape == (50,) and np.all(np.diff(v) <= 1e-3 * v[0])
        assert 1 <= sv.stable_rank[n] <= sv.entropy_rank[n]
