"""The sample explorer: every sample as a point in factor space, with selections that reach Python.

A bqplot scatter of the rows of the shared sample factor ``F`` (two chosen factors, or a 2-D PCA
projection), one colour and legend entry per class (labels, or predictions you pass), and bqplot's
brush and lasso selectors: what you select in the page is ``explorer.selected`` in the kernel
(a traitlet: ``explorer.observe(f, "selected")``). For a sweep, a rank slider swaps which
factorization's ``F`` is shown. :func:`link_gallery` connects it to a
:class:`~peeklens.widgets.LatentGallery` both ways: clicking a tile marks that factor's top inputs in the scatter,
and the samples selected in the scatter are ringed among the gallery's top-input thumbnails.

>>> import numpy as np, peeklens as pl
>>> rng = np.random.default_rng(0)
>>> acts = pl.Activations.from_arrays({"a": rng.random((12, 40))}, labels=rng.integers(0, 3, 40))
>>> ex = pl.plots.SampleExplorer(pl.sweep(acts, ranks=[2, 3], max_iter=5, progress=False))
>>> ex.rank, [m.labels[0] for m in ex.marks]
(2, ['0', '1', '2'])
>>> ex.brush.selected = [[0.0, 0.0], [1e9, 1e9]]   # what dragging the brush over everything does
>>> len(ex.selected)
40
>>> ex.rank = 3          # the slider: another F, the selection is cleared
>>> ex.selected
[]
"""

from __future__ import annotations

from collections.abc import Sequence

import bqplot as bq
import ipywidgets
import numpy as np
import traitlets as t

from ..errors import InputError
from ..results import Factorization, Sweep
from ..views import top_inputs
from .palette import PALETTE, colors_for

__all__ = ["SampleExplorer", "link_gallery", "project"]

_MODES = ("brush", "lasso", "pan-zoom", "hover")
#: Space around the points, as a fraction of their range on each axis.
_PAD = 0.02
#: A rank change keeps an axis range that the new points span at least this share of (see ``_fit_scales``).
_KEEP = 0.6
_UNSELECTED = {"opacity": 0.15}
_SELECTED = {"opacity": 1.0}


def project(F: np.ndarray, x: int = 0, y: int = 1, projection: str | None = None) -> tuple[np.ndarray, list[str]]:
    """The 2-D coordinates of every sample and the two axis labels.

    Parameters
    ----------
    F : numpy.ndarray
        Sample factor (samples x rank).
    x, y : int
        Factors (columns of F) on the axes when ``projection`` is None.
    projection : {None, "pca"}
        ``"pca"``: the first two principal components of F after scaling every factor to a
        maximum of 1 (the scale of a factor is arbitrary in a factorization, so each counts equally).

    Returns
    -------
    coords : numpy.ndarray
        (samples x 2), float64.
    labels : list of str
        Axis labels.

    Examples
    --------
    >>> F = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 4.0], [0.5, 0.5, 0.0]])
    >>> project(F, 2, 0)[0].tolist(), project(F, 2, 0)[1]
    ([[2.0, 1.0], [4.0, 0.0], [0.0, 0.5]], ['factor 2', 'factor 0'])
    >>> c, labels = project(F, projection="pca")
    >>> c.shape, labels[0].startswith("PC 1 (")
    ((3, 2), True)
    """
    F = np.asarray(F, dtype=np.float64)
    if F.ndim != 2:
        raise InputError(f"F must be a (samples x rank) matrix, got shape {F.shape}")
    if projection is None:
        for nm, k in (("x", x), ("y", y)):
            if not 0 <= int(k) < F.shape[1]:
                raise InputError(f"{nm}={k} is not a factor at rank {F.shape[1]}; choose 0 <= {nm} < {F.shape[1]}")
        return F[:, [int(x), int(y)]].copy(), [f"factor {int(x)}", f"factor {int(y)}"]
    if projection != "pca":
        raise InputError(f"projection must be None (two factors) or 'pca', got {projection!r}")
    scale = F.max(axis=0)
    Z = F / np.where(scale > 0, scale, 1.0)
    Z = Z - Z.mean(axis=0)
    U, s, Vt = np.linalg.svd(Z, full_matrices=False)
    coords = np.zeros((F.shape[0], 2))
    m = min(2, s.size)
    coords[:, :m] = U[:, :m] * s[:m]
    var = s**2 / max(float((s**2).sum()), np.finfo(float).tiny)
    labels = [f"PC {i + 1} ({100 * var[i]:.0f} % of variance)" if i < m else f"PC {i + 1}" for i in range(2)]
    return coords, labels


class SampleExplorer(ipywidgets.VBox):
    """The samples in factor space as a bqplot scatter, with brush/lasso selection flowing back to Python.

    Parameters
    ----------
    source : Sweep or Factorization
        For a sweep, a slider (``rank``) swaps which rank's F is shown.
    x, y : int, default 0, 1
        Factors on the axes (columns of F).
    projection : {None, "pca"}
        ``"pca"``: a 2-D PCA projection of F instead of two factors (see :func:`project`).
    color : "auto", "labels", array-like or None, default "auto"
        Colour by the labels carried with the factorization (``"labels"``; ``"auto"`` when they
        exist), by an array of per-sample classes (e.g. the model's predictions), or one colour.
    class_names : list of str, optional
        Names of the classes, indexed by class (legend entries).
    rank : int, optional
        Rank shown first (default: the smallest).
    top_k : int, default 8
        Samples marked by :meth:`show_factor` (the gallery's top inputs per factor).
    title : str, optional

    Attributes
    ----------
    selected : list of int
        Indices of the samples selected with the brush or lasso (or set from Python). Observe it:
        ``explorer.observe(lambda c: print(c["new"]), "selected")``.
    highlighted : list of int
        Samples marked with a ring (:meth:`highlight`, :meth:`show_factor`).
    factor : int or None
        The factor whose top inputs are marked (:meth:`show_factor`), or None.
    rank : int
        The rank whose F is shown.
    mode : {"brush", "lasso", "pan-zoom", "hover"}
        The active interaction (the toggle buttons above the figure). Hovering a point shows its
        coordinates only in ``"hover"`` mode: any bqplot interaction takes the mouse (bqplot issue #1352).
    figure : bqplot.Figure
        The figure: add marks, restyle, or put it into your own layout.
    marks : list of bqplot.Scatter
        One scatter per class (or one), sharing the figure's scales.
    brush, lasso : bqplot.interacts.BrushSelector, LassoSelector
    """

    rank = t.Int(0)
    x = t.Int(0)
    y = t.Int(1)
    selected = t.List(t.Int())
    highlighted = t.List(t.Int())
    factor = t.Int(None, allow_none=True)
    mode = t.Enum(_MODES, default_value="brush")

    def __init__(
        self,
        source,
        x: int = 0,
        y: int = 1,
        *,
        projection: str | None = None,
        color="auto",
        class_names: Sequence[str] | None = None,
        rank: int | None = None,
        top_k: int = 8,
        title: str | None = None,
        **kwargs,
    ) -> None:
        if isinstance(source, Factorization):
            source = Sweep({source.rank: source})
        if not isinstance(source, Sweep) or not len(source):
            raise InputError(f"SampleExplorer shows a Sweep or a Factorization, got {type(source).__name__}")
        if projection not in (None, "pca"):
            raise InputError(f"projection must be None (two factors) or 'pca', got {projection!r}")
        self.sweep = source
        self.projection = projection
        self.top_k = int(top_k)
        ranks = list(source.ranks)
        first = rank if rank is not None else ranks[0]
        if first not in ranks:
            raise InputError(f"rank {first} is not in this sweep; ranks are {ranks}")
        if projection is None and max(x, y) >= first:
            usable = [r for r in ranks if r > max(x, y)]
            if rank is not None or not usable:
                raise InputError(f"factors x={x}, y={y} need rank > {max(x, y)}; the ranks are {ranks}")
            first = usable[0]
        fit = source[first]
        n = fit.n_samples

        # groups of samples: one scatter (colour, legend entry) per class
        classes = self._classes(color, fit, n)
        if classes is None:
            self._groups = [np.arange(n, dtype=np.int64)]
            names, cols = ["samples"], [PALETTE[0]]
        else:
            values = np.unique(classes)
            self._groups = [np.flatnonzero(classes == v).astype(np.int64) for v in values]
            names = [self._class_name(v, class_names) for v in values]
            cmap = colors_for([str(int(v)) for v in values])
            cols = [cmap[str(int(v))] for v in values]
        self._group_of = np.empty(n, dtype=np.int64)
        self._pos = np.empty(n, dtype=np.int64)
        for g, idx in enumerate(self._groups):
            self._group_of[idx] = g
            self._pos[idx] = np.arange(idx.size)
        self.classes = classes

        coords, labels = project(fit.F, x, y, projection)
        self._coords = coords
        self.x_scale, self.y_scale = bq.LinearScale(), bq.LinearScale()
        self._fit_scales(coords)
        scales = {"x": self.x_scale, "y": self.y_scale}
        self._tooltip = bq.Tooltip(fields=["x", "y"], labels=labels, formats=[".3g", ".3g"])
        self.marks = [
            bq.Scatter(
                x=coords[idx, 0],
                y=coords[idx, 1],
                scales=scales,
                colors=[c],
                labels=[nm],
                display_legend=classes is not None,
                default_size=16,
                stroke_width=0,
                selected_style=_SELECTED,
                unselected_style=_UNSELECTED,
                tooltip=self._tooltip,
            )
            for idx, nm, c in zip(self._groups, names, cols)
        ]
        self.highlight_mark = bq.Scatter(
            x=np.zeros(0),
            y=np.zeros(0),
            scales=scales,
            colors=["#d62728"],
            fill=False,
            stroke="#d62728",
            stroke_width=2.5,
            default_size=110,
            labels=["highlighted"],
            display_legend=False,
        )
        self.x_axis = bq.Axis(scale=self.x_scale, label=labels[0], grid_lines="dashed")
        self.y_axis = bq.Axis(scale=self.y_scale, label=labels[1], side="left", grid_lines="dashed")
        self.brush = bq.interacts.BrushSelector(
            x_scale=self.x_scale, y_scale=self.y_scale, marks=self.marks, color="#d62728"
        )
        self.lasso = bq.interacts.LassoSelector(
            x_scale=self.x_scale, y_scale=self.y_scale, marks=self.marks, color="#d62728"
        )
        self.panzoom = bq.interacts.PanZoom(scales={"x": [self.x_scale], "y": [self.y_scale]})
        self.figure = bq.Figure(
            marks=self.marks + [self.highlight_mark],
            axes=[self.x_axis, self.y_axis],
            interaction=self.brush,
            legend_location="top-right",
            animation_duration=0,
            title=title if title is not None else self._title(first),
            fig_margin=dict(top=50, bottom=55, left=70, right=20),
            layout=ipywidgets.Layout(width="100%", height="520px"),
        )
        self.figure.add_class("pl-sample-explorer-figure")

        # controls: rank slider (sweeps), factor pickers (two-factor view), interaction toggle
        self.slider = ipywidgets.SelectionSlider(
            options=self._usable_ranks(x, y), value=first, description="rank", continuous_update=False
        )
        self.slider.add_class("pl-explorer-rank")
        self.x_picker = ipywidgets.Dropdown(
            options=list(range(first)), value=x, description="x factor", layout=ipywidgets.Layout(width="150px")
        )
        self.y_picker = ipywidgets.Dropdown(
            options=list(range(first)), value=y, description="y factor", layout=ipywidgets.Layout(width="150px")
        )
        self.mode_buttons = ipywidgets.ToggleButtons(
            options=[("brush", "brush"), ("lasso", "lasso"), ("pan/zoom", "pan-zoom"), ("hover", "hover")],
            value="brush",
        )
        self.readout = ipywidgets.HTML()
        self.readout.add_class("pl-explorer-readout")
        controls = [self.mode_buttons]
        if len(ranks) > 1:
            controls.insert(0, self.slider)
        if projection is None:
            controls[1:1] = [self.x_picker, self.y_picker]
        super().__init__(
            children=[
                ipywidgets.HBox(controls, layout=ipywidgets.Layout(flex_flow="row wrap")),
                self.figure,
                self.readout,
            ],
            **kwargs,
        )
        self.add_class("pl-sample-explorer")

        self._from_ui = False
        self._syncing = False
        with self.hold_trait_notifications():
            self.rank, self.x, self.y = first, int(x), int(y)
        self._links = [
            t.link((self.slider, "value"), (self, "rank")),
            t.link((self.x_picker, "value"), (self, "x")),
            t.link((self.y_picker, "value"), (self, "y")),
            t.link((self.mode_buttons, "value"), (self, "mode")),
        ]
        self.brush.observe(self._on_brush, ["selected_x", "selected_y"])
        for m in self.marks:
            m.observe(self._on_mark_selected, "selected")
        self.observe(self._push_selected, "selected")
        self.observe(self._on_view_change, ["rank", "x", "y"])
        self.observe(self._on_mode, "mode")
        self.observe(self._draw_highlight, "highlighted")
        self._update_readout()

    @t.validate("rank")
    def _valid_rank(self, proposal):
        r = int(proposal["value"])
        if r not in self.sweep.ranks:
            raise InputError(f"rank {r} is not in this sweep; ranks are {self.sweep.ranks}")
        if self.projection is None and max(self.x, self.y) >= r:
            raise InputError(f"factors x={self.x}, y={self.y} need rank > {max(self.x, self.y)}; got rank {r}")
        return r

    @t.validate("x", "y")
    def _valid_factor_axis(self, proposal):
        k = int(proposal["value"])
        if self.projection is None and not 0 <= k < self.rank:
            raise InputError(
                f"{proposal['trait'].name}={k} is not a factor at rank {self.rank}; "
                f"choose 0 <= {proposal['trait'].name} < {self.rank}"
            )
        return k

    # ---- construction helpers -------------------------------------------------------------------
    @staticmethod
    def _classes(color, fit: Factorization, n: int) -> np.ndarray | None:
        if color is None:
            return None
        if isinstance(color, str):
            if color not in ("auto", "labels"):
                raise InputError(f"color must be 'auto', 'labels', an array of classes or None, got {color!r}")
            if fit.labels is None:
                if color == "labels":
                    raise InputError(
                        "color='labels' but this factorization carries no labels; capture with "
                        "labelled data, pass color=<array of classes>, or color=None"
                    )
                return None
            color = fit.labels
        arr = np.asarray(color)
        if arr.shape != (n,):
            raise InputError(f"color must have one class per sample ({n}), got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.integer):
            if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
                raise InputError("color classes must be integers (labels or predictions), e.g. model(x).argmax(1)")
            arr = arr.astype(np.int64)
        return arr.astype(np.int64)

    @staticmethod
    def _class_name(v, class_names) -> str:
        if class_names is not None and 0 <= int(v) < len(class_names):
            return str(class_names[int(v)])
        return str(int(v))

    def _usable_ranks(self, x: int, y: int) -> list[int]:
        ranks = list(self.sweep.ranks)
        return [r for r in ranks if r > max(x, y)] if self.projection is None else ranks

    def _title(self, rank: int) -> str:
        what = "PCA of F" if self.projection == "pca" else "factor space"
        return f"samples in {what}, rank {rank}"

    # ---- public API -----------------------------------------------------------------------------
    @property
    def fit(self) -> Factorization:
        """The factorization shown."""
        return self.sweep[self.rank]

    @property
    def groups(self) -> list[np.ndarray]:
        """The sample indices drawn by each mark: ``marks[i]`` shows samples ``groups[i]`` (in that order)."""
        return [g.copy() for g in self._groups]

    @property
    def coordinates(self) -> np.ndarray:
        """(samples x 2) coordinates of the points as drawn."""
        return self._coords

    def points_in(self, x_range, y_range) -> np.ndarray:
        """Indices of the samples whose point lies in the rectangle ``x_range`` x ``y_range`` (data units).

        >>> import numpy as np, peeklens as pl
        >>> acts = pl.Activations.from_arrays({"a": np.random.default_rng(0).random((6, 10))})
        >>> ex = SampleExplorer(pl.factorize(acts, rank=2, max_iter=3), color=None)
        >>> ex.points_in([-1, 1e9], [-1, 1e9]).tolist() == list(range(10))
        True
        """
        x0, x1 = sorted(float(v) for v in x_range)
        y0, y1 = sorted(float(v) for v in y_range)
        c = self._coords
        inside = (c[:, 0] >= x0) & (c[:, 0] <= x1) & (c[:, 1] >= y0) & (c[:, 1] <= y1)
        return np.flatnonzero(inside).astype(np.int64)

    def data(self) -> dict:
        """What the scatter draws: ``coordinates`` (samples x 2), ``axis_labels``, ``classes`` (per sample,
        or None), ``selected`` and ``highlighted`` (sample indices), ``rank``.

        >>> import numpy as np, peeklens as pl
        >>> acts = pl.Activations.from_arrays({"a": np.random.default_rng(0).random((6, 10))})
        >>> ex = SampleExplorer(pl.factorize(acts, rank=2, max_iter=3), color=None)
        >>> ex.selected = [1, 2]
        >>> d = ex.data()
        >>> d["coordinates"].shape, d["selected"].tolist(), d["axis_labels"]
        ((10, 2), [1, 2], ['factor 0', 'factor 1'])
        """
        return {
            "coordinates": self._coords.copy(),
            "axis_labels": [self.x_axis.label, self.y_axis.label],
            "classes": None if self.classes is None else self.classes.copy(),
            "selected": np.asarray(self.selected, dtype=np.int64),
            "highlighted": np.asarray(self.highlighted, dtype=np.int64),
            "rank": self.rank,
        }

    def to_frame(self):
        """One row per sample: ``x``, ``y`` (as drawn), ``class`` (when coloured by class), ``selected``,
        ``highlighted`` (bool), as a :class:`pandas.DataFrame`.

        >>> import numpy as np, peeklens as pl
        >>> acts = pl.Activations.from_arrays({"a": np.random.default_rng(0).random((6, 10))})
        >>> ex = SampleExplorer(pl.factorize(acts, rank=2, max_iter=3), color=None)
        >>> ex.selected = [3]
        >>> df = ex.to_frame()
        >>> list(df.columns), int(df["selected"].sum()), bool(df["selected"][3])
        (['x', 'y', 'selected', 'highlighted'], 1, True)
        """
        import pandas as pd  # a dependency of bqplot

        n = self._coords.shape[0]
        cols = {"x": self._coords[:, 0], "y": self._coords[:, 1]}
        if self.classes is not None:
            cols["class"] = self.classes
        for name in ("selected", "highlighted"):
            mask = np.zeros(n, dtype=bool)
            mask[np.asarray(getattr(self, name), dtype=np.int64)] = True
            cols[name] = mask
        return pd.DataFrame(cols)

    def highlight(self, indices) -> None:
        """Mark these samples with a ring (replacing the previous marks); ``[]`` clears them."""
        idx = np.unique(np.asarray(list(indices), dtype=np.int64))
        n = self._coords.shape[0]
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise InputError(f"sample indices must be in [0, {n}), got {idx.min()}..{idx.max()}")
        self.factor = None
        self.highlighted = [int(i) for i in idx]

    def show_factor(self, k: int) -> None:
        """Mark the ``top_k`` samples that load most on factor ``k`` (the inputs a gallery tile shows)."""
        k = int(k)
        if not 0 <= k < self.rank:
            raise InputError(f"factor {k} does not exist at rank {self.rank}; choose 0 <= k < {self.rank}")
        top = top_inputs(self.fit, self.top_k)[k]
        self.factor = k
        self.highlighted = [int(i) for i in np.sort(top)]
        self._update_readout()

    def clear(self) -> None:
        """Clear the selection, the brush and the lassos."""
        self._clear_selectors()
        self.selected = []

    # ---- observers ------------------------------------------------------------------------------
    def _set_from_ui(self, indices) -> None:
        self._from_ui = True
        try:
            self.selected = [int(i) for i in indices]
        finally:
            self._from_ui = False
        self._update_readout()

    def _on_brush(self, change) -> None:
        if self.mode != "brush":
            return
        sx, sy = self.brush.selected_x, self.brush.selected_y
        if sx is None or sy is None or len(sx) < 2 or len(sy) < 2:
            self._set_from_ui([])
        else:
            self._set_from_ui(self.points_in(sx, sy))

    def _on_mark_selected(self, change) -> None:
        if self.mode != "lasso" or self._from_ui:
            return
        parts = [
            g[np.asarray(m.selected, dtype=np.int64)]
            for g, m in zip(self._groups, self.marks)
            if m.selected is not None and len(m.selected)
        ]
        self._set_from_ui(np.sort(np.concatenate(parts)) if parts else [])

    def _push_selected(self, change) -> None:
        """Selection set from Python: show it on the marks (the page does that itself for its own)."""
        if self._from_ui:
            return
        idx = np.asarray(change["new"], dtype=np.int64)
        n = self._coords.shape[0]
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise InputError(f"sample indices must be in [0, {n}), got {idx.min()}..{idx.max()}")
        self._from_ui = True  # the marks' observers must not echo it back
        try:
            for g, m in enumerate(self.marks):
                mine = idx[self._group_of[idx] == g] if idx.size else idx
                m.selected = np.sort(self._pos[mine]) if idx.size else None
        finally:
            self._from_ui = False
        self._update_readout()

    def _clear_selectors(self) -> None:
        self._from_ui = True
        try:
            with self.brush.hold_sync():
                self.brush.selected_x = None
                self.brush.selected_y = None
            self.brush.reset()
            self.lasso.reset()
            for m in self.marks:
                m.selected = None
        finally:
            self._from_ui = False

    def _fit_scales(self, coords: np.ndarray, keep: bool = False) -> None:
        """Scale domains that hold every point (with a small margin).

        ``keep``: leave a domain as it is when it is the one fitted last (not zoomed since) and the new
        points span at least :data:`_KEEP` of it: flipping between ranks then keeps the axes still, and
        the page skips a pass over every point (bqplot moves all of them on each domain change).
        """
        fitted = []
        for i, (scale, col) in enumerate(((self.x_scale, coords[:, 0]), (self.y_scale, coords[:, 1]))):
            lo, hi = (float(col.min()), float(col.max())) if col.size else (0.0, 1.0)
            pad = _PAD * (hi - lo) if hi > lo else 0.5
            dom = (lo - pad, hi + pad)
            last = getattr(self, "_fitted", None)
            if keep and last is not None and (scale.min, scale.max) == last[i]:
                d0, d1 = last[i]
                if d0 <= lo and hi <= d1 and (hi - lo) >= _KEEP * (d1 - d0):
                    fitted.append(last[i])
                    continue
            with scale.hold_sync():
                scale.min, scale.max = dom
            fitted.append(dom)
        self._fitted = fitted

    def _set_options(self, widget, options: list[int], value: int) -> None:
        """New options for a picker, keeping its value (ipywidgets resets it; the links must not follow)."""
        if list(widget.options) == options:
            return
        self._syncing = True
        try:
            widget.options = options
            widget.value = value
        finally:
            self._syncing = False

    def _on_view_change(self, change) -> None:
        if self._syncing:
            return
        if self.projection is None and max(self.x, self.y) >= self.rank:
            raise InputError(
                f"factors x={self.x}, y={self.y} need rank > {max(self.x, self.y)}; the rank is {self.rank}"
            )
        coords, labels = project(self.fit.F, self.x, self.y, self.projection)
        self._coords = coords
        self._swap_points(coords, labels)
        if change["name"] == "rank":
            self._set_options(self.x_picker, list(range(self.rank)), self.x)
            self._set_options(self.y_picker, list(range(self.rank)), self.y)
        else:
            self._set_options(self.slider, self._usable_ranks(self.x, self.y), self.rank)
        if self.factor is not None and self.factor < self.rank:
            self.show_factor(self.factor)  # that factor's top inputs at the new rank
        elif self.factor is not None:
            self.highlight([])
        else:
            self._draw_highlight()

    def _swap_points(self, coords: np.ndarray, labels: list[str]) -> None:
        """New coordinates for every point, with fewer passes over the page's SVG points.

        bqplot moves every point of every mark (a d3 transition per point, even with no animation) each
        time a scale's domain or a mark's data changes, and an active brush re-selects, restyling every
        point, on each domain change. So the selector leaves the figure and the points are hidden
        (``display: none``: no style or layout work) while the scales and the data change, and are shown
        once at the end. ``benchmarks/bench_frontend.py --explorer`` times it (replacing the marks, or
        giving them new scale objects, measured slower: bqplot then rebuilds every point).
        """
        interaction = self.figure.interaction
        self._from_ui = True
        try:
            self.figure.interaction = None  # no brush/lasso view to re-select on each domain change
            for m in self.marks:
                m.visible = False
            with self.brush.hold_sync():
                self.brush.selected_x = None
                self.brush.selected_y = None
            for m in self.marks:
                if m.selected is not None:
                    m.selected = None
        finally:
            self._from_ui = False
        self.selected = []
        with self.figure.hold_sync():
            self._fit_scales(coords, keep=True)  # one domain for all marks, and a zoom is reset
            for idx, m in zip(self._groups, self.marks):
                with m.hold_sync():
                    m.x, m.y = coords[idx, 0], coords[idx, 1]
            self.x_axis.label, self.y_axis.label = labels
            self._tooltip.labels = labels
            self.figure.title = self._title(self.rank)
        self.lasso.reset()
        self.figure.interaction = interaction  # a fresh selector view: nothing selected
        for m in self.marks:
            m.visible = True

    def _on_mode(self, change) -> None:
        self.figure.interaction = {"brush": self.brush, "lasso": self.lasso, "pan-zoom": self.panzoom, "hover": None}[
            change["new"]
        ]
        self.clear()

    def _draw_highlight(self, change=None) -> None:
        idx = np.asarray(self.highlighted, dtype=np.int64)
        with self.highlight_mark.hold_sync():
            self.highlight_mark.x = self._coords[idx, 0]
            self.highlight_mark.y = self._coords[idx, 1]
        self._update_readout()

    def _update_readout(self) -> None:
        n = self._coords.shape[0]
        parts = [f"<b>{len(self.selected)}</b> of {n} samples selected"]
        if self.highlighted:
            what = (
                f"top {len(self.highlighted)} inputs of factor {self.factor}"
                if self.factor is not None
                else f"{len(self.highlighted)} samples"
            )
            parts.append(f"ringed: {what}")
        self.readout.value = " · ".join(parts)


class GalleryLink:
    """The link made by :func:`link_gallery`; ``unlink()`` removes it."""

    def __init__(self, explorer: SampleExplorer, gallery) -> None:
        self.explorer, self.gallery = explorer, gallery
        self._rank_link = None
        if (
            list(getattr(gallery, "ranks", []))
            and set(gallery.ranks) >= set(explorer.slider.options)
            and explorer.rank in gallery.ranks
        ):
            self._rank_link = t.link((gallery, "rank"), (explorer, "rank"))
        gallery.observe(self._on_factor, "factor")
        self._rings = gallery.has_trait("highlighted")
        if self._rings:
            explorer.observe(self._on_selected, "selected")
            gallery.highlighted = list(explorer.selected)

    def _on_selected(self, change) -> None:
        self.gallery.highlighted = [int(i) for i in change["new"]]

    def _on_factor(self, change) -> None:
        if change["new"] is not None and change["new"] < self.explorer.rank:
            self.explorer.show_factor(change["new"])

    def unlink(self) -> None:
        """Stop following the gallery."""
        self.gallery.unobserve(self._on_factor, "factor")
        if self._rings:
            self.explorer.unobserve(self._on_selected, "selected")
        if self._rank_link is not None:
            self._rank_link.unlink()
            self._rank_link = None


def link_gallery(explorer: SampleExplorer, gallery) -> GalleryLink:
    """Link the explorer and a gallery both ways: clicking a tile (its ``factor``) rings that factor's
    top inputs in the scatter; brushing or lasso-selecting points (``explorer.selected``) rings those
    samples among the gallery's top-input thumbnails and counts them per tile (``gallery.highlighted``);
    and the gallery's rank and the explorer's rank move together when they cover the same ranks.

    Parameters
    ----------
    explorer : SampleExplorer
    gallery : peeklens.widgets.LatentGallery or peeklens.widgets.Dashboard
        A dashboard is followed through its gallery.

    Returns
    -------
    GalleryLink
        Call ``.unlink()`` to stop.

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> from peeklens.widgets import LatentGallery
    >>> rng = np.random.default_rng(0)
    >>> acts = pl.Activations.from_arrays({"input:0": rng.random((16, 30))}, shapes={"input:0": (4, 4)})
    >>> sw = pl.sweep(acts, ranks=[2, 3], max_iter=5, progress=False)
    >>> ex, gal = pl.plots.SampleExplorer(sw), LatentGallery(sw)
    >>> link = pl.plots.link_gallery(ex, gal)
    >>> gal.factor = 1                 # a click on tile 1
    >>> ex.factor, len(ex.highlighted)
    (1, 8)
    >>> gal.rank = 3
    >>> ex.rank
    3
    >>> ex.selected = [0, 5, 7]        # a brush over three points
    >>> gal.highlighted
    [0, 5, 7]
    """
    if not isinstance(explorer, SampleExplorer):
        raise InputError(f"link_gallery links a SampleExplorer, got {type(explorer).__name__}")
    gal = getattr(gallery, "gallery", gallery)  # a Dashboard: its gallery
    if gal is None or not (isinstance(gal, t.HasTraits) and gal.has_trait("factor")):
        raise InputError(f"link_gallery needs a LatentGallery (or a Dashboard with one), got {type(gallery).__name__}")
    return GalleryLink(explorer, gal)
