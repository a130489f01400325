"""Interactive notebook widgets (anywidget) for activations, factorizations, sweeps and spectra.

The drawing is TypeScript in ``js/`` (bundled to ``peeklens/static/*.js`` by ``pip install``).
The widgets sync the results themselves, as the schema's payload (:mod:`peeklens.schema`): the
``meta`` (JSON) and the arrays each view needs (binary buffers); the browser derives the pictures
with the same code as the JupyterLab document and the HTML report. Every rank of a sweep is sent
once, so moving the rank slider redraws in the browser without a round trip to the kernel, and a
saved notebook (with widget state) shows the views again.

>>> import numpy as np, peeklens as pl
>>> from peeklens.widgets import Dashboard
>>> rng = np.random.default_rng(0)
>>> acts = pl.Activations.from_arrays({"input:0": rng.random((16, 30)), "relu": rng.random((8, 30))},
...                                   shapes={"input:0": (4, 4)})
>>> dash = Dashboard(pl.sweep(acts, ranks=[2, 3], max_iter=5, progress=False))
>>> dash.rank, dash.explorer.ranks
(2, [2, 3])
>>> dash.rank = 3
>>> dash.gallery.rank, dash.heatmaps.rank
(3, 3)
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import anywidget
import ipywidgets
import traitlets as t

from ..activations import Activations
from ..errors import InputError
from ..results import Factorization, Sweep
from ..spectra import Spectrum
from . import _payload
from ._html import summary_html

__all__ = [
    "RankExplorer",
    "LatentGallery",
    "NeuronHeatmaps",
    "SpectrumPlot",
    "Compare",
    "Dashboard",
    "show",
    "widget_for",
    "summary_html",
    "STATIC",
]

#: Above this many bytes of loadings the heatmaps warn (they travel to the browser and into saved notebooks).
_LARGE_PAYLOAD = 64 * 2**20

#: Where ``pip install`` puts the bundles built from ``js/widgets/*.ts``.
STATIC = Path(__file__).resolve().parent.parent / "static"


def _bundle(name: str):
    """The ES module of one widget, or a module that says how to build it when missing."""
    path = STATIC / f"{name}.js"
    if path.exists():
        return path
    msg = (
        f"peeklens: the widget bundle {name}.js is missing from {STATIC}. "
        "Reinstall with Node.js available: npm ci && pip install -e ."
    )
    return (
        "export default { render({ el }) { const d = document.createElement('pre'); "
        f"d.textContent = {msg!r}; el.appendChild(d); }} }};"
    )


class _RankMixin:
    """Shared rank validation: the rank must be one of the swept ranks."""

    def _check_rank(self, rank: int) -> int:
        rank = int(rank)
        if self.ranks and rank not in self.ranks:
            raise InputError(f"rank {rank} is not in this sweep; ranks are {list(self.ranks)}")
        return rank


class _FactorMixin(_RankMixin, t.HasTraits):
    """Views with a selected factor: the rank is a swept one, the factor is kept below the rank."""

    @t.validate("rank")
    def _valid_rank(self, proposal):
        return self._check_rank(proposal["value"])

    @t.validate("factor")
    def _valid_factor(self, proposal):
        f = int(proposal["value"])
        if f < 0:
            raise InputError(f"factor must be >= 0, got {f}")
        return f

    @t.observe("rank")
    def _clamp_factor(self, change):
        if self.factor >= change["new"]:
            self.factor = change["new"] - 1

    @property
    def fit(self) -> Factorization:
        """The factorization at the current rank."""
        return self.sweep[self.rank]


class RankExplorer(_RankMixin, anywidget.AnyWidget):
    """A slider over the swept ranks with the RMSE-vs-rank curve and the relative error per block.

    Parameters
    ----------
    sweep : Sweep or Factorization
    rank : int, optional
        The rank shown first (default: the smallest).

    Attributes
    ----------
    rank : int
        The current rank; moves with the slider (observe it with ``explorer.observe(f, "rank")``).
    """

    _esm = _bundle("rank_explorer")
    ranks = t.List(t.Int()).tag(sync=True)
    rank = t.Int(0).tag(sync=True)
    meta = t.Dict().tag(sync=True)
    arrays = t.Dict().tag(sync=True)
    title = t.Unicode("").tag(sync=True)

    def __init__(self, sweep, rank: int | None = None, *, title: str = "", _payload_=None, **kwargs) -> None:
        self.sweep = _payload.as_sweep(sweep)
        meta, _ = _payload_ or _payload.sweep_payload(self.sweep, top_k=0)
        ranks = [int(r) for r in self.sweep.ranks]
        super().__init__(meta=meta, arrays={}, ranks=ranks, rank=ranks[0], title=title, **kwargs)
        if rank is not None:
            self.rank = rank

    @t.validate("rank")
    def _valid_rank(self, proposal):
        return self._check_rank(proposal["value"])

    @property
    def fit(self) -> Factorization:
        """The factorization at the current rank."""
        return self.sweep[self.rank]

    def data(self) -> dict:
        """What it draws: ``ranks``, ``rmse``, ``blocks``, ``errors`` (see :func:`peeklens.plots.rank_data`)."""
        from ..plots.data import rank_data

        return rank_data(self.sweep)

    def to_frame(self):
        """One row per rank: ``rmse`` and the relative error of every block, as a :class:`pandas.DataFrame`."""
        import pandas as pd

        d = self.data()
        cols = {"rmse": d["rmse"], **{b: e for b, e in zip(d["blocks"], d["errors"])}}
        return pd.DataFrame(cols, index=pd.Index(d["ranks"], name="rank"))


class LatentGallery(_FactorMixin, anywidget.AnyWidget):
    """One tile per factor (paper Fig. 2): the folded input-side loadings, the top-k inputs
    (from F) and the class histogram of those inputs when labels exist. Clicking selects a factor.

    Parameters
    ----------
    sweep : Sweep or Factorization
    rank : int, optional
    top_k : int, default 8
        Top inputs shown per factor.
    hist_k : int, default 50
        Top inputs counted in each factor's class histogram.
    class_names : list of str, optional
        Names of the label classes (shown as text).
    interpret_layer : str, optional
        When the sweep was explained (:func:`peeklens.explain`), the layer whose maximized images and
        attribution overlays the tiles show (default: the first explained layer).
    decode : list of str or callable, optional
        For token samples (``pl.capture(..., samples="tokens")``): a vocabulary or a tokenizer's
        ``decode``; the tiles show each top token in its context (:func:`peeklens.schema.token_texts`).

    Attributes
    ----------
    highlighted : list of int
        Sample indices to mark: the top-input thumbnails of these samples get a ring and each tile
        says how many of its top inputs are among them. :func:`peeklens.plots.link_gallery` sets it
        to a :class:`~peeklens.plots.SampleExplorer`'s brush or lasso selection.
    """

    _esm = _bundle("latent_gallery")
    ranks = t.List(t.Int()).tag(sync=True)
    rank = t.Int(0).tag(sync=True)
    factor = t.Int(0).tag(sync=True)
    highlighted = t.List(t.Int()).tag(sync=True)
    hist_k = t.Int(50).tag(sync=True)
    interpret_layer = t.Unicode("").tag(sync=True)
    meta = t.Dict().tag(sync=True)
    arrays = t.Dict().tag(sync=True)

    def __init__(
        self,
        sweep,
        rank: int | None = None,
        *,
        top_k: int = 8,
        hist_k: int = 50,
        class_names=None,
        interpret_layer: str | None = None,
        decode=None,
        _payload_=None,
        **kwargs,
    ) -> None:
        self.sweep = _payload.as_sweep(sweep)
        first = next(iter(self.sweep.values()))
        tokens = _payload.shows_tokens(first, decode)
        if not first.input_names and not tokens:
            raise InputError(
                "the latent gallery needs input-channel blocks; capture with include_input=True "
                "(pl.capture(model, data, include_input=True)), or for token samples pass decode= "
                "(a vocabulary or tokenizer.decode) to show their text"
            )
        meta, arrays = _payload_ or _payload.sweep_payload(
            self.sweep, top_k=top_k, class_names=class_names, decode=decode
        )
        bufs = _payload.buffers(arrays, _payload.gallery_keys(meta))
        nbytes = sum(len(b) for b in bufs.values())
        if nbytes > _LARGE_PAYLOAD:
            warnings.warn(
                f"the gallery sends {nbytes / 2**20:.0f} MiB to the browser (F and the loadings of "
                f"{len(self.sweep)} ranks); sweep fewer ranks or fewer samples to keep the notebook light",
                stacklevel=2,
            )
        ranks = list(self.sweep.ranks)
        super().__init__(meta=meta, arrays=bufs, hist_k=int(hist_k), ranks=ranks, rank=ranks[0], **kwargs)
        self.top_k = int(top_k)
        if rank is not None:
            self.rank = rank
        if interpret_layer is not None:
            self.interpret_layer = interpret_layer

    @t.validate("interpret_layer")
    def _valid_interpret_layer(self, proposal):
        layer = str(proposal["value"])
        explained = sorted({n for f in self.sweep.values() for n in (f.interpretation or {})})
        if layer and layer not in explained:
            raise InputError(
                f"interpret_layer={layer!r} was not explained; explained layers: {explained or 'none'} "
                "(pl.explain(model, sweep, layer) adds one)"
            )
        return layer

    def data(self, rank: int | None = None) -> dict:
        """What it draws at ``rank`` (default: the current one): ``latent_images``, ``top_inputs``,
        ``thumbnails``, ``class_histograms``, ``strength`` (see :func:`peeklens.plots.gallery_data`)."""
        from ..plots.data import gallery_data

        return gallery_data(
            self.sweep[self._check_rank(self.rank if rank is None else rank)], top_k=self.top_k, hist_k=self.hist_k
        )


class NeuronHeatmaps(_FactorMixin, anywidget.AnyWidget):
    """Per layer the neurons x factors matrix O_j (paper Fig. 9), the selected factor's
    per-channel spatial maps (hover: channel, position, value) and the share of unused neurons.

    Parameters
    ----------
    sweep : Sweep or Factorization
    rank : int, optional
    layers : list of str, optional
        Layer blocks to show (default: every layer block).
    threshold : float, default 0.01
        A neuron is unused when its loadings are below ``threshold`` x the layer maximum on every factor.
    """

    _esm = _bundle("neuron_heatmaps")
    ranks = t.List(t.Int()).tag(sync=True)
    rank = t.Int(0).tag(sync=True)
    factor = t.Int(0).tag(sync=True)
    layer_names = t.List(t.Unicode()).tag(sync=True)
    threshold = t.Float(0.01).tag(sync=True)
    meta = t.Dict().tag(sync=True)
    arrays = t.Dict().tag(sync=True)

    def __init__(
        self, sweep, rank: int | None = None, *, layers=None, threshold: float = 0.01, _payload_=None, **kwargs
    ) -> None:
        self.sweep = _payload.as_sweep(sweep)
        names = _payload.layer_names(self.sweep, layers)
        meta, arrays = _payload_ or _payload.sweep_payload(self.sweep, top_k=0)
        bufs = _payload.buffers(arrays, _payload.heatmap_keys(meta, names))
        nbytes = sum(len(b) for b in bufs.values())
        if nbytes > _LARGE_PAYLOAD:
            warnings.warn(
                f"the heatmaps send {nbytes / 2**20:.0f} MiB of loadings to the browser (all ranks of "
                f"{len(names)} layers); pass layers=[...] or sweep fewer ranks to keep the notebook light",
                stacklevel=2,
            )
        ranks = list(self.sweep.ranks)
        super().__init__(
            meta=meta, arrays=bufs, layer_names=names, threshold=float(threshold), ranks=ranks, rank=ranks[0], **kwargs
        )
        if rank is not None:
            self.rank = rank

    def data(self, rank: int | None = None) -> dict:
        """What it draws at ``rank`` (default: the current one) for the selected factor: per layer
        ``matrix``, ``unused_share``, ``spatial_maps`` (see :func:`peeklens.plots.heatmap_data`)."""
        from ..plots.data import heatmap_data

        fit = self.sweep[self._check_rank(self.rank if rank is None else rank)]
        return heatmap_data(fit, self.layer_names, factor=min(self.factor, fit.rank - 1), threshold=self.threshold)


class SpectrumPlot(anywidget.AnyWidget):
    """Top singular values per layer on a semi-log axis, several networks overlaid.

    Parameters
    ----------
    spectra : Spectrum or dict of str to Spectrum
        From ``pl.spectrum(acts)``; a dict overlays several networks (keys are their names).
    layers : list of str, optional
        Blocks to show (default: all).
    k : int, optional
        Show only the top ``k`` values.
    """

    _esm = _bundle("spectrum_plot")
    spectra = t.List(t.Dict()).tag(sync=True)
    layers = t.List(t.Unicode(), allow_none=True, default_value=None).tag(sync=True)
    k = t.Int(0).tag(sync=True)
    title = t.Unicode("").tag(sync=True)

    def __init__(self, spectra, *, layers=None, k: int | None = None, title: str = "", **kwargs) -> None:
        self._spectra = spectra
        super().__init__(
            spectra=_payload.spectrum_payloads(spectra),
            layers=None if layers is None else list(layers),
            k=int(k or 0),
            title=title,
            **kwargs,
        )

    def to_frame(self):
        """The singular values it draws: ``network, block, index, value`` (:func:`peeklens.plots.spectrum_frame`)."""
        from ..plots.data import spectrum_frame

        df = spectrum_frame(self._spectra)
        if self.layers is not None:
            df = df[df["block"].isin(self.layers)]
        if self.k:
            df = df[df["index"] < self.k]
        return df.reset_index(drop=True)

    data = to_frame


class Compare(anywidget.AnyWidget):
    """Several networks side by side: networks ranked by their quality score, RMSE-vs-rank curves in
    one chart, spectra in one chart per layer, and their latent galleries next to each other at the
    chosen rank.

    Parameters
    ----------
    sweeps : dict of str to Sweep
        e.g. ``{"25%": sweep25, "100%": sweep100}``.
    spectra : dict of str to Spectrum, optional
    layers : list of str, optional
        Spectrum blocks to show.
    quality : Comparison or dict of str to Quality, optional
        The networks' label-free quality scores (``pl.compare({...})`` or ``{name: pl.quality(acts)}``);
        default: each sweep's own ``quality``.  When any network has one, a ranked score panel shows
        the scores, their components, the calibration's confidence and the pairs within the seed noise
        (``Comparison.noise``, else the calibration's ``seed_noise``).  Networks without a score are
        listed as unscored.
    """

    _esm = _bundle("compare")
    rank = t.Int(0).tag(sync=True)
    networks = t.List(t.Dict()).tag(sync=True)
    spectra = t.List(t.Dict()).tag(sync=True)
    layers = t.List(t.Unicode(), allow_none=True, default_value=None).tag(sync=True)
    noise = t.Float(None, allow_none=True).tag(sync=True)

    def __init__(
        self,
        sweeps: Mapping[str, Sweep],
        spectra=None,
        *,
        layers=None,
        rank: int | None = None,
        quality=None,
        **kwargs,
    ) -> None:
        from ..quality import Comparison

        if isinstance(quality, Comparison):
            kwargs.setdefault("noise", quality.noise)
            quality = quality.qualities
        if quality is not None and not isinstance(quality, Mapping):
            raise InputError(
                f"quality must be a Comparison (pl.compare) or a dict of name -> Quality, got {type(quality).__name__}"
            )
        nets = _payload.compare_payloads(sweeps, quality)
        self.sweeps = {str(k): _payload.as_sweep(v) for k, v in sweeps.items()}
        specs = _payload.spectrum_payloads(spectra) if spectra is not None else []
        all_ranks = sorted({r for sw in self.sweeps.values() for r in sw.ranks})
        super().__init__(
            networks=nets, spectra=specs, layers=None if layers is None else list(layers), rank=all_ranks[0], **kwargs
        )
        if rank is not None:
            self.rank = rank

    def to_frame(self):
        """RMSE and per-block relative errors of every network and rank (columns ``network, rank, rmse``
        and one per block), as a :class:`pandas.DataFrame`; the spectra: ``SpectrumPlot(spectra).to_frame()``."""
        import pandas as pd

        from ..plots.data import rank_data

        rows = []
        for name, sw in self.sweeps.items():
            d = rank_data(sw)
            cols = {"network": name, "rank": d["ranks"], "rmse": d["rmse"]}
            cols.update({b: e for b, e in zip(d["blocks"], d["errors"])})
            rows.append(pd.DataFrame(cols))
        return pd.concat(rows, ignore_index=True)

    def data(self) -> dict:
        """Per network what its rank explorer and gallery draw at the current rank:
        ``{name: {"ranks", "rmse", "blocks", "errors", "latent_images"}}``."""
        from ..plots.data import rank_data
        from ..views import latent_images

        out = {}
        for name, sw in self.sweeps.items():
            out[name] = rank_data(sw)
            if self.rank in sw.ranks and sw[self.rank].input_names:
                out[name]["latent_images"] = latent_images(sw[self.rank])
        return out

    @t.validate("rank")
    def _valid_rank(self, proposal):
        r = int(proposal["value"])
        ranks = sorted({x for sw in getattr(self, "sweeps", {}).values() for x in sw.ranks})
        if ranks and r not in ranks:
            raise InputError(f"rank {r} was swept by none of the networks; ranks are {ranks}")
        return r


class Dashboard(ipywidgets.VBox):
    """Rank explorer, latent gallery, neuron heatmaps and (optionally) spectra of one sweep, linked:
    the rank slider drives every view and clicking a tile selects the factor of the heatmaps.

    The links are made in the browser (``ipywidgets.jslink``), so they also work in a saved
    notebook without a kernel; ``dashboard.rank`` and ``dashboard.factor`` read and set them from Python.
    Every rank's data travels once, as binary float32 buffers; a saved notebook shows the views again
    when its widget state is saved (JupyterLab and Notebook 7: Settings > Save Widget State Automatically).

    Parameters
    ----------
    sweep : Sweep or Factorization
    spectrum : Spectrum or dict of str to Spectrum, optional
    rank : int, optional
    top_k : int, default 8
    layers : list of str, optional
        Layers for the heatmaps.
    class_names : list of str, optional
    interpret_layer : str, optional
        The explained layer (:func:`peeklens.explain`) the gallery's tiles show.
    decode : list of str or callable, optional
        Token samples: a vocabulary or a tokenizer's ``decode``; the gallery shows the top tokens as text.
    """

    def __init__(
        self,
        sweep,
        spectrum=None,
        *,
        rank: int | None = None,
        top_k: int = 8,
        layers=None,
        class_names=None,
        interpret_layer: str | None = None,
        decode=None,
        **kwargs,
    ) -> None:
        self.sweep = _payload.as_sweep(sweep)
        # made once, shared
        payload = _payload.sweep_payload(self.sweep, top_k=top_k, class_names=class_names, decode=decode)
        self.explorer = RankExplorer(self.sweep, title="Rank explorer", _payload_=payload)
        first = next(iter(self.sweep.values()))
        tokens = _payload.shows_tokens(first, decode)
        self.gallery = (
            LatentGallery(
                self.sweep,
                top_k=top_k,
                class_names=class_names,
                interpret_layer=interpret_layer,
                decode=decode,
                _payload_=payload,
            )
            if first.input_names or tokens
            else None
        )
        has_layers = bool(layers) or any(n not in first.input_names for n in first.blocks)
        self.heatmaps = NeuronHeatmaps(self.sweep, layers=layers, _payload_=payload) if has_layers else None
        self.spectrum = SpectrumPlot(spectrum) if spectrum is not None else None
        self._links = []
        for w in (self.gallery, self.heatmaps):
            if w is not None:
                self._links.append(ipywidgets.jslink((self.explorer, "rank"), (w, "rank")))
        if self.gallery is not None and self.heatmaps is not None:
            self._links.append(ipywidgets.jslink((self.gallery, "factor"), (self.heatmaps, "factor")))
        # stacked, each at the full width: the gallery grid and the heatmaps size themselves to it
        views = [w for w in (self.explorer, self.gallery, self.heatmaps, self.spectrum) if w is not None]
        for w in views:
            w.layout = ipywidgets.Layout(width="100%", min_width="320px")
        children = views
        super().__init__(children=children, **kwargs)
        self.add_class("peeklens-dashboard")
        # keep the Python side consistent when the kernel sets the rank/factor (no browser needed)
        self.explorer.observe(self._sync_rank, "rank")
        if self.gallery is not None and self.heatmaps is not None:
            self.gallery.observe(lambda c: setattr(self.heatmaps, "factor", c["new"]), "factor")
            self.heatmaps.observe(lambda c: setattr(self.gallery, "factor", c["new"]), "factor")
        if rank is not None:
            self.rank = rank

    def _sync_rank(self, change) -> None:
        for w in (self.gallery, self.heatmaps):
            if w is not None and w.rank != change["new"]:
                w.rank = change["new"]

    @property
    def rank(self) -> int:
        """The current rank (moves with the slider)."""
        return self.explorer.rank

    @rank.setter
    def rank(self, value: int) -> None:
        self.explorer.rank = value

    @property
    def factor(self) -> int:
        """The selected factor (click a gallery tile or a heatmap row)."""
        w = self.gallery or self.heatmaps
        return w.factor if w is not None else 0

    @factor.setter
    def factor(self, value: int) -> None:
        for w in (self.gallery, self.heatmaps):
            if w is not None:
                w.factor = value

    @property
    def fit(self) -> Factorization:
        """The factorization at the current rank."""
        return self.sweep[self.rank]


def widget_for(obj, **kwargs):
    """The widget that shows ``obj``: a Dashboard for a Sweep or Factorization, a SpectrumPlot for a
    Spectrum (or a dict of them), a Compare for a dict of Sweeps, an HTML summary for Activations."""
    if isinstance(obj, (Sweep, Factorization)):
        return Dashboard(obj, **kwargs)
    if isinstance(obj, Spectrum):
        return SpectrumPlot(obj, **kwargs)
    if isinstance(obj, Activations):
        return ipywidgets.HTML(value=summary_html(obj), **kwargs)
    if isinstance(obj, Mapping) and obj:
        vals = list(obj.values())
        if all(isinstance(v, (Sweep, Factorization)) for v in vals):
            return Compare(obj, **kwargs)
        if all(isinstance(v, Spectrum) for v in vals):
            return SpectrumPlot(obj, **kwargs)
    raise InputError(
        f"peeklens.show cannot show a {type(obj).__name__}; pass a Sweep, Factorization, Spectrum, "
        "Activations, or a dict of Sweeps (compare) or Spectra (overlay)"
    )


def show(obj, **kwargs) -> None:
    """Display ``obj`` as an interactive widget in the notebook (see :func:`widget_for`).

    Examples
    --------
    >>> import peeklens as pl
    >>> pl.show(42)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    peeklens.errors.InputError: peeklens.show cannot show a int; pass a Sweep, Factorization, Spectrum, Activations, ...
    """
    from IPython.display import display

    display(widget_for(obj, **kwargs))
