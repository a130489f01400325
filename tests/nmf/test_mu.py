"""The paper's multiplicative updates against two oracles: plain NumPy and scikit-learn."""

import functools

import numpy as np
import pytest

import peeklens as pl

factorize = functools.partial(pl.factorize, solver="mu")  # these tests are about the paper's solver


def numpy_paper_mu(X, F, W, n_iter, eps=1e-9):
    """The paper's updates on the stacked matrix X (features x samples), in float64 NumPy."""
    X, F, W = (np.asarray(a, dtype=np.float64).copy() for a in (X, F, W))
    for _ in range(n_iter):
        F *= (X.T @ W) / (F @ (W.T @ W) + eps)
        W *= (X @ F) / (W @ (F.T @ F) + eps)
    return F, W


def _explicit_init(acts, rank, seed=3):
    rng = np.random.default_rng(seed)
    init = {"F": rng.random((acts.n_samples, rank))}
    for n in acts.names:
        init[n] = rng.random((acts[n].n_features, rank))
    return init


def test_same_init_gives_the_numpy_oracles_factors(blocks_small):
    rank, n_iter = 4, 40
    init = _explicit_init(blocks_small, rank)
    fit = factorize(blocks_small, rank, solver="mu", init=init, max_iter=n_iter, tol=0)
    X = blocks_small.stacked()
    W0 = np.concatenate([init[n] for n in blocks_small.names])
    F_ref, W_ref = numpy_paper_mu(X, init["F"], W0, n_iter)
    np.testing.assert_allclose(fit.F, F_ref, rtol=2e-3, atol=1e-5)
    W = np.concatenate([fit.loadings[n] for n in blocks_small.names])
    np.testing.assert_allclose(W, W_ref, rtol=2e-3, atol=1e-5)
    assert fit.n_iter == n_iter and not fit.converged
    obj_ref = np.sum((X - W_ref @ F_ref.T) ** 2)
    assert fit.objective[-1] == pytest.approx(obj_ref, rel=1e-3)


@pytest.mark.slow
def test_numpy_oracle_on_real_mnist_activations(paper_net, mnist_test):
    x, _ = mnist_test
    acts = pl.capture(paper_net, x[:400], layers=["relu", "relu_1"], progress=False)
    rank, n_iter = 10, 25
    init = _explicit_init(acts, rank)
    fit = factorize(acts, rank, init=init, max_iter=n_iter, tol=0)
    W0 = np.concatenate([init[n] for n in acts.names])
    F_ref, W_ref = numpy_paper_mu(acts.stacked(), init["F"], W0, n_iter)
    np.testing.assert_allclose(fit.F, F_ref, rtol=5e-3, atol=1e-4)
    rows = np.cumsum([0] + [acts[n].n_features for n in acts.names])
    for i, n in enumerate(acts.names):
        np.testing.assert_allclose(fit.loadings[n], W_ref[rows[i] : rows[i + 1]], rtol=5e-3, atol=1e-4)


def _sklearn_mu_objective(X_samples_by_features, rank, n_iter, W=None, H=None, seed=0):
    from sklearn.decomposition import NMF

    kw = dict(n_components=rank, solver="mu", max_iter=n_iter, tol=0, beta_loss="frobenius")
    if W is not None:
        model = NMF(init="custom", **kw)
        Ws = model.fit_transform(X_samples_by_features, W=W, H=H)
    else:
        model = NMF(init="random", random_state=seed, **kw)
        Ws = model.fit_transform(X_samples_by_features)
    R = X_samples_by_features - Ws @ model.components_
    return float(np.sum(R.astype(np.float64) ** 2))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_objective_within_1pct_of_sklearn_mu_from_the_same_start(blocks_small):
    rank, n_iter = 4, 60
    init = _explicit_init(blocks_small, rank)
    fit = factorize(blocks_small, rank, init=init, max_iter=n_iter, tol=0)
    # sklearn factorizes (samples x features) ~ W H: its W is our F, its H is our stacked loadings^T
    X = blocks_small.stacked().T.astype(np.float64)
    W0 = np.concatenate([init[n] for n in blocks_small.names])
    ref = _sklearn_mu_objective(X, rank, n_iter, W=init["F"].astype(np.float64), H=W0.T.astype(np.float64).copy())
    assert fit.objective[-1] == pytest.approx(ref, rel=0.01)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_objective_within_1pct_of_sklearn_mu_each_with_its_own_init(paper_net, mnist_test):
    x, _ = mnist_test
    acts = pl.capture(paper_net, x[:500], layers=["relu", "relu_1"], progress=False)
    rank, n_iter = 10, 200
    fit = factorize(acts, rank, max_iter=n_iter, tol=0)
    ref = _sklearn_mu_objective(acts.stacked().T.astype(np.float64), rank, n_iter)
    assert fit.objective[-1] == pytest.approx(ref, rel=0.01)


def test_objective_decreases_monotonically(blocks_small):
    fit = factorize(blocks_small, 3, max_iter=80, tol=0)
    obj = fit.objective
    assert len(obj) == 80
    assert np.all(np.diff(obj) <= 1e-6 * obj[:-1])  # MU never increases the objective (up to float32 noise)


def test_recorded_objective_equals_the_exact_residual(blocks_small):
    fit = factorize(blocks_small, 3, max_iter=30, tol=0)
    exact = sum(np.sum((blocks_small[n].data - fit.reconstruct(n)) ** 2) for n in blocks_small.names)
    assert fit.objective[-1] == pytest.approx(exact, rel=1e-3)


def test_paper_init_is_uniform_in_unit_interval_from_the_seed(blocks_small):
    a = factorize(blocks_small, 3, max_iter=1, seed=7)
    b = factorize(blocks_small, 3, max_iter=1, seed=7)
    c = factorize(blocks_small, 3, max_iter=1, seed=8)
    np.testing.assert_array_equal(a.F, b.F)
    assert not np.array_equal(a.F, c.F)
    rng = np.random.default_rng(7)
    F0 = rng.random((blocks_small.n_samples, 3), dtype=np.float32)
    W0 = {n: rng.random((blocks_small[n].n_features, 3), dtype=np.float32) for n in blocks_small.names}
    d = factorize(blocks_small, 3, max_iter=1, init={"F": F0, **W0})
    np.testing.assert_array_equal(a.F, d.F)
