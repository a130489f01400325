"""The fast solvers (HALS, compressed HALS), the NNDSVDa init and warm-started sweeps."""

import math

import numpy as np
import pytest

import peeklens as pl
from peeklens import nmf as fz

FAST = ["hals", "compressed"]
ALL = ["mu", *FAST]


@pytest.fixture(scope="module")
def medium():
    """Three blocks, 400 samples: rank-6 structure plus noise; big enough for the sketch to compress."""
    rng = np.random.default_rng(5)
    F = rng.random((400, 6)) ** 2
    arrays = {
        "input:0": rng.random((120, 6)) @ F.T + 0.05 * rng.random((120, 400)),
        "relu": np.maximum(rng.random((90, 6)) @ F.T - 0.3, 0) + 0.05 * rng.random((90, 400)),
        "relu_1": rng.random((40, 6)) @ F.T + 0.05 * rng.random((40, 400)),
    }
    return pl.Activations.from_arrays(arrays)


def exact_objective(acts, fit, weights=None):
    w = weights or {}
    return sum(
        w.get(n, 1.0) * np.sum((acts[n].data.astype(np.float64) - fit.reconstruct(n).astype(np.float64)) ** 2)
        for n in acts.names
    )


@pytest.fixture(scope="module")
def mu_converged(medium):
    fit = pl.factorize(medium, 6, solver="mu", max_iter=3000, tol=1e-7)
    return exact_objective(medium, fit)


def test_default_solver_and_inits():
    assert fz.DEFAULT_SOLVER in fz.SOLVERS and fz.DEFAULT_SOLVER != "mu"
    assert {"mu", "hals", "compressed"} <= set(fz.SOLVERS)
    assert {"random", "nndsvda"} <= set(fz.INITS)
    assert fz.DEFAULT_INIT["mu"] == "random"


@pytest.mark.parametrize("init", ["random", "nndsvda"])
def test_hals_objective_never_increases(medium, init):
    fit = pl.factorize(medium, 6, solver="hals", init=init, max_iter=60, tol=0)
    obj = fit.objective
    assert len(obj) == 60 and fit.n_iter == 60
    assert np.all(np.diff(obj) <= 1e-5 * obj[:-1])  # exact coordinate minimization: monotone (float32 noise)
    assert obj[-1] < obj[0]


def test_compressed_phases_and_exact_final_objective(medium):
    fit = pl.factorize(medium, 6, solver="compressed", max_iter=80, tol=0)
    s = fit.settings
    # tol=0: the start phase runs start_iter iterations, then every refinement round runs, unless
    # a round raised the real objective: then the fit went back to the best exact point and stopped
    assert s["sketch_k"] == 26 and s["exact_iter"] == 0
    went_back = s.get("went_back", False)
    assert s["refinements"] == 5 or went_back
    steps = s["exact_steps"]
    assert len(steps) == s["refinements"] + went_back and steps[-1] == fit.n_iter and steps == sorted(steps)
    assert fit.n_iter == len(fit.objective) == s["compressed_iter"] + len(steps)
    assert s["compressed_iter"] == 20 + (s["refinements"] - 1) * 20  # start_iter + (rounds - 1) * round_iter
    # the last entry, and the reported errors, are those of the real data
    assert fit.objective[-1] == pytest.approx(exact_objective(medium, fit), rel=1e-5)
    # the compressed start phase decreases its estimate
    start = fit.objective[:20]
    assert np.all(np.diff(start) <= 1e-6 * start[:-1]) and start[-1] < start[0]
    # the rounds end lower than where the sketch alone left the fit
    exact = fit.objective[np.asarray(steps) - 1]
    assert exact[-1] <= exact[0]


def test_a_round_that_raises_the_real_objective_is_undone(medium, monkeypatch):
    """The compressed iterations only see an estimate: when a round ends above the best exact
    point, the fit goes back to that point, so what is returned is the lowest exact objective."""
    from peeklens.nmf import compressed

    real_phase = compressed._phase
    calls = []

    def phase_that_spoils_the_third_round(problem, basis, Ft, Vt, **kw):
        out = real_phase(problem, basis, Ft, Vt, **kw)
        calls.append(len(basis))
        if len(calls) == 3:  # the start and round 1 are fine; round 2 overshoots
            Ft.mul_(1.5)
        return out

    monkeypatch.setattr(compressed, "_phase", phase_that_spoils_the_third_round)
    fit = pl.factorize(medium, 6, solver="compressed", max_iter=80, tol=0, solver_options={"also_random": False})
    s = fit.settings
    exact = [fit.objective[i - 1] for i in s["exact_steps"]]
    assert s["went_back"] and s["refinements"] == 3
    assert exact[-1] == min(exact) < exact[-2]  # the spoiled round is recorded, then undone
    assert fit.objective[-1] == pytest.approx(exact_objective(medium, fit), rel=1e-5)
    sq = {n: np.sum((medium[n].data.astype(np.float64) - fit.reconstruct(n)) ** 2) for n in medium.names}
    for n in medium.names:
        assert fit.errors[n] == pytest.approx(math.sqrt(sq[n]) / np.linalg.norm(medium[n].data), rel=1e-4)


@pytest.mark.parametrize("refine", [0, 1])
def test_fewest_refinement_rounds_still_end_on_an_exact_step(medium, refine):
    fit = pl.factorize(medium, 6, solver="compressed", max_iter=30, tol=0, solver_options={"refine": refine})
    assert fit.settings["refinements"] == 1 and fit.settings["exact_steps"] == [fit.n_iter]
    assert fit.objective[-1] == pytest.approx(exact_objective(medium, fit), rel=1e-5)
    sq = {n: np.sum((medium[n].data.astype(np.float64) - fit.reconstruct(n)) ** 2) for n in medium.names}
    for n in medium.names:
        assert fit.errors[n] == pytest.approx(math.sqrt(sq[n]) / np.linalg.norm(medium[n].data), rel=1e-4)


def test_refinement_rounds_reach_below_the_sketchs_minimum():
    """On data whose best factors are not in the sketch's range, the rounds fix what the sketch misses."""
    rng = np.random.default_rng(11)
    F = rng.random((600, 8)) ** 3
    acts = pl.Activations.from_arrays(
        {
            "input:0": np.maximum(rng.random((150, 8)) @ F.T - 0.2, 0) + 0.2 * rng.random((150, 600)) ** 4,
            "relu": np.maximum(rng.random((120, 8)) @ F.T - 0.4, 0) + 0.2 * rng.random((120, 600)) ** 4,
        }
    )
    opts = dict(oversample=4, power_iter=1, start_iter=300, round_iter=100)
    sketch_only = pl.factorize(acts, 8, solver="compressed", tol=1e-7, solver_options={**opts, "refine": 1})
    refined = pl.factorize(acts, 8, solver="compressed", tol=1e-7, solver_options={**opts, "refine": 6})
    hals = pl.factorize(acts, 8, solver="hals", tol=1e-8, max_iter=3000)
    assert sketch_only.settings["refinements"] == 1 and refined.settings["refinements"] >= 2
    gap_before = exact_objective(acts, sketch_only) / exact_objective(acts, hals) - 1
    gap_after = exact_objective(acts, refined) / exact_objective(acts, hals) - 1
    assert gap_after < gap_before / 3
    assert gap_after < 1e-5


def test_compressed_falls_back_to_hals_when_the_sketch_would_not_be_small(blocks_small):
    fit = pl.factorize(blocks_small, 4, solver="compressed", max_iter=30, tol=0)  # 50 features: k=24 > 25
    assert fit.settings["sketch_k"] == 24
    fit = pl.factorize(blocks_small.select(["relu"]), 4, solver="compressed", max_iter=30, tol=0)
    assert fit.settings["sketch_k"] == 0 and fit.settings["compressed_iter"] == 0
    assert fit.n_iter == 30


@pytest.mark.parametrize("solver", FAST)
@pytest.mark.parametrize("init", ["random", "nndsvda"])
def test_reaches_the_converged_mu_objective(medium, mu_converged, solver, init):
    fit = pl.factorize(medium, 6, solver=solver, init=init, max_iter=500, tol=1e-6)
    assert exact_objective(medium, fit) <= mu_converged * 1.005


@pytest.mark.parametrize("solver", ALL)
def test_factors_non_negative_and_errors_consistent(medium, solver):
    fit = pl.factorize(medium, 5, solver=solver, max_iter=40)
    assert (fit.F >= 0).all() and all((W >= 0).all() for W in fit.loadings.values())
    assert fit.F.dtype == np.float32 and fit.F.shape == (400, 5)
    sq = {n: np.sum((medium[n].data.astype(np.float64) - fit.reconstruct(n)) ** 2) for n in medium.names}
    for n in medium.names:
        assert fit.errors[n] == pytest.approx(math.sqrt(sq[n]) / np.linalg.norm(medium[n].data), rel=1e-4)
    assert fit.rmse == pytest.approx(math.sqrt(sum(sq.values()) / (250 * 400)), rel=1e-4)
    assert fit.objective[-1] == pytest.approx(sum(sq.values()), rel=1e-3)
    assert fit.settings["solver"] == solver


@pytest.mark.parametrize("solver", ALL)
@pytest.mark.parametrize("init", ["random", "nndsvda"])
def test_same_seed_is_bit_identical_on_cpu(medium, solver, init):
    a = pl.factorize(medium, 4, solver=solver, init=init, max_iter=25, seed=3)
    b = pl.factorize(medium, 4, solver=solver, init=init, max_iter=25, seed=3)
    np.testing.assert_array_equal(a.F, b.F)
    for n in a.loadings:
        np.testing.assert_array_equal(a.loadings[n], b.loadings[n])
    np.testing.assert_array_equal(a.objective, b.objective)
    c = pl.factorize(medium, 4, solver=solver, init=init, max_iter=25, seed=4)
    if init == "random" or solver == "compressed":  # nndsvda + hals uses the seed only for its sketch
        assert not np.array_equal(a.F, c.F)


def _init(acts, rank, seed=2):
    rng = np.random.default_rng(seed)
    return {"F": rng.random((acts.n_samples, rank)), **{n: rng.random((acts[n].n_features, rank)) for n in acts.names}}


@pytest.mark.parametrize("solver", FAST)
def test_weights_equal_a_fit_of_the_scaled_stack(medium, solver):
    w = {"input:0": 4.0, "relu": 0.25, "relu_1": 1.0}
    init = _init(medium, 4)
    # compressed: two rounds, well before the rounds get close enough to the minimum that float32
    # differences between the two formulations decide whether one goes back a round
    opts = {"max_inner": 1} if solver == "hals" else {"exact_iter": 3, "refine": 2}
    fit = pl.factorize(medium, 4, solver=solver, weights=w, init=init, max_iter=15, tol=0, solver_options=opts)
    scaled = pl.Activations.from_arrays({"s": medium.stacked(weights=w)})
    init_s = {"F": init["F"], "s": np.concatenate([math.sqrt(w[n]) * init[n] for n in medium.names])}
    if solver == "hals":
        ref = pl.factorize(scaled, 4, solver=solver, init=init_s, max_iter=15, tol=0, solver_options=opts)
    else:  # the same sketch: of the stacked weighted matrix, from the same seed
        ref = pl.factorize(scaled, 4, solver=solver, init=init_s, max_iter=15, tol=0, solver_options=opts)
    np.testing.assert_allclose(fit.F, ref.F, rtol=1e-2, atol=1e-3 * ref.F.max())
    rows = np.cumsum([0] + [medium[n].n_features for n in medium.names])
    for i, n in enumerate(medium.names):
        np.testing.assert_allclose(
            fit.loadings[n] * math.sqrt(w[n]),
            ref.loadings["s"][rows[i] : rows[i + 1]],
            rtol=1e-2,
            atol=1e-3 * ref.F.max(),
        )
    assert fit.objective[-1] == pytest.approx(ref.objective[-1], rel=1e-3)
    assert fit.objective[-1] == pytest.approx(exact_objective(medium, fit, w), rel=1e-3)


@pytest.mark.parametrize("solver", FAST)
def test_a_heavy_weight_favours_its_block(medium, solver):
    plain = pl.factorize(medium, 2, solver=solver, max_iter=100)
    heavy = pl.factorize(medium, 2, solver=solver, max_iter=100, weights={"relu": 50.0})
    assert heavy.errors["relu"] < plain.errors["relu"]
    assert heavy.settings["weights"]["relu"] == 50.0


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_nndsvda_init_matches_scikit_learns(medium):
    from sklearn.decomposition._nmf import _initialize_nmf

    problem = fz.make_problem(medium, None, None)
    F, W = fz.INITS["nndsvda"](problem, 5, 0)
    assert F.shape == (400, 5) and [w.shape[0] for w in W] == [120, 90, 40]
    assert float(F.min()) > 0 and all(float(w.min()) > 0 for w in W)  # NNDSVDa fills zeros with the mean
    X = medium.stacked().T.astype(np.float64)
    Fs, Hs = _initialize_nmf(X, 5, init="nndsvda")
    ours = np.sum((X - F.numpy() @ np.concatenate([w.numpy() for w in W]).T) ** 2)
    ref = np.sum((X - Fs @ Hs) ** 2)
    assert ours == pytest.approx(ref, rel=0.02)
    rand = pl.factorize(medium, 5, solver="hals", init="random", max_iter=1).objective[0]
    nnd = pl.factorize(medium, 5, solver="hals", init="nndsvda", max_iter=1).objective[0]
    assert nnd < rand


def test_nndsvda_with_weights_fits_the_weighted_problem(medium):
    w = {"relu": 9.0}
    problem = fz.make_problem(medium, w, None)
    F, W = fz.INITS["nndsvda"](problem, 5, 0)
    X = medium.stacked(weights=w).T.astype(np.float64)
    V = np.concatenate([w_.numpy() * (3.0 if n == "relu" else 1.0) for n, w_ in zip(medium.names, W)])
    from sklearn.decomposition._nmf import _initialize_nmf

    Fs, Hs = _initialize_nmf(X, 5, init="nndsvda")
    assert np.sum((X - F.numpy() @ V.T) ** 2) == pytest.approx(np.sum((X - Fs @ Hs) ** 2), rel=0.02)


# --------------------------------------------------------------------- sweeps
@pytest.mark.parametrize("solver", FAST)
def test_warm_started_sweep(medium, solver):
    ranks = [2, 4, 6]
    warm = pl.sweep(medium, ranks, solver=solver, progress=False, max_iter=300, tol=1e-6)
    cold = pl.sweep(medium, ranks, solver=solver, warm_start=False, progress=False, max_iter=300, tol=1e-6)
    assert warm[2].settings["init"] == "nndsvda"
    assert warm[4].settings["init"] == "warm start from rank 2"
    assert warm[6].settings["init"] == "warm start from rank 4"
    assert cold[6].settings["init"] == "nndsvda" and warm.meta["settings"]["warm_start"] is True
    for r in ranks:
        f = warm[r]
        assert (f.F >= 0).all() and all((W >= 0).all() for W in f.loadings.values())
        assert f.objective[-1] == pytest.approx(exact_objective(medium, f), rel=1e-3)
        assert f.objective[-1] <= cold[r].objective[-1] * 1.01
    # the first rank-4 columns start where rank 2 ended
    assert warm.rmse[0] > warm.rmse[1] > warm.rmse[2]


def test_warm_start_keeps_previous_factors_as_the_first_columns(medium):
    from peeklens.nmf._fit import SweepState, fit_rank, make_config

    state = SweepState(medium, warm_start=True)
    a = fit_rank(state, 3, make_config(solver="hals", max_iter=40))
    b = fit_rank(state, 5, make_config(solver="hals", max_iter=1, tol=0, solver_options={"max_inner": 1}))
    assert b.settings["init"] == "warm start from rank 3"
    # one HALS iteration from [F_3, new]: the objective is already below rank 3's
    assert b.objective[0] < a.objective[-1]


def test_mu_sweep_stays_the_papers_algorithm(medium):
    s = pl.sweep(medium, [2, 3], solver="mu", max_iter=20, progress=False)
    direct = pl.factorize(medium, 3, solver="mu", max_iter=20)
    assert s[3].settings["init"] == "random"
    np.testing.assert_array_equal(s[3].F, direct.F)


def test_explicit_init_turns_warm_start_off(medium):
    init = _init(medium, 3)
    s = pl.sweep(medium, [3], solver="hals", init=init, max_iter=5, progress=False)
    assert s[3].settings["init"] == "explicit"


def test_unknown_solver_option_is_refused(medium):
    from peeklens.errors import InputError

    with pytest.raises(InputError, match="has no option.*oversample"):
        pl.factorize(medium, 2, solver="hals", solver_options={"oversample": 3})
    with pytest.raises(InputError, match="unknown init 'svd'"):
        pl.factorize(medium, 2, solver="hals", init="svd")


@pytest.mark.slow
def test_fast_solvers_on_real_mnist_activations(paper_net, mnist_test):
    x, _ = mnist_test
    acts = pl.capture(paper_net, x[:500], layers=["relu", "relu_1"], progress=False)
    ref = pl.factorize(acts, 10, solver="mu", max_iter=300, tol=0)
    for solver in FAST:
        fit = pl.factorize(acts, 10, solver=solver)
        assert fit.objective[-1] <= ref.objective[-1] * 1.005
        assert fit.objective[-1] == pytest.approx(exact_objective(acts, fit), rel=1e-3)


def test_compressed_default_keeps_the_better_of_two_starts(medium):
    both = pl.factorize(medium, 6, solver="compressed", max_iter=60, tol=0)
    assert both.settings["also_random"] is True and both.settings["start_kept"] in {"init", "random"}
    alone = {}
    for init in ["nndsvda", "random"]:
        alone[init] = pl.factorize(medium, 6, solver="compressed", init=init, max_iter=60, tol=0)
        assert "also_random" not in alone[init].settings
    best = min(alone.values(), key=lambda f: f.objective[-1])
    assert both.objective[-1] == pytest.approx(best.objective[-1], rel=1e-3)


def test_rounds_stop_when_further_ones_stop_paying():
    from peeklens.nmf.compressed import _not_paying

    assert not _not_paying([10.0], 1e-3)
    assert _not_paying([10.0, 9.9995], 1e-3)  # the last round gained 5e-5 < 1e-3
    assert not _not_paying([10.0, 9.0], 1e-3)
    # gains 10 %, then 1 %: all further rounds (ratio 0.1) would add about 0.1 %: still worth it at 1e-3
    assert not _not_paying([10.0, 9.0, 8.91], 1e-3)
    assert _not_paying([10.0, 9.0, 8.91], 2e-3)
    assert not _not_paying([10.0, 9.0, 8.91], 0.0)  # stop=0 never stops


def test_default_stopping_rule_saves_rounds_at_little_cost(medium):
    """stop=10*tol by default; stop=0 runs the rounds until tol: the rule ends earlier, within 0.1 %."""
    fit = pl.factorize(medium, 6)
    full = pl.factorize(medium, 6, solver_options={"stop": 0.0})
    assert fit.settings["refinements"] <= full.settings["refinements"]
    assert exact_objective(medium, fit) <= 1.001 * exact_objective(medium, full)
