"""The tensor lens: coupled non-negative matrix-tensor factorization (peeklens.nmf.tensor)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

import peeklens as pl
from peeklens.errors import InputError, NonNegativityError
from peeklens.nmf import tensor_hals
from peeklens.nmf.tensor import factorize_tensor, sweep_tensor, tensor_layout, tensor_loadings, tensor_spatial_maps

SHAPES = {"input:0": (7, 7), "conv1": (6, 5, 5), "conv2": (8, 3, 3)}


def kr(C, S):
    return (C[:, None, :] * S[None, :, :]).reshape(C.shape[0] * S.shape[0], C.shape[1])


def planted(seed=0, T=300, R=4, noise=0.0):
    """Data generated exactly from a coupled non-negative CP model: one input matrix, two conv tensors, shared F."""
    rng = np.random.default_rng(seed)
    true = {
        "F": rng.random((T, R)) ** 2,
        "input:0": rng.random((49, R)),
        "conv1": rng.random((6, R)), "conv1/S": rng.random((25, R)),
        "conv2": rng.random((8, R)), "conv2/S": rng.random((9, R)),
    }
    arrays = {
        "input:0": true["input:0"] @ true["F"].T,
        "conv1": kr(true["conv1"], true["conv1/S"]) @ true["F"].T,
        "conv2": kr(true["conv2"], true["conv2/S"]) @ true["F"].T,
    }
    if noise:
        arrays = {k: v + noise * rng.random(v.shape) for k, v in arrays.items()}
    return pl.Activations.from_arrays(arrays, shapes=SHAPES), true


def congruence(A, B):
    A = A / np.linalg.norm(A, axis=0)
    B = B / np.linalg.norm(B, axis=0)
    return A.T @ B


def exact_sq(acts, fit):
    """``||X_b - model_b||^2`` per block, in float64 from the returned factors."""
    return {n: float(np.sum((acts[n].data.astype(np.float64)
                             - tensor_loadings(fit, n).astype(np.float64) @ fit.F.T.astype(np.float64)) ** 2))
            for n in acts.names}


@pytest.fixture(scope="module")
def noisy():
    return planted(seed=3, noise=0.05)[0]


# ----------------------------------------------------------------------------- recovery
def test_planted_coupled_cp_model_is_recovered():
    acts, true = planted()
    fit = factorize_tensor(acts, 4, max_iter=3000, tol=1e-9, init="random", seed=0)
    assert fit.settings["model"] == "tensor" and fit.settings["tensor_blocks"] == ["conv1", "conv2"]
    assert fit.loadings["conv1"].shape == (6, 4) and fit.spatial["conv1"].shape == (25, 4)
    assert fit.loadings["input:0"].shape == (49, 4) and "input:0" not in fit.spatial
    for n in acts.names:
        assert fit.errors[n] < 1e-3, (n, fit.errors)
    # match the components once (on F), then every factor must agree with its planted one
    M = congruence(true["F"], fit.F)
    rows, cols = linear_sum_assignment(-M)
    assert M[rows, cols].min() >= 0.99
    for key, got in [("input:0", fit.loadings["input:0"]), ("conv1", fit.loadings["conv1"]),
                     ("conv1/S", fit.spatial["conv1"]), ("conv2", fit.loadings["conv2"]),
                     ("conv2/S", fit.spatial["conv2"])]:
        assert congruence(true[key], got)[rows, cols].min() >= 0.99, key


@pytest.mark.slow
def test_planted_recovery_from_the_default_start():
    acts, true = planted(seed=1)
    fit = factorize_tensor(acts, 4, max_iter=3000, tol=1e-9)
    assert fit.settings["init"] == "nndsvda"
    assert max(fit.errors.values()) < 1e-3
    M = congruence(true["F"], fit.F)
    rows, cols = linear_sum_assignment(-M)
    assert M[rows, cols].min() >= 0.99


# ----------------------------------------------------------------------------- oracle
def _hals_cols(H, A, G):
    """Row-by-row exact HALS on the columns of H (n x r): min 0.5 tr(H G H^T) - <A, H>, H >= 0."""
    H = H.copy()
    for k in range(H.shape[1]):
        if G[k, k] <= 0:
            continue
        H[:, k] = np.maximum(0.0, (A[:, k] - H @ G[:, k] + H[:, k] * G[k, k]) / G[k, k])
    return H


def oracle_iteration(acts, F, factors, weights, modes):
    """One HALS iteration of the coupled matrix-tensor model in float64 NumPy (one sweep per factor)."""
    X = [acts[n].data.astype(np.float64) for n in acts.names]
    W = [fs[0] if m is None else kr(*fs) for fs, m in zip(factors, modes)]
    A = sum(w * Xb.T @ Wb for w, Xb, Wb in zip(weights, X, W))
    B = sum(w * Wb.T @ Wb for w, Wb in zip(weights, W))
    F = _hals_cols(F, A, B)
    G = F.T @ F
    out = []
    for Xb, fs, m in zip(X, factors, modes):
        M = Xb @ F
        if m is None:
            out.append([_hals_cols(fs[0], M, G)])
            continue
        C, S = fs
        M3 = M.reshape(m[0], m[1], -1)
        C = _hals_cols(C, np.einsum("cpr,pr->cr", M3, S), (S.T @ S) * G)
        S = _hals_cols(S, np.einsum("cpr,cr->pr", M3, C), (C.T @ C) * G)
        nc, ns = np.linalg.norm(C, axis=0), np.linalg.norm(S, axis=0)
        s = np.sqrt(ns / nc)
        out.append([C * s, S / s])
    W = [fs[0] if m is None else kr(*fs) for fs, m in zip(out, modes)]
    obj = sum(w * np.sum((Xb - Wb @ F.T) ** 2) for w, Xb, Wb in zip(weights, X, W))
    return F, out, obj


def test_one_iteration_agrees_with_a_float64_numpy_oracle(noisy):
    rng = np.random.default_rng(11)
    r = 5
    modes = tensor_layout(noisy).modes
    F0 = rng.random((noisy.n_samples, r))
    factors0 = [[rng.random((noisy[n].n_features, r))] if m is None else [rng.random((m[0], r)), rng.random((m[1], r))]
                for n, m in zip(noisy.names, modes)]
    weights = {"input:0": 1.0, "conv1": 2.0, "conv2": 0.5}
    init = {"F": F0, **{n: fs[0] for n, fs in zip(noisy.names, factors0)},
            "spatial": {n: fs[1] for n, fs in zip(noisy.names, factors0) if len(fs) == 2}}
    for _ in range(2):  # one iteration, then a second one from the oracle's own first
        fit = factorize_tensor(noisy, r, init=init, max_iter=1, tol=0, max_inner=1, weights=weights)
        F, factors, obj = oracle_iteration(noisy, F0, factors0, [weights[n] for n in noisy.names], modes)
        np.testing.assert_allclose(fit.F, F, rtol=2e-4, atol=1e-5 * F.max())
        for n, fs in zip(noisy.names, factors):
            np.testing.assert_allclose(fit.loadings[n], fs[0], rtol=2e-4, atol=1e-5 * fs[0].max())
            if len(fs) == 2:
                np.testing.assert_allclose(fit.spatial[n], fs[1], rtol=2e-4, atol=1e-5 * fs[1].max())
        assert fit.objective[-1] == pytest.approx(obj, rel=1e-5)
        F0, factors0 = F, factors
        init = {"F": F0, **{n: fs[0] for n, fs in zip(noisy.names, factors0)},
                "spatial": {n: fs[1] for n, fs in zip(noisy.names, factors0) if len(fs) == 2}}


def test_reported_errors_objective_and_parameter_count_are_exact(noisy):
    weights = {"conv2": 3.0}
    fit = factorize_tensor(noisy, 4, max_iter=40, tol=0, weights=weights)
    sq = exact_sq(noisy, fit)
    for n in noisy.names:
        assert fit.errors[n] == pytest.approx(np.sqrt(sq[n] / np.sum(noisy[n].data.astype(np.float64) ** 2)), rel=1e-4)
    assert fit.objective[-1] == pytest.approx(sum(weights.get(n, 1.0) * s for n, s in sq.items()), rel=1e-4)
    assert fit.rmse == pytest.approx(np.sqrt(sum(sq.values()) / (noisy.n_features * noisy.n_samples)), rel=1e-4)
    assert fit.settings["n_params"] == 4 * (300 + 49 + 6 + 25 + 8 + 9)
    assert (fit.F >= 0).all() and all((v >= 0).all() for v in fit.loadings.values())
    assert all((v >= 0).all() for v in fit.spatial.values())
    maps = tensor_spatial_maps(fit, "conv1")
    assert maps.shape == (4, 5, 5)
    np.testing.assert_array_equal(maps[2].ravel(), fit.spatial["conv1"][:, 2])


def test_objective_never_increases_and_balance(noisy):
    for init in ["random", "nndsvda"]:
        fit = factorize_tensor(noisy, 6, max_iter=60, tol=0, init=init)
        obj = fit.objective
        assert len(obj) == 60
        assert np.all(np.diff(obj) <= 1e-5 * obj[:-1]), init
        assert obj[-1] < obj[0]
        C, S = fit.loadings["conv1"], fit.spatial["conv1"]
        np.testing.assert_allclose(np.linalg.norm(C, axis=0), np.linalg.norm(S, axis=0), rtol=1e-4)


def test_no_tensor_blocks_is_the_matrix_model(noisy):
    fit = factorize_tensor(noisy, 4, max_iter=150, tol=1e-6, tensor_blocks=[])
    assert fit.spatial == {} and fit.loadings["conv1"].shape == (150, 4)
    ten = factorize_tensor(noisy, 4, max_iter=150, tol=1e-6)
    # the matrix model is a relaxation of the tensor model: at least as good (same data, same rank)
    assert fit.objective[-1] <= ten.objective[-1] * 1.001
    assert fit.settings["n_params"] > ten.settings["n_params"]


def test_deterministic_for_a_seed(noisy):
    a = factorize_tensor(noisy, 4, max_iter=20, tol=0, init="random", seed=3)
    b = factorize_tensor(noisy, 4, max_iter=20, tol=0, init="random", seed=3)
    c = factorize_tensor(noisy, 4, max_iter=20, tol=0, init="random", seed=4)
    np.testing.assert_array_equal(a.F, b.F)
    np.testing.assert_array_equal(a.spatial["conv2"], b.spatial["conv2"])
    np.testing.assert_array_equal(a.objective, b.objective)
    assert not np.array_equal(a.F, c.F)
    d = factorize_tensor(noisy, 4, max_iter=20, tol=0, seed=5)
    e = factorize_tensor(noisy, 4, max_iter=20, tol=0, seed=5)
    np.testing.assert_array_equal(d.loadings["conv1"], e.loadings["conv1"])


def test_memory_mapped_blocks_streamed_in_chunks(tmp_path, noisy, monkeypatch):
    """Samples-major memory maps (as capture writes them), read a few samples at a time: same fit."""
    blocks = {}
    for n in noisy.names:
        buf = np.lib.format.open_memmap(tmp_path / f"{n}.npy", mode="w+", dtype=np.float32,
                                        shape=(noisy.n_samples, noisy[n].n_features))
        buf[:] = noisy[n].data.T
        buf.flush()
        ro = np.load(tmp_path / f"{n}.npy", mmap_mode="r")
        blocks[n] = pl.Block(n, ro.T, noisy[n].shape, noisy[n].kind)
    mm = pl.Activations(blocks)
    ref = factorize_tensor(noisy, 3, max_iter=15, tol=0, init="random")
    monkeypatch.setattr(tensor_hals, "CHUNK_ELEMENTS", 1000)  # 4..20 samples per chunk
    assert len(tensor_hals._sample_chunks(torch.empty(mm["conv1"].data.shape))) > 10
    got = factorize_tensor(mm, 3, max_iter=15, tol=0, init="random")
    assert isinstance(mm["conv1"].data.base, np.memmap) or isinstance(mm["conv1"].data, np.memmap)
    np.testing.assert_allclose(got.objective, ref.objective, rtol=1e-4)
    np.testing.assert_allclose(got.F, ref.F, rtol=1e-3, atol=1e-5)


# ----------------------------------------------------------------------------- sweeps
def test_sweep_warm_starts_across_ranks():
    acts, _ = planted(seed=2, noise=0.01)
    s = sweep_tensor(acts, [2, 4, 6], max_iter=200, progress=False)
    assert s.ranks == [2, 4, 6] and s.meta["settings"]["model"] == "tensor"
    assert s[2].settings["init"] == "nndsvda"
    assert s[4].settings["init"] == "warm start from rank 2" and s[6].settings["init"] == "warm start from rank 4"
    assert s.rmse[0] > s.rmse[1] >= s.rmse[2] * 0.999
    assert s[6].spatial["conv2"].shape == (9, 6)
    cold = sweep_tensor(acts, [2, 4], warm_start=False, max_iter=5, progress=False)
    assert cold[4].settings["init"] == "nndsvda"
    part = sweep_tensor(acts, [2, 3], blocks=["conv2"], max_iter=20, progress=False)
    assert list(part[3].errors) == ["conv2"] and part[3].settings["tensor_blocks"] == ["conv2"]


def test_explicit_init_continues_a_fit(noisy):
    a = factorize_tensor(noisy, 3, max_iter=10, tol=0, init="random")
    b = factorize_tensor(noisy, 3, max_iter=10, tol=0, init={"F": a.F, **a.loadings, "spatial": a.spatial})
    assert b.settings["init"] == "explicit"
    assert b.objective[0] <= a.objective[-1] * (1 + 1e-5)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("rank, match", [(0, "positive integer"), (2.5, "positive integer"), (True, "positive"),
                                         (10_000, "larger than the smallest dimension")])
def test_bad_rank(noisy, rank, match):
    with pytest.raises(InputError, match=match):
        factorize_tensor(noisy, rank)


def test_bad_input_is_refused_before_work(noisy):
    with pytest.raises(InputError, match=r"'input:0' has per-sample shape \(7, 7\), not \(channels, height, width\)"):
        factorize_tensor(noisy, 2, tensor_blocks=["input:0", "conv1"])
    with pytest.raises(InputError, match="unknown blocks"):
        factorize_tensor(noisy, 2, tensor_blocks=["conv9"])
    bad = noisy["conv1"].data.copy()
    bad[3, 7] = np.nan
    acts = pl.Activations.from_arrays({"input:0": noisy["input:0"].data, "conv1": bad}, shapes=SHAPES)
    with pytest.raises(InputError, match="'conv1' contains NaN"):
        factorize_tensor(acts, 2)
    neg = noisy["conv2"].data - 1.0
    acts = pl.Activations.from_arrays({"conv2": neg}, shapes=SHAPES)
    with pytest.raises(NonNegativityError, match="'conv2' has negative values"):
        factorize_tensor(acts, 2)
    signed = pl.Activations.from_arrays({"conv2": neg}, shapes=SHAPES)
    signed["conv2"].signed = True  # semi-NMF blocks (signed loadings) are the matrix model's only
    with pytest.raises(InputError, match=r"\['conv2'\] are marked signed"):
        factorize_tensor(signed, 2)
    with pytest.raises(InputError, match="unknown init"):
        factorize_tensor(noisy, 2, init="svd")
    with pytest.raises(InputError, match=r"missing \[\"spatial\['conv1'\]\""):
        factorize_tensor(noisy, 2, init={"F": np.ones((300, 2)), "input:0": np.ones((49, 2)),
                                          "conv1": np.ones((6, 2)), "conv2": np.ones((8, 2)),
                                          "spatial": {"conv2": np.ones((9, 2))}})
    with pytest.raises(InputError, match=r"init\['conv1'\] has shape \(150, 2\), expected \(6, 2\)"):
        factorize_tensor(noisy, 2, init={"F": np.ones((300, 2)), "input:0": np.ones((49, 2)),
                                          "conv1": np.ones((150, 2)), "conv2": np.ones((8, 2)),
                                          "spatial": {"conv1": np.ones((25, 2)), "conv2": np.ones((9, 2))}})
    with pytest.raises(InputError, match="max_iter"):
        factorize_tensor(noisy, 2, max_iter=0)
    with pytest.raises(InputError, match="tol"):
        factorize_tensor(noisy, 2, tol=float("nan"))
    with pytest.raises(InputError, match="weight of block 'conv1'"):
        factorize_tensor(noisy, 2, weights={"conv1": -1.0})
    with pytest.raises(InputError, match="duplicates"):
        sweep_tensor(noisy, [2, 2], progress=False)
    with pytest.raises(InputError, match="larger than"):
        sweep_tensor(noisy, [2, 10_000], progress=False)
    with pytest.raises(InputError, match="expects peeklens.Activations"):
        factorize_tensor(np.ones((4, 4)), 2)
    with pytest.raises(InputError, match="no spatial factor"):
        tensor_spatial_maps(factorize_tensor(noisy, 2, max_iter=2), "input:0")


# ----------------------------------------------------------------------------- real data
@pytest.mark.slow
def test_objective_never_increases_on_a_real_mnist_capture(mnist_test):
    from peeklens import studies

    torch.manual_seed(0)
    net = studies.PaperNet().eval()  # untrained: real activations with the paper's shapes
    x, _ = mnist_test
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:2000]), batch_size=500)
    acts = pl.capture(net, loader, layers=["relu", "relu_1"], progress=False)
    fit = factorize_tensor(acts, 10, max_iter=40, tol=0)
    assert fit.settings["tensor_blocks"] == ["relu", "relu_1"]
    assert fit.loadings["relu"].shape == (10, 10) and fit.spatial["relu"].shape == (144, 10)
    assert tensor_spatial_maps(fit, "relu_1").shape == (10, 4, 4)
    obj = fit.objective
    assert np.all(np.diff(obj) <= 1e-5 * obj[:-1])
    assert obj[-1] < 0.9 * obj[0]
    sq = exact_sq(acts, fit)
    assert obj[-1] == pytest.approx(sum(sq.values()), rel=1e-4)
    matrix = pl.factorize(acts, 10, solver="hals")
    # comparable numbers: the same blocks, errors of the same definition, the matrix model fits at least as well
    assert set(matrix.errors) == set(fit.errors)
    assert matrix.rmse <= fit.rmse * 1.01


# ----------------------------------------------------------------------------- CUDA
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_the_cpu(noisy):
    kw = dict(max_iter=40, tol=0, init="random", seed=1, weights={"conv1": 2.0})
    cpu = factorize_tensor(noisy, 4, **kw)
    gpu = factorize_tensor(noisy, 4, device="cuda", **kw)
    assert gpu.settings["device"].startswith("cuda") and gpu.F.dtype == np.float32
    assert gpu.objective[-1] == pytest.approx(cpu.objective[-1], rel=1e-3)
    s = sweep_tensor(noisy, [2, 4], device="cuda", max_iter=30, progress=False)
    assert s[4].settings["init"] == "warm start from rank 2"


def test_pl_factorize_and_sweep_dispatch_to_the_tensor_lens():
    """pl.factorize(model="tensor") is factorize_tensor; the matrix model's solver settings are refused."""
    import peeklens as pl
    from peeklens.nmf.tensor import factorize_tensor

    rng = np.random.default_rng(5)
    F = rng.random((40, 3))
    acts = pl.Activations.from_arrays(
        {"input:0": rng.random((16, 3)) @ F.T, "conv": np.einsum("cr,pr,tr->cpt", rng.random((4, 3)),
                                                                 rng.random((9, 3)), F).reshape(36, 40)},
        shapes={"input:0": (4, 4), "conv": (4, 3, 3)},
    )
    via_pl = pl.factorize(acts, 3, model="tensor", max_iter=30, seed=1)
    direct = factorize_tensor(acts, 3, max_iter=30, seed=1)
    assert via_pl.settings["model"] == "tensor" and via_pl.loadings["conv"].shape == (4, 3)
    np.testing.assert_array_equal(via_pl.F, direct.F)
    np.testing.assert_array_equal(via_pl.spatial["conv"], direct.spatial["conv"])
    sw = pl.sweep(acts, [2, 3], model="tensor", max_iter=30, progress=False)
    assert sw.ranks == [2, 3] and all(f.settings["model"] == "tensor" for f in sw.values())
    with pytest.raises(pl.InputError, match="model='tensor' has one solver"):
        pl.factorize(acts, 3, model="tensor", solver="mu")
    with pytest.raises(pl.InputError, match="model='tensor' has one solver"):
        pl.sweep(acts, [2], model="tensor", solver_options={"refine": 2}, progress=False)
    with pytest.raises(pl.InputError, match="unknown model 'tensr'"):
        pl.factorize(acts, 3, model="tensr")
