"""bqplot figures of sweeps, spectra and factorizations: Python objects you restyle, extend and lay out.

``sweep.plot()``, ``spectrum.plot()`` and ``fit.plot()`` call these functions and return a
:class:`bqplot.Figure`, as pandas' ``.plot()`` returns matplotlib axes: change its marks and axes,
add your own marks on the same scales, put it in an ``ipywidgets`` layout, or pass it as ``fig=``
to draw another result into it (the new lines share its scales and axes and take the next free colour).

Every series is a :class:`bqplot.Lines` (with a legend entry) and a :class:`bqplot.Scatter` of
the same points (hover: the values), both labelled with the series name. Colours come from
:mod:`peeklens.plots.palette`: one per block or network, the same in every figure.

>>> import numpy as np, peeklens as pl
>>> from peeklens.plots import sweep_figure, compare
>>> rng = np.random.default_rng(0)
>>> acts = pl.Activations.from_arrays({"input:0": rng.random((16, 30)), "relu": rng.random((8, 30))})
>>> sw = pl.sweep(acts, ranks=[2, 3], max_iter=5, progress=False)
>>> fig = sweep_figure(sw, name="net A")
>>> [m.labels for m in fig.marks], [a.label for a in fig.axes]
([['net A'], ['net A']], ['rank', 'RMSE'])
>>> fig is sweep_figure(sw, name="net B", fig=fig)   # drawn into the same figure
True
>>> fig.marks[2].labels, fig.marks[2].colors
(['net B'], ['#f28e2b'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import bqplot as bq
import numpy as np

from ..errors import InputError
from ..results import Factorization, Sweep
from ..spectra import Spectrum
from .palette import colors_for

__all__ = ["sweep_figure", "spectrum_figure", "factorization_figure", "compare", "series_colors"]

_KINDS = ("rmse", "errors")
_LINE_STYLES = ("solid", "dashed", "dotted", "dash_dotted")
#: Singular values below this fraction of the largest are numerical zeros (the exact method works on a
#: Gram matrix) and would stretch a log axis over many empty decades: spectra leave them out.
_ZERO = 1e-6


def _as_sweep(obj) -> Sweep:
    if isinstance(obj, Sweep):
        if not len(obj):
            raise InputError("this sweep has no finished ranks; there is nothing to plot")
        return obj
    if isinstance(obj, Factorization):
        return Sweep({obj.rank: obj})
    raise InputError(f"expected a Sweep or a Factorization, got {type(obj).__name__}")


def series_colors(fig: bq.Figure) -> dict[str, str]:
    """The colour of every labelled line already in ``fig`` (name -> CSS colour).

    >>> import bqplot as bq
    >>> series_colors(bq.Figure(marks=[bq.Lines(x=[0, 1], y=[1, 2], labels=["a"], colors=["red"],
    ...     scales={"x": bq.LinearScale(), "y": bq.LinearScale()})]))
    {'a': 'red'}
    """
    out: dict[str, str] = {}
    for m in fig.marks:
        if isinstance(m, bq.Lines) and m.labels and m.colors:
            out.setdefault(str(m.labels[0]), str(m.colors[0]))
    return out


def _figure(fig: bq.Figure | None, *, x_label: str, y_label: str, x_scale, y_scale, title: str | None):
    """The figure to draw into and its x/y scales: a new one, or ``fig`` with the scales of its first mark."""
    if fig is None:
        fig = bq.Figure(
            marks=[], axes=[], legend_location="top-right", fig_margin=dict(top=50, bottom=55, left=75, right=30)
        )
    elif not isinstance(fig, bq.Figure):
        raise InputError(f"fig must be a bqplot.Figure, got {type(fig).__name__}")
    if fig.marks:
        scales = fig.marks[0].scales
        x_scale, y_scale = scales.get("x", x_scale), scales.get("y", y_scale)
    if not fig.axes:
        fig.axes = [
            bq.Axis(scale=x_scale, label=x_label, grid_lines="solid"),
            bq.Axis(
                scale=y_scale,
                label=y_label,
                side="left",
                grid_lines="solid",
                tick_format=".2g" if isinstance(y_scale, bq.LogScale) else None,
            ),
        ]
    if title is not None:
        fig.title = title
    return fig, x_scale, y_scale


def _add_series(
    fig: bq.Figure,
    series: Mapping[str, tuple[np.ndarray, np.ndarray]],
    colors: Mapping[str, str],
    x_scale,
    y_scale,
    tooltip: bq.Tooltip,
    line_styles: Mapping[str, str] | None = None,
) -> None:
    """One Lines (legend) + one Scatter (markers, hover read-out) per series."""
    marks = list(fig.marks)
    for name, (x, y) in series.items():
        style = (line_styles or {}).get(name, "solid")
        scales = {"x": x_scale, "y": y_scale}
        marks.append(
            bq.Lines(
                x=x,
                y=y,
                scales=scales,
                colors=[colors[name]],
                labels=[name],
                display_legend=True,
                line_style=style,
                stroke_width=2,
            )
        )
        marks.append(
            bq.Scatter(
                x=x,
                y=y,
                scales=scales,
                colors=[colors[name]],
                labels=[name],
                default_size=24,
                tooltip=tooltip,
                display_legend=False,
            )
        )
    fig.marks = marks


def sweep_figure(
    sweep,
    *,
    kind: str = "rmse",
    blocks: Sequence[str] | None = None,
    name: str | None = None,
    color: str | None = None,
    colors: Mapping[str, str] | None = None,
    fig: bq.Figure | None = None,
    title: str | None = None,
    log: bool = False,
) -> bq.Figure:
    """Error against rank, as a bqplot Figure (what ``Sweep.plot()`` returns).

    Parameters
    ----------
    sweep : Sweep or Factorization
    kind : {"rmse", "errors"}, default "rmse"
        ``"rmse"``: the paper's overall RMSE, one line; ``"errors"``: the relative error
        ``||X_b - W_b F^T|| / ||X_b||`` of every block, one line (and colour) per block.
    blocks : list of str, optional
        With ``kind="errors"``: only these blocks.
    name : str, optional
        Legend name of the RMSE line (default ``"RMSE"``); with ``kind="errors"`` a prefix of the block names.
    color : str, optional
        Colour of the RMSE line (default: the next free palette colour of ``fig``).
    colors : dict of str to str, optional
        Colours by series name (block names for ``kind="errors"``).
    fig : bqplot.Figure, optional
        Draw into this figure (sharing its scales) and return it.
    title : str, optional
    log : bool, default False
        Log-scale y axis (new figures only).

    Returns
    -------
    bqplot.Figure

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> acts = pl.Activations.from_arrays({"a": np.random.default_rng(0).random((10, 20))})
    >>> sw = pl.sweep(acts, ranks=[1, 2, 4], max_iter=5, progress=False)
    >>> fig = sw.plot()
    >>> fig.marks[0].x.tolist(), bool(np.allclose(fig.marks[0].y, sw.rmse))
    ([1.0, 2.0, 4.0], True)
    """
    sweep = _as_sweep(sweep)
    if kind not in _KINDS:
        raise InputError(f"kind must be one of {_KINDS}, got {kind!r}")
    ranks = np.asarray(sweep.ranks, dtype=np.float64)
    if kind == "rmse":
        label = name or "RMSE"
        series = {label: (ranks, np.asarray(sweep.rmse, dtype=np.float64))}
        y_label = "RMSE"
        if color is not None:
            colors = {**(colors or {}), label: color}
    else:
        errs = sweep.errors()
        names = list(blocks) if blocks is not None else list(errs)
        missing = [b for b in names if b not in errs]
        if missing:
            raise InputError(f"blocks {missing} are not in this sweep; its blocks are {list(errs)}")
        prefix = f"{name} · " if name else ""
        series = {prefix + b: (ranks, np.asarray(errs[b], dtype=np.float64)) for b in names}
        y_label = "relative error per block"
    y_scale = bq.LogScale() if log else bq.LinearScale()
    fig, xs, ys = _figure(fig, x_label="rank", y_label=y_label, x_scale=bq.LinearScale(), y_scale=y_scale, title=title)
    tip = bq.Tooltip(fields=["x", "y"], labels=["rank", y_label], formats=["d", ".4g"])
    _add_series(fig, series, colors_for(series, colors, taken=series_colors(fig)), xs, ys, tip)
    return fig


def spectrum_figure(
    spectrum: Spectrum,
    *,
    blocks: Sequence[str] | None = None,
    k: int | None = None,
    name: str | None = None,
    colors: Mapping[str, str] | None = None,
    line_style: str | Mapping[str, str] = "solid",
    fig: bq.Figure | None = None,
    title: str | None = None,
) -> bq.Figure:
    """Top singular values of every block on a log axis (paper Figs. 4, 5, 8): what ``Spectrum.plot()`` returns.

    Parameters
    ----------
    spectrum : Spectrum
    blocks : list of str, optional
        Blocks to draw (default: all), one line and colour each.
    k : int, optional
        Only the top ``k`` values.
    name : str, optional
        Prefix of the legend names (``"name · block"``), e.g. the network.
    colors : dict of str to str, optional
        Colours by legend name.
    line_style : str or dict, default "solid"
        bqplot line style (``solid``, ``dashed``, ``dotted``, ``dash_dotted``), or one per block.
    fig : bqplot.Figure, optional
        Draw into this figure and return it.
    title : str, optional

    Returns
    -------
    bqplot.Figure
        x: singular value index (1 = largest), y: singular value, log scale. Values below a
        millionth of the largest (zeros of rank-deficient blocks, up to round-off) are left out,
        as a log axis cannot show them.

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> X = np.random.default_rng(0).random((12, 9))
    >>> sv = pl.spectrum(pl.Activations.from_arrays({"a": X, "b": X[:6]}), k=4)
    >>> fig = sv.plot()
    >>> [m.labels[0] for m in fig.marks[::2]], type(fig.marks[0].scales["y"]).__name__
    (['a', 'b'], 'LogScale')
    >>> bool(np.allclose(fig.marks[0].y, sv.values["a"])), fig.marks[0].x.tolist()
    (True, [1.0, 2.0, 3.0, 4.0])
    """
    if not isinstance(spectrum, Spectrum):
        raise InputError(f"expected a Spectrum (from pl.spectrum), got {type(spectrum).__name__}")
    names = list(blocks) if blocks is not None else spectrum.names
    missing = [b for b in names if b not in spectrum.values]
    if missing:
        raise InputError(f"blocks {missing} are not in this spectrum; its blocks are {spectrum.names}")
    if k is not None and (isinstance(k, bool) or int(k) < 1):
        raise InputError(f"k must be a positive integer, got {k!r}")
    prefix = f"{name} · " if name else ""
    series, styles = {}, {}
    for b in names:
        v = np.asarray(spectrum.values[b], dtype=np.float64)[: k if k is not None else None]
        floor = _ZERO * v[0] if v.size and v[0] > 0 else 0.0
        v = v[: int(np.count_nonzero(v > floor))]  # decreasing: the values kept are a prefix
        series[prefix + b] = (np.arange(1, v.size + 1, dtype=np.float64), v)
        styles[prefix + b] = line_style.get(b, "solid") if isinstance(line_style, Mapping) else line_style
    fig, xs, ys = _figure(
        fig,
        x_label="singular value index",
        y_label="singular value",
        x_scale=bq.LinearScale(),
        y_scale=bq.LogScale(),
        title=title,
    )
    tip = bq.Tooltip(fields=["x", "y"], labels=["index", "singular value"], formats=["d", ".4g"])
    _add_series(fig, series, colors_for(series, colors, taken=series_colors(fig)), xs, ys, tip, styles)
    return fig


def factorization_figure(
    fit: Factorization,
    *,
    blocks: Sequence[str] | None = None,
    colors: Mapping[str, str] | None = None,
    fig: bq.Figure | None = None,
    title: str | None = None,
) -> bq.Figure:
    """Relative error of every block at one rank, as bars (what ``Factorization.plot()`` returns).

    Parameters
    ----------
    fit : Factorization
    blocks : list of str, optional
        Blocks to show (default: all), one bar and colour each (the colours of ``sweep.plot(kind="errors")``).
    colors : dict of str to str, optional
    fig : bqplot.Figure, optional
        Draw into this figure (a bar chart over block names) and return it.
    title : str, optional
        Default: ``"relative error per block, rank R (RMSE x)"``.

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> rng = np.random.default_rng(0)
    >>> fit = pl.factorize(pl.Activations.from_arrays({"a": rng.random((8, 20)), "b": rng.random((5, 20))}),
    ...                    rank=2, max_iter=5)
    >>> fig = fit.plot()
    >>> [str(b) for b in fig.marks[0].x], bool(np.allclose(fig.marks[0].y, [fit.errors["a"], fit.errors["b"]]))
    (['a', 'b'], True)
    """
    if not isinstance(fit, Factorization):
        raise InputError(f"expected a Factorization, got {type(fit).__name__}")
    names = list(blocks) if blocks is not None else list(fit.errors)
    missing = [b for b in names if b not in fit.errors]
    if missing:
        raise InputError(f"blocks {missing} are not in this factorization; its blocks are {list(fit.errors)}")
    fig, xs, ys = _figure(
        fig,
        x_label="block",
        y_label="relative error",
        x_scale=bq.OrdinalScale(),
        y_scale=bq.LinearScale(min=0.0),
        title=title if title is not None else f"relative error per block, rank {fit.rank} (RMSE {fit.rmse:.4g})",
    )
    cols = colors_for(names, colors)
    tip = bq.Tooltip(fields=["x", "y"], labels=["block", "relative error"], formats=["", ".4g"])
    bars = bq.Bars(
        x=names,
        y=np.array([fit.errors[b] for b in names], dtype=np.float64),
        scales={"x": xs, "y": ys},
        colors=[cols[b] for b in names],
        color_mode="element",
        labels=[f"rank {fit.rank}"],
        tooltip=tip,
        padding=0.3,
    )
    fig.marks = list(fig.marks) + [bars]
    return fig


def compare(
    items: Mapping[str, object],
    *,
    kind: str = "rmse",
    blocks: Sequence[str] | None = None,
    k: int | None = None,
    colors: Mapping[str, str] | None = None,
    fig: bq.Figure | None = None,
    title: str | None = None,
) -> bq.Figure:
    """Several networks in one figure, one colour per network.

    Parameters
    ----------
    items : dict of str to Sweep, Factorization or Spectrum
        e.g. ``{"25 %": sweep25, "100 %": sweep100}``. Sweeps: RMSE (or per-block error) against
        rank; spectra: singular values, one line style per block.
    kind : {"rmse", "errors"}, default "rmse"
        For sweeps: see :func:`sweep_figure`. With ``"errors"`` the blocks of one network share
        its colour and differ by line style.
    blocks : list of str, optional
        Blocks (per-block errors or spectra).
    k : int, optional
        Spectra: top ``k`` values.
    colors : dict of str to str, optional
        Colours by network name.
    fig : bqplot.Figure, optional
    title : str, optional

    Returns
    -------
    bqplot.Figure

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> rng = np.random.default_rng(0)
    >>> sw = {n: pl.sweep(pl.Activations.from_arrays({"a": rng.random((10, 20))}), ranks=[1, 2],
    ...                   max_iter=5, progress=False) for n in ("25 %", "100 %")}
    >>> fig = pl.plots.compare(sw)
    >>> [(m.labels[0], m.colors[0]) for m in fig.marks[::2]]
    [('25 %', '#4e79a7'), ('100 %', '#f28e2b')]
    """
    if not isinstance(items, Mapping) or not items:
        raise InputError(
            "compare takes a non-empty dict of name -> Sweep (or Spectrum), e.g. {'25 %': s25, '100 %': s100}"
        )
    vals = list(items.values())
    is_spec = [isinstance(v, Spectrum) for v in vals]
    if any(is_spec) and not all(is_spec):
        raise InputError(
            f"compare takes only Sweeps or only Spectra, not a mix; got {[type(v).__name__ for v in vals]}"
        )
    names = [str(n) for n in items]
    net_colors = colors_for(names, colors, taken=series_colors(fig) if fig is not None else None)
    for i, (n, v) in enumerate(zip(names, vals)):
        t = title if (i == 0 and title is not None) else None
        if all(is_spec):
            bl = list(blocks) if blocks is not None else v.names
            fig = spectrum_figure(
                v,
                blocks=bl,
                k=k,
                name=n,
                fig=fig,
                title=t,
                colors={f"{n} · {b}": net_colors[n] for b in bl},
                line_style={b: _LINE_STYLES[j % len(_LINE_STYLES)] for j, b in enumerate(bl)},
            )
        elif kind == "errors":
            sw = _as_sweep(v)
            bl = list(blocks) if blocks is not None else sw.block_names
            fig = sweep_figure(
                sw, kind="errors", blocks=bl, name=n, fig=fig, title=t, colors={f"{n} · {b}": net_colors[n] for b in bl}
            )
            for m in fig.marks:  # one line style per block within the network's colour
                if isinstance(m, bq.Lines) and m.labels and m.labels[0].startswith(f"{n} · "):
                    b = m.labels[0][len(n) + 3 :]
                    if b in bl:
                        m.line_style = _LINE_STYLES[bl.index(b) % len(_LINE_STYLES)]
        else:
            fig = sweep_figure(v, kind=kind, name=n, color=net_colors[n], fig=fig, title=t)
    return fig
