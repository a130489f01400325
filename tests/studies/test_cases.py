import json

import numpy as np
import pytest

import peeklens as pl
from peeklens import views
from peeklens.studies import (
    Regime,
    RegimeResult,
    StudyResult,
    load_cifar10,
    run_regime,
    run_study,
    study_regimes,
)


def test_study_regimes_match_the_paper():
    regs, exp = study_regimes("subset")
    assert [r.classes for r, _ in regs] == [(0,), (0, 1, 2, 3, 4), (5, 6, 7, 8, 9), None]
    assert [a for _, a in regs] == [9, 50, 47, 93]
    assert (0, 1) in exp and (2, 3) in exp
    regs, exp = study_regimes("ordered", first_class=3)
    assert regs[0][0].ordered and regs[0][0].first_class == 3 and not regs[1][0].ordered
    assert exp == [(0, 1)]
    regs, _ = study_regimes("alexnet", dataset="cifar10", fractions=[0.5, 1.0])
    assert all(r.network == "alexnet" and r.dataset == "cifar10" for r, _ in regs)
    assert [r.fraction for r, _ in study_regimes("demo")[0]] == [0.25, 1.0]
    with pytest.raises(pl.InputError, match="unknown study"):
        study_regimes("nope")


def _fake_sweep(rmses: dict[int, float]) -> pl.Sweep:
    rng = np.random.default_rng(0)
    acts = pl.Activations.from_arrays({"input:0": rng.random((4, 12)), "relu": rng.random((3, 12))},
                                      shapes={"input:0": (2, 2)})
    fits = {}
    for r, v in rmses.items():
        f = pl.factorize(acts, rank=r, max_iter=2)
        f.rmse = v
        fits[r] = f
    return pl.Sweep(fits)


def test_ordering_detects_violations():
    spec = pl.spectrum(pl.Activations.from_arrays({"relu": np.ones((2, 3))}), k=1)
    a = RegimeResult(Regime(fraction=0.25), 0.8, 83, _fake_sweep({1: 0.1, 2: 0.05}), spec, 10)
    b = RegimeResult(Regime(), 0.9, 95, _fake_sweep({1: 0.2, 2: 0.04}), spec, 40)
    res = StudyResult("fraction", [a, b], [(0, 1)])
    o = res.ordering()
    assert o["per_rank"] == {1: True, 2: False} and not o["holds"]
    assert o["violations"] == [(2, "25% of the data", "100% of the data")]
    md = res.markdown()
    assert "| 25% of the data | 80.0 % | 83 % |" in md and "rank 2: 25% of the data not below" in md
    res.results[1].sweep[2].rmse = 0.06
    assert res.ordering()["holds"]


def test_demo_study_small(small_demo):
    res, out = small_demo
    assert [r.label for r in res.results] == ["25% of the data", "100% of the data"]
    assert [r.n_train for r in res.results] == [500, 2000]
    assert res.ranks == [2, 4]
    for r in res.results:
        assert 0.1 < r.accuracy <= 1.0  # measured on all 10,000 test images
        assert r.sweep.ranks == [2, 4] and r.sweep[2].n_samples == 300
        assert r.sweep.block_names == ["input:0", "relu", "relu_1"]
        assert set(r.spectrum.values) == {"relu", "relu_1"}
        assert r.sweep[4].rmse < r.sweep[2].rmse
    # more training images -> better accuracy, even at this size
    assert res.results[1].accuracy > res.results[0].accuracy
    summary = json.loads((out / "demo.json").read_text())
    assert summary["ranks"] == [2, 4] and len(summary["regimes"]) == 2
    assert summary["regimes"][0]["paper_accuracy"] == 83
    assert isinstance(summary["ordering_holds"], bool)
    for label, path in res.files.items():
        if label not in ("summary", "report", "table"):
            back = pl.load(path)
            assert isinstance(back, pl.Sweep) and back.ranks == [2, 4]
            np.testing.assert_allclose(back.rmse, next(r for r in res.results if r.label == label).sweep.rmse)
    html = (out / "demo.html").read_text()
    # the offline report: the summary table and verdict as HTML, both sweeps and spectra embedded for the views
    assert "25% of the data" in html and "<th>RMSE r=4</th>" in html and "pl-verdict" in html
    assert html.count('data-kind="sweep"') == 2 and html.count('data-kind="spectrum"') == 2


def test_second_run_uses_cached_models(small_demo, study_cache):
    res = run_study("demo", samples=100, ranks=[3], train_samples=2000, cache=study_cache, progress=False,
                    max_iter=5)
    assert all(r.seconds["cached_model"] for r in res.results)
    assert [r.accuracy for r in res.results] == [r.accuracy for r in small_demo[0].results]


def test_run_study_rejects_impossible_sizes(study_cache):
    with pytest.raises(pl.InputError, match="cannot support rank"):
        run_study("demo", samples=5, ranks=[10], cache=study_cache, progress=False)
    with pytest.raises(pl.InputError, match="ranks must be positive"):
        run_study("demo", ranks=[0], cache=study_cache, progress=False)


@pytest.mark.slow
def test_alexnet_on_cifar_regime(study_cache):
    test = load_cifar10(False)
    res = run_regime(Regime(network="alexnet", dataset="cifar10", train_samples=600), test, ranks=[3],
                     samples=120, cache=study_cache, progress=False, max_iter=20)
    fit = res.sweep[3]
    assert fit.input_names == ["input:0", "input:1", "input:2"]
    assert len(fit.layer_names) == 5
    assert views.latent_images(fit).shape == (3, 32, 32, 3)  # RGB latent images
    assert 0.0 <= res.accuracy <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fraction", "subset"])
def test_paper_rmse_ordering_holds_on_a_small_real_run(name, study_cache):
    """The paper's claim itself (case studies I and II): less or narrower training -> lower RMSE at every rank.

    A small real run: the first 12,000 MNIST training images (fractions 25-100 % of them, or the class
    subsets), one epoch, 500 test images captured, ranks 10 and 20.  The margins at this size are wide
    (RMSE about 0.23 / 0.26 / 0.32 / 0.42 at rank 10 for 25 / 50 / 75 / 100 %).
    """
    res = run_study(name, samples=500, ranks=[10, 20], train_samples=12000, eval_samples=2000,
                    cache=study_cache, progress=False, report=False)
    o = res.ordering()
    assert o["holds"], o["violations"]
    assert o["per_rank"] == {10: True, 20: True}
    assert res.summary()["ordering_holds"] is True
    acc = [r.accuracy for r in res.results]
    if name == "fraction":  # the networks really differ: more data, better accuracy
        assert acc == sorted(acc) and acc[-1] > acc[0] + 0.2
    else:  # one class: chance level; all ten classes: far better than either half
        assert acc[0] < 0.15 and acc[3] > max(acc[1], acc[2]) + 0.15
