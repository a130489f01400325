"""The sample explorer: selections reach Python, the rank swaps F, highlights, gallery link."""

from __future__ import annotations

import bqplot as bq
import numpy as np
import pytest

import peeklens as pl
from peeklens.plots import PALETTE, SampleExplorer, link_gallery
from peeklens.plots.explorer import project
from peeklens.views import top_inputs
from peeklens.widgets import Dashboard, LatentGallery

N = 120


@pytest.fixture(scope="module")
def labels():
    return np.random.default_rng(5).integers(0, 4, N)


@pytest.fixture(scope="module")
def sweep(labels):
    rng = np.random.default_rng(4)
    F = rng.random((N, 5))
    acts = pl.Activations.from_arrays(
        {"input:0": rng.random((16, 5)) @ F.T, "relu": rng.random((10, 5)) @ F.T},
        shapes={"input:0": (4, 4)}, labels=labels)
    return pl.sweep(acts, ranks=[2, 3, 5], max_iter=15, progress=False)


def _union(ex):
    """The selection the marks display, as sample indices."""
    out = []
    for g, m in zip(ex.groups, ex.marks):
        if m.selected is not None:
            out += g[np.asarray(m.selected, dtype=int)].tolist()
    return sorted(out)


def test_points_are_the_rows_of_F_one_scatter_per_class(sweep, labels):
    ex = SampleExplorer(sweep, 1, 0, class_names=["zero", "one", "two", "three"])
    F = sweep[2].F
    assert [m.labels[0] for m in ex.marks] == ["zero", "one", "two", "three"]
    assert [m.colors[0] for m in ex.marks] == list(PALETTE[:4])
    assert all(m.display_legend for m in ex.marks)
    for c, m in enumerate(ex.marks):
        np.testing.assert_allclose(m.x, F[labels == c, 1])
        np.testing.assert_allclose(m.y, F[labels == c, 0])
    assert [ex.x_axis.label, ex.y_axis.label] == ["factor 1", "factor 0"]
    assert sum(len(m.x) for m in ex.marks) == N
    assert ex.figure.interaction is ex.brush and ex.brush.marks == ex.marks
    assert ex.highlight_mark in ex.figure.marks and ex.highlight_mark not in ex.brush.marks


def test_color_by_predictions_or_none(sweep, labels):
    preds = (labels + 1) % 4
    ex = SampleExplorer(sweep, color=preds)
    for c, m in enumerate(ex.marks):
        np.testing.assert_allclose(m.x, sweep[2].F[preds == c, 0])
    plain = SampleExplorer(sweep, color=None)
    assert len(plain.marks) == 1 and not plain.marks[0].display_legend
    with pytest.raises(pl.InputError, match=r"one class per sample \(120\)"):
        SampleExplorer(sweep, color=preds[:10])


def test_brush_sets_selected_in_python(sweep):
    ex = SampleExplorer(sweep)
    seen = []
    ex.observe(lambda c: seen.append(c["new"]), "selected")
    c = sweep[2].F
    x0, x1 = np.quantile(c[:, 0], [0.2, 0.7])
    y0, y1 = np.quantile(c[:, 1], [0.1, 0.6])
    ex.brush.selected = [[x0, y0], [x1, y1]]  # what the page sends when the user brushes
    inside = np.flatnonzero((c[:, 0] >= x0) & (c[:, 0] <= x1) & (c[:, 1] >= y0) & (c[:, 1] <= y1))
    assert 0 < len(inside) < N
    assert ex.selected == inside.tolist() and seen[-1] == inside.tolist()
    assert ex.readout.value.startswith(f"<b>{len(inside)}</b> of {N} samples selected")
    ex.brush.selected = None  # the brush cleared
    assert ex.selected == []


def test_lasso_selection_comes_from_the_marks(sweep, labels):
    ex = SampleExplorer(sweep)
    ex.mode = "lasso"
    assert ex.figure.interaction is ex.lasso
    ex.marks[1].selected = [0, 2]  # what the page sets on the marks inside a lasso
    ex.marks[3].selected = [1]
    expected = sorted([np.flatnonzero(labels == 1)[0], np.flatnonzero(labels == 1)[2], np.flatnonzero(labels == 3)[1]])
    assert ex.selected == [int(i) for i in expected]
    ex.mode = "pan-zoom"
    assert isinstance(ex.figure.interaction, bq.interacts.PanZoom) and ex.selected == []
    ex.mode_buttons.value = "hover"  # no interaction: bqplot shows tooltips only then
    assert ex.mode == "hover" and ex.figure.interaction is None


def test_selected_set_from_python_is_shown_on_the_marks(sweep):
    ex = SampleExplorer(sweep)
    ex.selected = [0, 5, 7, 100]
    assert _union(ex) == [0, 5, 7, 100]
    ex.selected = []
    assert _union(ex) == []
    with pytest.raises(pl.InputError, match=r"sample indices must be in \[0, 120\)"):
        ex.selected = [500]


def test_rank_change_swaps_F_and_clears_the_selection(sweep, labels):
    ex = SampleExplorer(sweep, 0, 1)
    assert ex.rank == 2 and ex.slider.options == (2, 3, 5)
    ex.brush.selected = [[-1.0, -1.0], [1e9, 1e9]]
    assert len(ex.selected) == N
    ex.slider.value = 5  # the slider drives the trait
    assert ex.rank == 5 and ex.fit is sweep[5]
    for c, m in enumerate(ex.marks):
        np.testing.assert_allclose(m.x, sweep[5].F[labels == c, 0])
        np.testing.assert_allclose(m.y, sweep[5].F[labels == c, 1])
    assert ex.selected == [] and ex.brush.selected_x is None and _union(ex) == []
    assert ex.x_picker.options == (0, 1, 2, 3, 4) and ex.figure.title.endswith("rank 5")
    # the scales hold every point of the new F (a zoom is reset)
    F = sweep[5].F
    for scale, col in ((ex.x_scale, F[:, 0]), (ex.y_scale, F[:, 1])):
        assert scale.min < col.min() and scale.max > col.max()
        # refitted, or the previous range kept when the new points fill at least 60 % of it
        assert scale.max - scale.min == pytest.approx(1.04 * np.ptp(col), rel=1e-6) or (
            np.ptp(col) >= 0.6 * (scale.max - scale.min)
        )
    with pytest.raises(pl.InputError, match="rank 4 is not in this sweep"):
        ex.rank = 4


def test_rank_change_keeps_a_range_the_points_fill_and_refits_a_zoom():
    """Axis ranges stay across a rank change when the new points fill most of them (no pass over every
    point in the page); they are refitted when the points would be lost or squeezed, or after a zoom."""
    rng = np.random.default_rng(0)
    base = rng.random((50, 3))
    fits = {}
    for r, scale in ((2, 1.0), (3, 0.9), (4, 0.1)):  # rank 3: 90 % of rank 2's spread; rank 4: 10 %
        fit = pl.factorize(pl.Activations.from_arrays({"a": rng.random((5, 50))}), rank=r, max_iter=2)
        fit.F[:] = np.hstack([base, rng.random((50, r))])[:, :r] * scale
        fits[r] = fit
    ex = SampleExplorer(pl.Sweep(fits), color=None)
    first = (ex.x_scale.min, ex.x_scale.max, ex.y_scale.min, ex.y_scale.max)
    ex.rank = 3
    assert (ex.x_scale.min, ex.x_scale.max, ex.y_scale.min, ex.y_scale.max) == first
    assert ex.x_scale.min <= ex.coordinates[:, 0].min() and ex.coordinates[:, 0].max() <= ex.x_scale.max
    ex.x_scale.min = -5.0  # a zoom (pan) in the page: the next rank change refits
    ex.rank = 2
    assert (ex.x_scale.min, ex.x_scale.max, ex.y_scale.min, ex.y_scale.max) == first
    ex.rank = 4  # squeezed into a tenth of the range: refitted
    c = ex.coordinates
    assert ex.x_scale.max - ex.x_scale.min == pytest.approx(1.04 * np.ptp(c[:, 0]))


def test_factor_pickers_and_rank_limits(sweep):
    ex = SampleExplorer(sweep, 0, 1, rank=3)
    ex.y_picker.value = 2
    assert ex.y == 2 and ex.y_axis.label == "factor 2"
    np.testing.assert_allclose(np.concatenate([m.y for m in ex.marks]),
                               np.concatenate([sweep[3].F[g, 2] for g in ex.groups]))
    assert ex.slider.options == (3, 5)  # rank 2 has no factor 2
    with pytest.raises(pl.InputError, match=r"x=0, y=4 need rank > 4"):
        SampleExplorer(sweep, 0, 4, rank=3)
    assert SampleExplorer(sweep, 0, 4).rank == 5  # the first rank that has the factors
    with pytest.raises(pl.InputError, match=r"x=3 is not a factor at rank 3"):
        ex.x = 3
    assert ex.x == 0 and ex.x_axis.label == "factor 0"


def test_pca_projection(sweep):
    ex = SampleExplorer(sweep, projection="pca", rank=5)
    coords, axis = project(sweep[5].F, projection="pca")
    np.testing.assert_allclose(np.concatenate([m.x for m in ex.marks]),
                               np.concatenate([coords[g, 0] for g in ex.groups]))
    assert ex.x_axis.label == axis[0] and axis[0].startswith("PC 1 (")
    assert abs(coords.mean(axis=0)).max() < 1e-9 and coords[:, 0].var() >= coords[:, 1].var()
    with pytest.raises(pl.InputError, match="projection must be None"):
        SampleExplorer(sweep, projection="tsne")


def test_highlight_and_show_factor(sweep):
    ex = SampleExplorer(sweep, rank=3, top_k=6)
    ex.highlight([3, 1, 3])
    assert ex.highlighted == [1, 3] and ex.factor is None
    np.testing.assert_allclose(ex.highlight_mark.x, sweep[3].F[[1, 3], 0])
    ex.show_factor(2)
    top = sorted(top_inputs(sweep[3], 6)[2].tolist())
    assert ex.factor == 2 and ex.highlighted == top
    np.testing.assert_allclose(ex.highlight_mark.y, sweep[3].F[top, 1])
    assert "top 6 inputs of factor 2" in ex.readout.value
    ex.rank = 5  # the factor's top inputs at the new rank
    assert ex.highlighted == sorted(top_inputs(sweep[5], 6)[2].tolist())
    ex.rank = 2  # factor 2 does not exist at rank 2
    assert ex.factor is None and ex.highlighted == [] and len(ex.highlight_mark.x) == 0
    with pytest.raises(pl.InputError, match="factor 4 does not exist at rank 2"):
        ex.show_factor(4)
    with pytest.raises(pl.InputError, match=r"sample indices must be in \[0, 120\)"):
        ex.highlight([-1])


def test_link_gallery_tile_clicks_highlight_samples(sweep):
    ex = SampleExplorer(sweep)
    gal = LatentGallery(sweep)
    link = link_gallery(ex, gal)
    gal.factor = 1
    assert ex.factor == 1 and ex.highlighted == sorted(top_inputs(sweep[2], 8)[1].tolist())
    gal.rank = 5
    assert ex.rank == 5
    ex.rank = 3
    assert gal.rank == 3
    link.unlink()
    gal.factor = 0
    assert ex.factor == 1
    dash = Dashboard(sweep)
    link_gallery(ex, dash)  # through the dashboard's gallery; the gallery's rank wins
    assert ex.rank == dash.rank == 2
    dash.rank = 5
    dash.factor = 3
    assert ex.rank == 5 and ex.factor == 3
    with pytest.raises(pl.InputError, match="needs a LatentGallery"):
        link_gallery(ex, object())


def test_link_gallery_selection_rings_samples_in_the_gallery(sweep):
    ex = SampleExplorer(sweep)
    gal = LatentGallery(sweep)
    ex.selected = [3, 4]
    link = link_gallery(ex, gal)
    assert gal.highlighted == [3, 4]  # the selection made before linking is shown at once
    ex.brush.selected = [[0.0, 0.0], [1e9, 1e9]]  # a brush over everything, as the page sends it
    assert gal.highlighted == list(range(N))
    ex.rank = 3  # a new F clears the selection, and so the rings
    assert gal.highlighted == []
    ex.selected = [7]
    link.unlink()
    ex.selected = [8, 9]
    assert gal.highlighted == [7]
    assert "highlighted" in gal.keys  # synced to the page


def test_factorization_source_has_no_rank_slider(sweep):
    ex = SampleExplorer(sweep[3])
    assert ex.rank == 3 and ex.slider not in ex.children[0].children
    with pytest.raises(pl.InputError, match="shows a Sweep or a Factorization"):
        SampleExplorer(np.zeros((3, 3)))


def test_ten_thousand_points_build_quickly():
    """Data size only (the browser test times drawing): 10,000 samples make ten class scatters."""
    rng = np.random.default_rng(0)
    fit = pl.factorize(pl.Activations.from_arrays({"a": rng.random((8, 10_000))}, labels=rng.integers(0, 10, 10_000)),
                       rank=3, max_iter=3)
    ex = SampleExplorer(fit)
    assert sum(len(m.x) for m in ex.marks) == 10_000 and len(ex.marks) == 10
    ex.brush.selected = [[-1, -1], [1e9, 1e9]]
    assert len(ex.selected) == 10_000
