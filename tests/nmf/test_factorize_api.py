"""factorize / sweep: options, reported errors, and refusals."""

import functools
import math
import warnings

import numpy as np
import pytest
import torch

import peeklens as pl
from peeklens import nmf as fz
from peeklens.errors import DeviceError, InputError, NonNegativityError

factorize = functools.partial(pl.factorize, solver="mu")  # these tests are about the paper's solver


def test_result_fields_and_error_definitions(blocks_small):
    fit = factorize(blocks_small, 4, max_iter=100)
    assert fit.F.shape == (60, 4) and fit.F.dtype == np.float32
    assert fit.loadings["input:0"].shape == (30, 4) and fit.loadings["relu"].shape == (20, 4)
    assert (fit.F >= 0).all() and all((W >= 0).all() for W in fit.loadings.values())
    sq = {n: np.sum((blocks_small[n].data.astype(np.float64) - fit.reconstruct(n)) ** 2) for n in blocks_small.names}
    for n in blocks_small.names:
        assert fit.errors[n] == pytest.approx(math.sqrt(sq[n]) / np.linalg.norm(blocks_small[n].data), rel=1e-4)
    assert fit.rmse == pytest.approx(math.sqrt(sum(sq.values()) / (50 * 60)), rel=1e-4)
    # rank-4 data plus 1 % noise: a rank-4 fit explains almost everything
    assert max(fit.errors.values()) < 0.05
    assert fit.settings["solver"] == "mu" and fit.settings["rank"] == 4 and fit.settings["seed"] == 0
    assert fit.blocks["input:0"]["shape"] == [5, 6] and fit.blocks["relu"]["kind"] == "layer"
    assert fit.seconds > 0 and fit.n_iter == len(fit.objective)
    assert "rank=4" in repr(fit)


def test_tolerance_stops_early_and_reports_convergence(blocks_small):
    fit = factorize(blocks_small, 4, max_iter=5000, tol=1e-3)
    assert fit.converged and fit.n_iter < 5000
    rel = abs(fit.objective[-2] - fit.objective[-1]) / fit.objective[-2]
    assert rel <= 1e-3


def test_weights_equal_an_nmf_of_the_scaled_stack(blocks_small):
    rng = np.random.default_rng(0)
    init = {"F": rng.random((60, 3))}
    for n in blocks_small.names:
        init[n] = rng.random((blocks_small[n].n_features, 3))
    w = {"input:0": 4.0, "relu": 0.25}
    fit = factorize(blocks_small, 3, weights=w, init=init, max_iter=20, tol=0)
    # oracle: plain MU on [2 X1; 0.5 X2] with loadings scaled the same way
    scaled = pl.Activations.from_arrays({"s": blocks_small.stacked(weights=w)})
    init_s = {"F": init["F"], "s": np.concatenate([2 * init["input:0"], 0.5 * init["relu"]])}
    ref = factorize(scaled, 3, init=init_s, max_iter=20, tol=0)
    np.testing.assert_allclose(fit.F, ref.F, rtol=2e-3, atol=1e-5)
    np.testing.assert_allclose(fit.loadings["input:0"], ref.loadings["s"][:30] / 2, rtol=2e-3, atol=1e-5)
    assert fit.objective[-1] == pytest.approx(ref.objective[-1], rel=1e-3)
    assert fit.settings["weights"] == w


def test_same_seed_is_bit_identical_on_cpu(blocks_small):
    a = factorize(blocks_small, 3, max_iter=50, seed=11)
    b = factorize(blocks_small, 3, max_iter=50, seed=11)
    np.testing.assert_array_equal(a.F, b.F)
    for n in a.loadings:
        np.testing.assert_array_equal(a.loadings[n], b.loadings[n])


def test_block_selection(blocks_small):
    fit = factorize(blocks_small, 2, blocks=["relu"], max_iter=10)
    assert list(fit.loadings) == ["relu"]


@pytest.mark.parametrize("rank", [0, -3, 2.5, "10", True, 51])
def test_bad_ranks_are_refused(blocks_small, rank):
    with pytest.raises(InputError, match="rank"):
        factorize(blocks_small, rank)


def test_bad_options_are_refused(blocks_small):
    with pytest.raises(InputError, match="unknown solver 'magic'"):
        factorize(blocks_small, 2, solver="magic")
    with pytest.raises(InputError, match="max_iter"):
        factorize(blocks_small, 2, max_iter=0)
    with pytest.raises(InputError, match="tol"):
        factorize(blocks_small, 2, tol=float("nan"))
    with pytest.raises(InputError, match="unknown blocks"):
        factorize(blocks_small, 2, weights={"nope": 1.0})
    with pytest.raises(InputError, match="every block has weight 0"):
        factorize(blocks_small, 2, weights={"input:0": 0, "relu": 0})
    with pytest.raises(InputError, match=r"init\['F'\] has shape"):
        factorize(blocks_small, 2, init={"F": np.ones((3, 2)), "input:0": np.ones((30, 2)), "relu": np.ones((20, 2))})
    with pytest.raises(InputError, match="missing"):
        factorize(blocks_small, 2, init={"F": np.ones((60, 2))})
    with pytest.raises(InputError, match="Activations"):
        factorize(np.ones((3, 3)), 1)


def test_negative_and_nan_blocks_are_refused_naming_the_block():
    neg = pl.Activations.from_arrays({"ok": np.ones((3, 4)), "bad": -np.ones((2, 4))})
    with pytest.raises(NonNegativityError, match="'bad'.*nonneg="):
        factorize(neg, 1)
    nan = np.ones((2, 4))
    nan[1, 1] = np.nan
    with pytest.raises(InputError, match="'x' contains NaN"):
        factorize(pl.Activations.from_arrays({"x": nan}), 1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when CUDA is missing")
def test_cuda_request_without_gpu_is_clear(blocks_small):
    with pytest.raises(DeviceError, match="CUDA is not available"):
        factorize(blocks_small, 2, device="cuda")


# ---------------------------------------------------------------------- sweep
def test_sweep_fits_every_rank_and_tabulates(blocks_small):
    s = pl.sweep(blocks_small, ranks=[1, 2, 4], max_iter=200, progress=False)
    assert s.ranks == [1, 2, 4] and not s.interrupted
    assert s.rmse.shape == (3,) and s.rmse[2] < s.rmse[0]
    t = s.table()
    assert t["rank"] == [1, 2, 4] and set(t) == {"rank", "rmse", "input:0", "relu"}
    assert s[2].rank == 2
    text = repr(s)
    assert "input:0" in text and "rmse" in text and text.count("\n") >= 4
    with pytest.raises(KeyError, match="rank 3 is not in this sweep"):
        s[3]


def test_sweep_refuses_bad_ranks_before_any_work(blocks_small, monkeypatch):
    calls = []
    monkeypatch.setattr(fz, "_fit", lambda *a, **k: calls.append(a))
    with pytest.raises(InputError, match="rank 500"):
        fz.sweep(blocks_small, ranks=[2, 500], progress=False)
    assert calls == []
    with pytest.raises(InputError, match="duplicates"):
        fz.sweep(blocks_small, ranks=[2, 2], progress=False)


def test_keyboard_interrupt_keeps_finished_ranks(blocks_small, monkeypatch):
    real = fz._fit

    def interrupt_at_rank_3(state, rank, cfg):
        if rank == 3:
            raise KeyboardInterrupt
        return real(state, rank, cfg)

    monkeypatch.setattr(fz, "_fit", interrupt_at_rank_3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = fz.sweep(blocks_small, ranks=[1, 2, 3, 4], max_iter=20, progress=False)
    assert s.ranks == [1, 2] and s.interrupted and s.requested == [1, 2, 3, 4]
    assert any("interrupted" in str(w.message) for w in caught)
    assert "interrupted" in repr(s)
