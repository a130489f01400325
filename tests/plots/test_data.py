"""The arrays behind every figure and view: figure_data, the widgets' and the explorer's .data()/.to_frame()."""

from __future__ import annotations

import numpy as np
import pytest

import peeklens as pl
from peeklens import views
from peeklens.plots import SampleExplorer, figure_data
from peeklens.widgets import Compare, LatentGallery, NeuronHeatmaps, RankExplorer, SpectrumPlot

N = 40


@pytest.fixture(scope="module")
def acts():
    rng = np.random.default_rng(3)
    F = rng.random((N, 3))
    return pl.Activations.from_arrays(
        {"input:0": rng.random((16, 3)) @ F.T, "conv": rng.random((18, 3)) @ F.T, "fc": rng.random((5, 3)) @ F.T},
        shapes={"input:0": (4, 4), "conv": (2, 3, 3)},
        labels=rng.integers(0, 3, N),
    )


@pytest.fixture(scope="module")
def sweep(acts):
    return pl.sweep(acts, ranks=[2, 3], max_iter=10, progress=False)


def test_figure_data_reads_the_series_of_every_figure(sweep, acts):
    df = figure_data(sweep.plot(name="net"))
    assert df["series"].unique().tolist() == ["net"]
    np.testing.assert_allclose(df["x"], [2, 3])
    np.testing.assert_allclose(df["y"], [sweep[2].rmse, sweep[3].rmse])
    errs = figure_data(sweep.plot(kind="errors"))
    for b in sweep[2].errors:
        np.testing.assert_allclose(errs.loc[errs["series"] == b, "y"], [sweep[2].errors[b], sweep[3].errors[b]])
    sp = pl.spectrum(acts, k=4)
    sdf = figure_data(sp.plot())
    for b, v in sp.values.items():
        got = sdf.loc[sdf["series"].str.endswith(b), "y"].to_numpy()
        np.testing.assert_allclose(got, np.asarray(v)[: got.size])
        assert got.size > 0
    both = figure_data(pl.plots.compare({"a": sweep, "b": sweep}))
    assert sorted(both["series"].unique()) == ["a", "b"] and len(both) == 4
    with pytest.raises(pl.InputError, match="bqplot Figure"):
        figure_data(sweep)


def test_rank_explorer_and_compare_tables(sweep):
    d = RankExplorer(sweep).data()
    assert d["ranks"].tolist() == [2, 3] and d["blocks"] == list(sweep[2].errors)
    np.testing.assert_allclose(d["errors"][d["blocks"].index("fc")], [sweep[2].errors["fc"], sweep[3].errors["fc"]])
    df = RankExplorer(sweep).to_frame()
    assert df.index.tolist() == [2, 3] and df.loc[3, "rmse"] == pytest.approx(sweep[3].rmse)
    cmp = Compare({"a": sweep, "b": sweep}, rank=3)
    t = cmp.to_frame()
    assert t["network"].tolist() == ["a", "a", "b", "b"] and t["conv"].iloc[3] == pytest.approx(sweep[3].errors["conv"])
    np.testing.assert_allclose(cmp.data()["b"]["latent_images"], views.latent_images(sweep[3]))


def test_gallery_data_is_what_the_views_derive(sweep):
    gal = LatentGallery(sweep, top_k=4, hist_k=10, rank=3)
    d = gal.data()
    fit = sweep[3]
    np.testing.assert_array_equal(d["top_inputs"], views.top_inputs(fit, 4))
    np.testing.assert_allclose(d["latent_images"], views.latent_images(fit))
    np.testing.assert_allclose(d["thumbnails"], views.thumbnails(fit, 4))
    assert d["class_histograms"].shape == (3, 3) and d["class_histograms"].sum(axis=1).tolist() == [10, 10, 10]
    assert d["strength"].sum() == pytest.approx(1.0)
    assert gal.data(rank=2)["top_inputs"].shape == (2, 4)
    with pytest.raises(pl.InputError, match="rank 5 is not in this sweep"):
        gal.data(rank=5)


def test_heatmap_data_follows_the_selected_factor(sweep):
    hm = NeuronHeatmaps(sweep, rank=3)
    hm.factor = 2
    d = hm.data()
    assert set(d) == {"conv", "fc"}
    np.testing.assert_allclose(d["conv"]["matrix"], views.neuron_factor_matrix(sweep[3], "conv"))
    np.testing.assert_allclose(d["conv"]["spatial_maps"], sweep[3].loadings["conv"][:, 2].reshape(2, 3, 3))
    assert 0.0 <= d["fc"]["unused_share"] <= 1.0
    assert hm.data(rank=2)["conv"]["matrix"].shape == (18, 2)


def test_spectrum_table_honours_layers_and_k(acts):
    sp = pl.spectrum(acts, k=4)
    df = SpectrumPlot({"net": sp}, layers=["conv"], k=2).to_frame()
    assert df["block"].unique().tolist() == ["conv"] and df["index"].tolist() == [0, 1]
    np.testing.assert_allclose(df["value"], np.asarray(sp.values["conv"])[:2])


def test_explorer_data_and_table(sweep):
    ex = SampleExplorer(sweep, 1, 0)
    ex.selected = [0, 5]
    ex.show_factor(1)
    d, df = ex.data(), ex.to_frame()
    np.testing.assert_allclose(d["coordinates"], sweep[2].F[:, [1, 0]])
    assert d["axis_labels"] == ["factor 1", "factor 0"] and d["rank"] == 2
    np.testing.assert_array_equal(df["class"], sweep[2].labels)
    assert np.flatnonzero(df["selected"]).tolist() == [0, 5]
    assert sorted(np.flatnonzero(df["highlighted"]).tolist()) == sorted(views.top_inputs(sweep[2], 8)[1].tolist())
