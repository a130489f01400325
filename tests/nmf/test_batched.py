"""Several ranks at once (``pl.sweep(batched=True)``): each rank as exact HALS gives it alone."""

import warnings

import numpy as np
import pytest
import torch

import peeklens as pl
from peeklens.errors import InputError
from peeklens.nmf import _linalg, batched
from peeklens.nmf._linalg import hals_rows
from peeklens.nmf._problem import converged


def blocks(seed=5, n=300, r=6):
    """Three blocks, rank-6 structure plus noise: the ranks below converge after different iterations."""
    rng = np.random.default_rng(seed)
    F = rng.random((n, r)) ** 2
    return pl.Activations.from_arrays(
        {
            "input:0": rng.random((70, r)) @ F.T + 0.05 * rng.random((70, n)),
            "relu": np.maximum(rng.random((50, r)) @ F.T - 0.3, 0) + 0.05 * rng.random((50, n)),
            "relu_1": rng.random((20, r)) @ F.T + 0.05 * rng.random((20, n)),
        }
    )


RANKS = [2, 5, 12, 18]  # 18 rows x 300 samples fit the cache: one block (tests below also split)


def one_at_a_time(acts, ranks, **kw):
    return pl.sweep(acts, ranks, solver="hals", warm_start=False, progress=False, **kw)


def norm2(acts):
    return sum(float(np.sum(acts[n].data.astype(np.float64) ** 2)) for n in acts.names)


def assert_same_fits(acts, alone, together, ranks, rtol=1e-4):
    """Float tolerance: the Gram formula of the objective rounds at ~1e-7 of ||X||^2 (these fits
    end near 1e-4 of it), so objectives are compared to 1e-6 of ||X||^2."""
    for r in ranks:
        a, b = alone[r], together[r]
        # the same iterations; where tol stops them, float rounding (batched products) may move the
        # iteration where the relative change first falls below tol by a few
        if a.settings["tol"] == 0:
            assert b.n_iter == a.n_iter, r
        else:
            assert abs(b.n_iter - a.n_iter) <= max(2, 0.05 * a.n_iter), (r, a.n_iter, b.n_iter)
        assert b.converged == a.converged
        n = min(a.n_iter, b.n_iter)
        atol = 1e-6 * norm2(acts)
        np.testing.assert_allclose(b.objective[:n], a.objective[:n], rtol=rtol, atol=atol)
        assert b.objective[-1] == pytest.approx(a.objective[-1], rel=rtol, abs=atol)
        # factors: after a hundred iterations rounding drifts along the objective's flat directions
        close = 1e-3 if a.n_iter <= 10 else 1e-2
        np.testing.assert_allclose(b.F, a.F, atol=close * np.abs(a.F).max())
        for name in a.loadings:
            np.testing.assert_allclose(b.loadings[name], a.loadings[name], atol=close * np.abs(a.loadings[name]).max())
        assert b.errors == pytest.approx(a.errors, rel=1e-3)


def test_every_rank_is_what_hals_gives_it_alone():
    acts = blocks()
    alone = one_at_a_time(acts, RANKS, tol=0, max_iter=40)
    together = pl.sweep(acts, RANKS, batched=True, tol=0, max_iter=40, progress=False)
    assert together.ranks == RANKS
    assert_same_fits(acts, alone, together, RANKS)
    s = together[5].settings
    assert s["solver"] == "hals" and s["init"] == "nndsvda"
    assert s["batched"]["ranks"] == RANKS and s["batched"]["seconds"] >= together[5].seconds > 0
    assert together.meta["settings"]["batched"] is True and together.meta["settings"]["warm_start"] is False


def first_converged(objective, tol):
    """The iteration (1-based) at which hals' stopping rule first holds."""
    return next(i for i in range(2, len(objective) + 1) if converged(list(objective[:i]), tol))


def test_a_rank_leaves_the_batch_when_it_converges():
    acts = blocks()
    tol = 1e-4
    together = pl.sweep(acts, RANKS, batched=True, tol=tol, max_iter=500, progress=False)
    alone = one_at_a_time(acts, RANKS, tol=tol, max_iter=500)
    n_iter = [together[r].n_iter for r in RANKS]
    assert len(set(n_iter)) > 1  # they left at different iterations
    for r in RANKS:
        fit = together[r]
        assert fit.converged and fit.n_iter == first_converged(fit.objective, tol) < 500
        # the same minimum as alone (where tol stops a slow rank depends on rounding: compare the objective)
        assert fit.objective[-1] == pytest.approx(alone[r].objective[-1], rel=1e-3, abs=1e-5 * norm2(acts))
    # a rank that left first took less of the batch's time
    early, late = RANKS[int(np.argmin(n_iter))], RANKS[int(np.argmax(n_iter))]
    assert together[early].seconds < together[late].seconds <= together[late].settings["batched"]["seconds"]


def test_one_pass_per_half_iteration_serves_every_rank():
    acts = blocks()
    together = pl.sweep(acts, RANKS, batched=True, tol=0, max_iter=7, progress=False)
    alone = one_at_a_time(acts, RANKS, tol=0, max_iter=7)
    assert together[2].settings["passes"]["solver"] == 2 * 7  # two reads per iteration for all four ranks
    assert sum(alone[r].settings["passes"]["solver"] for r in RANKS) == 4 * 2 * 7
    assert_same_fits(acts, alone, together, RANKS)


def test_weights_signed_blocks_and_random_starts():
    rng = np.random.default_rng(1)
    F = rng.random((200, 3))
    acts = pl.Activations.from_arrays(
        {
            "input:0": rng.random((25, 3)) @ F.T + 0.3 * rng.random((25, 200)),
            "tanh": rng.standard_normal((35, 3)) @ F.T + 0.3 * rng.standard_normal((35, 200)),
            "relu": np.maximum(rng.random((15, 3)) @ F.T - 0.2, 0),
        }
    )
    acts["tanh"].signed = True  # semi-NMF: least-squares loadings, never clamped
    kw = dict(weights={"input:0": 2.0, "relu": 0.0}, init="random", tol=1e-5, max_iter=200, seed=3)
    alone = one_at_a_time(acts, [2, 4], **kw)
    together = pl.sweep(acts, [2, 4], batched=True, progress=False, **kw)
    assert_same_fits(acts, alone, together, [2, 4])
    assert together[4].loadings["tanh"].min() < 0 <= together[4].loadings["relu"].min()


@pytest.mark.parametrize("one_block", [True, False])
@pytest.mark.parametrize("max_inner", [[1, 1, 1], [3, 1, 5]])
def test_batched_rows_equal_hals_rows_entry_by_entry(max_inner, one_block, monkeypatch):
    if not one_block:  # blocks of ROW_BLOCK rows, for the batch and for hals_rows alike
        monkeypatch.setattr(_linalg, "ONE_BLOCK_RANK", 0)
        monkeypatch.setattr(_linalg, "ONE_BLOCK_ELEMENTS", 0)
    gen = torch.Generator().manual_seed(0)
    ranks, N = [3, 9, 6], 500
    r_max = max(ranks)
    Ht = torch.zeros(3, r_max, N)
    At = torch.zeros(3, r_max, N)
    G = torch.zeros(3, r_max, r_max)
    alone = []
    for j, r in enumerate(ranks):
        V = torch.rand(40, r, generator=gen)
        if r == 9:
            V[:, 4] = 0  # a dead component: G[4, 4] == 0, its row must keep its value
        h = torch.rand(r, N, generator=gen)
        a = V.T @ torch.rand(40, N, generator=gen)
        Ht[j, :r], At[j, :r], G[j, :r, :r] = h, a, V.T @ V
        if r == 9:
            dead_start = h[4].clone()
        h = h.clone()
        alone.append((hals_rows(h, a, V.T @ V, max_inner=max_inner[j]), h))
    made = batched.hals_rows_batched(Ht, At, G, max_inner, ranks=ranks)
    for j, r in enumerate(ranks):
        assert made[j] == alone[j][0]
        torch.testing.assert_close(Ht[j, :r], alone[j][1], rtol=1e-5, atol=1e-5)
        assert torch.all(Ht[j, r:] == 0)  # the padding never moves
    assert torch.equal(Ht[1, 4], dead_start)  # the dead row kept its start (not zero)


def test_ctrl_c_keeps_the_ranks_that_converged(monkeypatch):
    acts = blocks()
    whole = pl.sweep(acts, RANKS, batched=True, tol=1e-4, max_iter=500, progress=False)
    stop_at = sorted(whole[r].n_iter for r in RANKS)[1] + 1  # after two ranks have left
    calls = {"n": 0}
    real = batched._products

    def interrupted(*a, **k):
        calls["n"] += 1
        if calls["n"] == stop_at:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(batched, "_products", interrupted)
    with pytest.warns(UserWarning, match="interrupted"):
        s = pl.sweep(acts, RANKS, batched=True, tol=1e-4, max_iter=500, progress=False)
    done = [r for r in RANKS if whole[r].n_iter < stop_at]
    assert s.interrupted and s.ranks == done and len(done) >= 2
    for r in done:  # the same batch up to the interruption: the same numbers
        np.testing.assert_array_equal(s[r].F, whole[r].F)
        np.testing.assert_array_equal(s[r].objective, whole[r].objective)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(solver="compressed"), "solver='hals'"),
        (dict(warm_start=True), "warm_start"),
        (dict(model="tensor"), "matrix model"),
        (dict(distributed=True), "distributed"),
    ],
)
def test_what_batched_refuses_says_what_to_do(kw, match):
    with pytest.raises(InputError, match=match):
        pl.sweep(blocks(), [2, 3], batched=True, progress=False, **kw)


def test_batched_sweep_saves_and_loads(tmp_path):
    s = pl.sweep(blocks(), [2, 3], batched=True, max_iter=20, progress=False)
    path = pl.save(s, tmp_path / "batched.peeklens")
    back = pl.load(path)
    assert back.ranks == [2, 3]
    assert back[3].settings["batched"]["ranks"] == [2, 3]
    np.testing.assert_array_equal(back[3].F, s[3].F)


def test_batched_progress_bar_runs(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning from the bar
        s = pl.sweep(blocks(), [2, 3], batched=True, max_iter=5, tol=0, progress=True)
    assert s[2].n_iter == 5
    assert "at once" in capsys.readouterr().err
