"""bqplot figures: Sweep.plot(), Spectrum.plot(), Factorization.plot() and plots.compare()."""

from __future__ import annotations

import bqplot as bq
import ipywidgets
import numpy as np
import pytest

import peeklens as pl
from peeklens.plots import PALETTE, colors_for, compare, series_colors, spectrum_figure, sweep_figure


@pytest.fixture(scope="module")
def acts():
    rng = np.random.default_rng(3)
    F = rng.random((50, 4))
    return pl.Activations.from_arrays(
        {"input:0": rng.random((20, 4)) @ F.T, "relu": rng.random((12, 4)) @ F.T + 0.1 * rng.random((12, 50)),
         "relu_1": rng.random((6, 50))},
        shapes={"input:0": (4, 5)}, labels=rng.integers(0, 3, 50))


@pytest.fixture(scope="module")
def sweep(acts):
    return pl.sweep(acts, ranks=[1, 2, 3, 5], max_iter=20, progress=False)


@pytest.fixture(scope="module")
def spec(acts):
    return pl.spectrum(acts, k=6)


def _lines(fig):
    return [m for m in fig.marks if isinstance(m, bq.Lines)]


def _points(fig):
    return [m for m in fig.marks if isinstance(m, bq.Scatter)]


def test_sweep_plot_is_a_figure_of_rmse_against_rank(sweep):
    fig = sweep.plot()
    assert isinstance(fig, bq.Figure)
    (line,), (pts,) = _lines(fig), _points(fig)
    np.testing.assert_array_equal(line.x, sweep.ranks)
    np.testing.assert_allclose(line.y, sweep.rmse)
    np.testing.assert_allclose(pts.y, sweep.rmse)  # markers with hover read-out on the same points
    assert line.labels == ["RMSE"] and line.display_legend and not pts.display_legend
    assert pts.tooltip.fields == ["x", "y"] and pts.tooltip.labels == ["rank", "RMSE"]
    assert [a.label for a in fig.axes] == ["rank", "RMSE"]
    assert [a.orientation for a in fig.axes] == ["horizontal", "vertical"]
    assert line.scales["x"] is fig.axes[0].scale and line.scales["y"] is fig.axes[1].scale
    assert pts.scales == line.scales
    assert line.colors == pts.colors == [PALETTE[0]]


def test_sweep_plot_per_block_errors_one_colour_each(sweep):
    fig = sweep.plot(kind="errors", title="per block")
    lines = _lines(fig)
    errs = sweep.errors()
    assert [m.labels[0] for m in lines] == ["input:0", "relu", "relu_1"]
    for m in lines:
        np.testing.assert_allclose(m.y, errs[m.labels[0]])
    assert [m.colors[0] for m in lines] == list(PALETTE[:3])
    assert fig.title == "per block" and fig.axes[1].label == "relative error per block"
    only = sweep.plot(kind="errors", blocks=["relu_1"])
    assert [m.labels[0] for m in _lines(only)] == ["relu_1"]


def test_block_colours_agree_across_figures(sweep, spec):
    """A block has one colour in the error curves, the spectra and the bars."""
    by_sweep = {m.labels[0]: m.colors[0] for m in _lines(sweep.plot(kind="errors"))}
    by_spec = {m.labels[0]: m.colors[0] for m in _lines(spec.plot())}
    bars = sweep[3].plot().marks[0]
    by_bars = dict(zip([str(b) for b in bars.x], bars.colors))
    assert by_sweep == by_spec == by_bars == {"input:0": PALETTE[0], "relu": PALETTE[1], "relu_1": PALETTE[2]}


def test_spectrum_plot_log_scale_and_values(spec):
    fig = spec.plot()
    lines = _lines(fig)
    assert [m.labels[0] for m in lines] == spec.names
    for m in lines:
        np.testing.assert_allclose(m.y, spec.values[m.labels[0]])
        np.testing.assert_array_equal(m.x, np.arange(1, len(spec.values[m.labels[0]]) + 1))
    assert isinstance(lines[0].scales["y"], bq.LogScale) and isinstance(fig.axes[1].scale, bq.LogScale)
    assert [a.label for a in fig.axes] == ["singular value index", "singular value"]
    top3 = spec.plot(k=3, blocks=["relu"], name="net")
    (line,) = _lines(top3)
    assert line.labels == ["net · relu"] and len(line.y) == 3


def test_spectrum_plot_drops_zero_values_a_log_axis_cannot_show():
    X = np.outer(np.arange(1, 7), np.ones(5))  # rank 1: one positive singular value
    sv = pl.spectrum(pl.Activations.from_arrays({"a": X}), k=3)
    (line,) = _lines(sv.plot())
    assert len(line.y) == 1 and line.y[0] == pytest.approx(sv.values["a"][0])


def test_factorization_plot_bars(sweep):
    fit = sweep[2]
    fig = fit.plot()
    (bars,) = fig.marks
    assert isinstance(bars, bq.Bars)
    assert [str(b) for b in bars.x] == list(fit.errors)
    np.testing.assert_allclose(bars.y, list(fit.errors.values()))
    assert "rank 2" in fig.title and [a.label for a in fig.axes] == ["block", "relative error"]


def test_compose_into_an_existing_figure(sweep, acts):
    """fig= draws into the figure, on its scales, with the next free colour; the figure is returned."""
    other = pl.sweep(acts, ranks=[1, 2], max_iter=5, progress=False, seed=1)
    fig = sweep.plot(name="seed 0")
    n_axes, xs, ys = len(fig.axes), fig.marks[0].scales["x"], fig.marks[0].scales["y"]
    out = other.plot(name="seed 1", fig=fig)
    assert out is fig and len(fig.axes) == n_axes
    new = _lines(fig)[1]
    assert new.labels == ["seed 1"] and new.scales["x"] is xs and new.scales["y"] is ys
    assert new.colors == [PALETTE[1]]  # the next free colour
    np.testing.assert_allclose(new.y, other.rmse)
    # a name already in the figure keeps its colour
    sweep.plot(name="seed 0", fig=fig)
    assert _lines(fig)[2].colors == [PALETTE[0]]
    assert series_colors(fig) == {"seed 0": PALETTE[0], "seed 1": PALETTE[1]}


def test_user_marks_and_layouts(sweep):
    """The figure is an ordinary bqplot Figure: add marks on its scales, restyle, lay it out."""
    fig = sweep.plot(color="black")
    line = _lines(fig)[0]
    assert line.colors == ["black"]
    ref = bq.Lines(x=[1, 5], y=[0.1, 0.1], scales=line.scales, line_style="dashed")
    fig.marks = fig.marks + [ref]
    line.stroke_width = 4
    box = ipywidgets.HBox([fig, sweep.plot(kind="errors")])
    assert box.children[0] is fig and fig.marks[-1] is ref
    empty = bq.Figure()
    sweep.plot(fig=empty)  # an empty figure gets axes
    assert [a.label for a in empty.axes] == ["rank", "RMSE"]


def test_compare_one_colour_per_network(sweep, acts, spec):
    other = pl.sweep(acts, ranks=[2, 3], max_iter=5, progress=False, seed=2)
    fig = compare({"25 %": sweep, "100 %": other}, title="two networks")
    lines = _lines(fig)
    assert [(m.labels[0], m.colors[0]) for m in lines] == [("25 %", PALETTE[0]), ("100 %", PALETTE[1])]
    np.testing.assert_allclose(lines[1].y, other.rmse)
    assert fig.title == "two networks" and len(fig.axes) == 2
    errs = _lines(compare({"a": sweep, "b": other}, kind="errors", blocks=["relu", "relu_1"]))
    assert [m.labels[0] for m in errs] == ["a · relu", "a · relu_1", "b · relu", "b · relu_1"]
    assert [m.colors[0] for m in errs] == [PALETTE[0]] * 2 + [PALETTE[1]] * 2
    assert [m.line_style for m in errs] == ["solid", "dashed"] * 2
    spec_lines = _lines(compare({"a": spec, "b": spec}, blocks=["relu", "relu_1"]))
    assert [m.colors[0] for m in spec_lines] == [PALETTE[0]] * 2 + [PALETTE[1]] * 2
    assert [m.line_style for m in spec_lines] == ["solid", "dashed"] * 2


def test_bad_input_is_a_clear_error(sweep, spec):
    with pytest.raises(pl.InputError, match="kind must be one of"):
        sweep.plot(kind="loss")
    with pytest.raises(pl.InputError, match=r"blocks \['conv9'\] are not in this sweep"):
        sweep.plot(kind="errors", blocks=["conv9"])
    with pytest.raises(pl.InputError, match=r"blocks \['conv9'\] are not in this spectrum"):
        spec.plot(blocks=["conv9"])
    with pytest.raises(pl.InputError, match="only Sweeps or only Spectra"):
        compare({"a": sweep, "b": spec})
    with pytest.raises(pl.InputError, match="non-empty dict"):
        compare({})
    with pytest.raises(pl.InputError, match="fig must be a bqplot.Figure"):
        sweep.plot(fig="figure")
    with pytest.raises(pl.InputError, match="expected a Spectrum"):
        spectrum_figure(sweep)
    with pytest.raises(pl.InputError, match="no finished ranks"):
        sweep_figure(pl.Sweep({}))


def test_palette_cycles_past_ten_names():
    cols = colors_for([f"b{i}" for i in range(12)])
    assert list(cols.values())[:10] == list(PALETTE) and cols["b10"] == PALETTE[0]
