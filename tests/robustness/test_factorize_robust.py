"""factorize / sweep / spectrum on hostile input: bad values and ranks, degenerate blocks, OOM, Ctrl-C."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import peeklens as pl
from peeklens import nmf as fz
from peeklens.nmf import _problem as problem_mod


def acts_of(**blocks) -> pl.Activations:
    return pl.Activations.from_arrays(blocks)


def rand(m, n, seed=0):
    return np.random.default_rng(seed).random((m, n)).astype(np.float32)


@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(1, 12),
    n=st.integers(1, 12),
    bad=st.sampled_from([np.nan, np.inf, -np.inf]),
    data=st.data(),
)
def test_nan_and_inf_anywhere_are_refused_naming_the_block(m, n, bad, data):
    X = rand(m, n)
    X[data.draw(st.integers(0, m - 1)), data.draw(st.integers(0, n - 1))] = bad
    acts = acts_of(good=rand(3, n), **{"relu_1": X})
    with pytest.raises(pl.InputError, match=r"block 'relu_1' contains NaN or Inf"):
        pl.factorize(acts, rank=1, max_iter=2)


def test_negative_values_are_refused_with_remedies():
    X = rand(5, 6)
    X[2, 3] = -0.25
    with pytest.raises(pl.NonNegativityError, match=r"block 'conv1' has negative values \(min -0.25\).*nonneg='shift'"):
        pl.factorize(acts_of(conv1=X), rank=2)


@settings(max_examples=30, deadline=None)
@given(
    m=st.integers(1, 8),
    n=st.integers(1, 8),
    rank=st.one_of(st.integers(-5, 20), st.floats(allow_nan=True), st.booleans(), st.text(max_size=2)),
)
def test_ranks_are_validated(m, n, rank):
    acts = acts_of(a=rand(m, n))
    valid = isinstance(rank, int) and not isinstance(rank, bool) and 1 <= rank <= min(m, n)
    if valid:
        fit = pl.factorize(acts, rank=rank, max_iter=3)
        assert fit.F.shape == (n, rank)
    else:
        with pytest.raises(pl.InputError, match="rank"):
            pl.factorize(acts, rank=rank, max_iter=3)


def test_rank_zero_negative_and_too_large_messages_name_the_limit():
    acts = acts_of(a=rand(4, 9), b=rand(2, 9))
    with pytest.raises(pl.InputError, match="rank must be a positive integer, got 0"):
        pl.factorize(acts, rank=0)
    with pytest.raises(pl.InputError, match="got -3"):
        pl.factorize(acts, rank=-3)
    with pytest.raises(pl.InputError, match=r"rank 10 is larger.*9 samples x 6 features.*rank <= 6"):
        pl.factorize(acts, rank=10)


@pytest.mark.parametrize("solver", sorted(fz.SOLVERS))
def test_all_zero_block_gives_finite_factors_and_zero_error(solver):
    acts = acts_of(**{"input:0": rand(6, 20), "dead": np.zeros((5, 20), np.float32)})
    fit = pl.factorize(acts, rank=3, max_iter=30, solver=solver)
    assert all(np.isfinite(W).all() for W in fit.loadings.values()) and np.isfinite(fit.F).all()
    assert fit.errors["dead"] == 0.0 and np.isfinite(fit.rmse)
    assert np.abs(fit.loadings["dead"] @ fit.F.T).max() < 1e-3


@pytest.mark.parametrize("solver", sorted(fz.SOLVERS))
def test_everything_zero(solver):
    fit = pl.factorize(acts_of(z=np.zeros((4, 7), np.float32)), rank=2, max_iter=10, solver=solver)
    assert fit.rmse == 0.0 and fit.errors["z"] == 0.0 and np.isfinite(fit.F).all()


@pytest.mark.parametrize("solver", sorted(fz.SOLVERS))
def test_constant_block_is_fit_almost_exactly(solver):
    fit = pl.factorize(acts_of(c=np.full((8, 30), 3.0, np.float32)), rank=1, max_iter=200, tol=0, solver=solver)
    assert fit.errors["c"] < 1e-3 and np.isfinite(fit.objective).all()


def test_mismatched_sample_counts_name_both_blocks():
    with pytest.raises(pl.InputError, match=r"share the sample axis.*input:0: 10, relu: 9"):
        acts_of(**{"input:0": rand(3, 10), "relu": rand(3, 9)})


@pytest.mark.parametrize("shape", [(0, 5), (5, 0)])
def test_empty_blocks_are_refused(shape):
    with pytest.raises(pl.InputError):
        pl.factorize(acts_of(e=np.zeros(shape, np.float32)), rank=1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_iter": 0}, "max_iter"),
        ({"tol": -1.0}, "tol"),
        ({"tol": float("nan")}, "tol"),
        ({"solver": "magic"}, "unknown solver 'magic'"),
        ({"weights": {"nope": 1.0}}, "unknown blocks"),
        ({"weights": {"a": -1.0}}, "weight of block 'a'"),
        ({"weights": {"a": float("nan")}}, "weight of block 'a'"),
        ({"init": "best"}, "unknown init 'best'"),
        ({"init": {"F": np.ones((9, 2))}}, r"init= is missing \['a'\]"),
    ],
)
def test_bad_options_are_refused(kwargs, match):
    with pytest.raises(pl.InputError, match=match):
        pl.factorize(acts_of(a=rand(4, 9)), rank=2, **kwargs)


def test_not_activations_is_refused():
    with pytest.raises(pl.InputError, match="expects peeklens.Activations.*from_arrays"):
        pl.factorize(rand(4, 9), rank=2)


def test_cuda_without_cuda_is_a_device_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(pl.DeviceError, match="CUDA is not available.*device='cpu'"):
        pl.factorize(acts_of(a=rand(4, 9)), rank=2, device="cuda")


def _oom_at(rank_to_fail: int, monkeypatch):
    solve = fz.mu.solve

    def hungry(problem, F, W, **kw):
        if F.shape[1] == rank_to_fail:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return solve(problem, F, W, **kw)

    monkeypatch.setattr(fz.mu, "solve", hungry)


def test_cuda_out_of_memory_says_how_to_reduce_the_work(monkeypatch):
    _oom_at(3, monkeypatch)
    with pytest.raises(pl.DeviceError, match=r"out of memory on cpu.*rank 3: use a smaller rank.*pool=2.*device='cpu'"):
        pl.factorize(acts_of(a=rand(6, 9)), rank=3, solver="mu")


def test_out_of_memory_mid_sweep_keeps_the_finished_ranks(monkeypatch):
    _oom_at(3, monkeypatch)
    with pytest.raises(pl.DeviceError, match=r"finished rank\(s\) \[1, 2\] are kept") as info:
        pl.sweep(acts_of(a=rand(6, 9)), ranks=[1, 2, 3, 4], solver="mu", max_iter=5, progress=False)
    partial = info.value.partial
    assert partial.ranks == [1, 2] and partial.interrupted and partial.requested == [1, 2, 3, 4]


def test_keyboard_interrupt_during_sweep_returns_finished_ranks(monkeypatch, tmp_path):
    solve = fz.mu.solve
    calls = []

    def interrupted(problem, F, W, **kw):
        calls.append(F.shape[1])
        cb = kw["callback"]

        def stop_in_the_middle(i, obj):
            if F.shape[1] == 3 and i == 4:
                raise KeyboardInterrupt
            cb(i, obj)

        return solve(problem, F, W, **{**kw, "callback": stop_in_the_middle})

    monkeypatch.setattr(fz.mu, "solve", interrupted)
    acts = acts_of(a=rand(6, 9), b=rand(5, 9, seed=1))
    with pytest.warns(UserWarning, match=r"sweep interrupted: keeping the 2 finished rank\(s\) \[1, 2\]"):
        sw = pl.sweep(acts, ranks=[1, 2, 3, 4], solver="mu", max_iter=10, tol=0, progress=False)
    assert sw.ranks == [1, 2] and sw.interrupted and calls == [1, 2, 3]
    assert sw[2].n_iter == 10 and "interrupted: 2 of 4 finished" in repr(sw)
    back = pl.load(pl.save(sw, tmp_path / "s.peeklens"))  # and it survives a round trip
    assert back.ranks == [1, 2] and back.interrupted and back.requested == [1, 2, 3, 4]
    np.testing.assert_array_equal(back[2].F, sw[2].F)


@pytest.mark.parametrize(
    "ranks, match",
    [
        ([], "ranks is empty"),
        ([2, 2], "duplicates"),
        ([1, 2.5], r"2\.5"),
        ([1, 0], "got 0"),
        ([1, 99], "rank 99 is larger"),
        (["3"], "'3'"),
    ],
)
def test_bad_ranks_fail_before_the_first_fit(monkeypatch, ranks, match):
    called = []
    monkeypatch.setattr(fz.mu, "solve", lambda *a, **k: called.append(1))
    with pytest.raises(pl.InputError, match=match):
        pl.sweep(acts_of(a=rand(6, 9)), ranks=ranks, solver="mu", progress=False)
    assert called == []


def test_memory_mapped_blocks_are_streamed_not_copied(tmp_path):
    """check_blocks / make_problem / errors over a memory map allocate far less than the block."""
    n, m = 400, 6000  # samples-major on disk, as capture(storage=) writes it: 9.6 MB
    buf = np.lib.format.open_memmap(tmp_path / "b.npy", mode="w+", dtype=np.float32, shape=(n, m))
    buf[:] = np.random.default_rng(0).random((n, m), dtype=np.float32)
    buf.flush()
    ro = np.load(tmp_path / "b.npy", mmap_mode="r")
    acts = pl.Activations({"big": pl.Block("big", ro.T, (m,), "layer")})
    tracemalloc.start()
    try:
        problem_mod.check_blocks(acts)
        prob = problem_mod.make_problem(acts, None, None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < buf.nbytes / 8, f"{peak} bytes allocated for a {buf.nbytes}-byte block"
    assert abs(prob.norms2[0] - float(np.sum(ro.astype(np.float64) ** 2))) < 1e-6 * prob.norms2[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "non-writable array" warning either
        fit = pl.factorize(acts, rank=3, max_iter=5, solver_options={"fused": False})
        fused = pl.factorize(acts, rank=3, max_iter=5)  # the default on disk: one read per round
    ref = pl.factorize(pl.Activations.from_arrays({"big": np.array(ro.T)}), rank=3, max_iter=5)
    # on disk the sketch reads the data fewer times (its first product comes with the checks, a power
    # iteration is one read): the same subspace with other float32 rounding, so the same fit to ~1e-4
    assert fit.settings["passes"]["total"] < ref.settings["passes"]["total"]
    assert fit.objective[-1] == pytest.approx(ref.objective[-1], rel=1e-4)
    np.testing.assert_allclose(fit.F, ref.F, rtol=2e-3, atol=2e-3 * float(np.abs(ref.F).max()))
    assert fused.settings["fused"] and fused.settings["passes"]["total"] < fit.settings["passes"]["total"]
    assert fused.objective[-1] == pytest.approx(ref.objective[-1], rel=1e-3)


def test_spectrum_rejects_nan_and_bad_k():
    X = rand(4, 6)
    X[0, 0] = np.nan
    with pytest.raises(pl.InputError, match="block 'a' has NaN or Inf"):
        pl.spectrum(acts_of(a=X))
    for k in (0, -1, 2.5, True):
        with pytest.raises(pl.InputError, match="k must be a positive integer"):
            pl.spectrum(acts_of(a=rand(3, 3)), k=k)


def test_spectrum_of_zero_and_single_sample_blocks():
    sv = pl.spectrum(acts_of(z=np.zeros((5, 4), np.float32), one=rand(5, 4)[:, :4]), k=10)
    assert sv.values["z"].max() == 0 and sv.stable_rank["z"] == 0.0 and sv.entropy_rank["z"] == 0.0
    sv1 = pl.spectrum(acts_of(a=rand(7, 1)), k=5)
    assert sv1.values["a"].shape == (1,) and sv1.stable_rank["a"] == pytest.approx(1.0)


def test_spectrum_of_a_memory_map_does_not_copy_it(tmp_path):
    n, m = 300, 8000
    buf = np.lib.format.open_memmap(tmp_path / "b.npy", mode="w+", dtype=np.float32, shape=(n, m))
    buf[:] = np.random.default_rng(1).random((n, m), dtype=np.float32)
    buf.flush()
    ro = np.load(tmp_path / "b.npy", mmap_mode="r")
    acts = pl.Activations({"big": pl.Block("big", ro.T, (m,), "layer")})
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            sv = pl.spectrum(acts, k=5)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < ro.nbytes / 4
    ref = np.linalg.svd(np.asarray(ro, dtype=np.float64), compute_uv=False)[:5]
    np.testing.assert_allclose(sv.values["big"], ref, rtol=1e-4)


@settings(max_examples=15, deadline=None)
@given(
    dtype=st.sampled_from([np.uint8, np.int32, np.int64, np.float16, np.float64, np.bool_]),
    m=st.integers(2, 10),
    n=st.integers(2, 10),
)
def test_integer_half_double_and_bool_blocks_are_factorized_as_float32(dtype, m, n):
    X = (np.random.default_rng(m * n).random((m, n)) * 5).astype(dtype)
    direct = pl.Activations({"x": pl.Block("x", X, (m,), "layer")})  # a Block keeps the caller's dtype
    for acts in (acts_of(x=X), direct):
        fit = pl.factorize(acts, rank=1, max_iter=5, solver="mu")
        assert fit.F.dtype == np.float32 and fit.loadings["x"].dtype == np.float32 and np.isfinite(fit.rmse)
