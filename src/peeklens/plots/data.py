"""The arrays behind every figure and view, one call away.

Each view has a ``.data()`` method (and the tabular ones a ``.to_frame()``) returning what it draws, under
the same names everywhere; the functions here compute them from the results with :mod:`peeklens.views`
(the derivations the TypeScript views mirror), never from the pictures:

* :func:`figure_data` (``pl.plots.figure_data(sweep.plot())``): the series of any bqplot figure made by
  :mod:`peeklens.plots` (``Sweep.plot()``, ``Spectrum.plot()``, ``Factorization.plot()``, ``compare``), as a
  long table ``series, x, y``;
* :func:`rank_data` (``RankExplorer.data()``): ranks, RMSE and relative error per block;
* :func:`gallery_data` (``LatentGallery.data()``): latent images, top inputs (sample indices and their
  images), class histograms, factor strengths;
* :func:`heatmap_data` (``NeuronHeatmaps.data()``): the neurons x factors matrix, unused share and the
  selected factor's spatial maps per layer;
* :func:`spectrum_frame` (``SpectrumPlot.to_frame()``): singular values per network, block and index;
* ``SampleExplorer.data()`` / ``.to_frame()``: every sample's coordinates, class and selection.

>>> import numpy as np, peeklens as pl
>>> rng = np.random.default_rng(0)
>>> sw = pl.sweep(pl.Activations.from_arrays({"a": rng.random((6, 20))}), ranks=[1, 2], max_iter=5, progress=False)
>>> df = pl.plots.figure_data(sw.plot(name="net"))
>>> list(df.columns), df["series"].unique().tolist(), df["x"].tolist()
(['series', 'x', 'y'], ['net'], [1.0, 2.0])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import bqplot as bq
import numpy as np

from .. import views
from ..errors import InputError
from ..results import Factorization, Sweep
from ..spectra import Spectrum

__all__ = ["figure_data", "rank_data", "gallery_data", "heatmap_data", "spectrum_frame"]


def _pandas():
    import pandas as pd  # a dependency of bqplot

    return pd


def figure_data(fig: bq.Figure):
    """The series a peeklens bqplot figure draws, as a long :class:`pandas.DataFrame` (``series, x, y``).

    One row per point of every labelled line or bar mark (the hover scatters repeat the lines' points and
    are left out); marks you added yourself are included when they carry a label.

    Parameters
    ----------
    fig : bqplot.Figure
        From ``Sweep.plot()``, ``Spectrum.plot()``, ``Factorization.plot()`` or :func:`peeklens.plots.compare`.

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> rng = np.random.default_rng(0)
    >>> fit = pl.factorize(pl.Activations.from_arrays({"a": rng.random((8, 20)), "b": rng.random((5, 20))}),
    ...                    rank=2, max_iter=5)
    >>> df = figure_data(fit.plot())
    >>> df["x"].tolist(), bool(np.allclose(df["y"], [fit.errors["a"], fit.errors["b"]]))
    (['a', 'b'], True)
    """
    if not isinstance(fig, bq.Figure):
        raise InputError(f"figure_data reads a bqplot Figure (e.g. sweep.plot()), got {type(fig).__name__}")
    pd = _pandas()
    parts = []
    for m in fig.marks:
        if not isinstance(m, (bq.Lines, bq.Bars)) or not m.labels:
            continue
        x, y = np.asarray(m.x), np.asarray(m.y)
        if y.ndim == 2 and isinstance(m, bq.Lines):  # several lines in one mark
            for i, row in enumerate(y):
                xs = x[i] if x.ndim == 2 else x
                name = m.labels[i] if i < len(m.labels) else f"{m.labels[0]} {i}"
                parts.append(pd.DataFrame({"series": name, "x": xs, "y": row}))
            continue
        parts.append(pd.DataFrame({"series": str(m.labels[0]), "x": x, "y": y}))
    if not parts:
        return pd.DataFrame({"series": [], "x": [], "y": []})
    return pd.concat(parts, ignore_index=True)


def rank_data(sweep: Sweep) -> dict:
    """What the rank explorer draws: ``ranks``, ``rmse`` per rank, ``blocks`` and ``errors`` (blocks x ranks).

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> sw = pl.sweep(pl.Activations.from_arrays({"a": np.random.default_rng(0).random((6, 20))}),
    ...               ranks=[1, 2], max_iter=5, progress=False)
    >>> d = rank_data(sw)
    >>> d["ranks"].tolist(), d["errors"].shape, d["blocks"]
    ([1, 2], (1, 2), ['a'])
    """
    fits = list(sweep.values())
    blocks = list(fits[0].errors)
    return {
        "ranks": np.array([f.rank for f in fits], dtype=np.int64),
        "rmse": np.array([f.rmse for f in fits], dtype=np.float64),
        "blocks": blocks,
        "errors": np.array([[f.errors[b] for f in fits] for b in blocks], dtype=np.float64).reshape(len(blocks), -1),
    }


def gallery_data(fit: Factorization, *, top_k: int = 8, hist_k: int = 50) -> dict:
    """What the latent gallery draws for one factorization.

    Returns
    -------
    dict
        ``top_inputs`` (rank, top_k): sample indices, strongest first; ``strength`` (rank,): each factor's
        share of the energy; with input blocks ``latent_images`` (rank, H, W[, 3], each scaled to [0, 1]);
        when the inputs are kept ``thumbnails`` (rank, top_k, H, W[, 3]): the top inputs as captured; when
        labels exist ``class_histograms`` (rank, classes): label counts of each factor's ``hist_k`` top inputs.

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> rng = np.random.default_rng(0)
    >>> acts = pl.Activations.from_arrays({"input:0": rng.random((16, 30))}, shapes={"input:0": (4, 4)},
    ...                                   labels=rng.integers(0, 3, 30))
    >>> d = gallery_data(pl.factorize(acts, rank=2, max_iter=5), top_k=4, hist_k=10)
    >>> d["latent_images"].shape, d["top_inputs"].shape, d["thumbnails"].shape, d["class_histograms"].sum(1).tolist()
    ((2, 4, 4), (2, 4), (2, 4, 4, 4), [10, 10])
    """
    out = {"top_inputs": views.top_inputs(fit, top_k), "strength": views.factor_strength(fit)}
    if fit.input_names:  # token samples without an input block have no latent image
        out["latent_images"] = views.latent_images(fit)
    if fit.input_names and fit.inputs:
        out["thumbnails"] = views.thumbnails(fit, top_k)
    hist = views.class_histograms(fit, hist_k)
    if hist is not None:
        out["class_histograms"] = hist
    return out


def heatmap_data(fit: Factorization, layers: Sequence[str], *, factor: int = 0, threshold: float = 0.01) -> dict:
    """What the neuron heatmaps draw: per layer ``{"matrix", "unused_share", "spatial_maps"}``.

    ``matrix`` is the neurons x factors loadings (:func:`peeklens.views.neuron_factor_matrix`), ``unused_share``
    the share of neurons below ``threshold`` x the layer maximum on every factor, ``spatial_maps`` the
    selected ``factor``'s loadings folded to (channels, H, W) (:func:`peeklens.views.spatial_maps`).

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> acts = pl.Activations.from_arrays({"conv": np.random.default_rng(0).random((2 * 3 * 3, 20))},
    ...                                   shapes={"conv": (2, 3, 3)})
    >>> d = heatmap_data(pl.factorize(acts, rank=2, max_iter=5), ["conv"], factor=1)
    >>> d["conv"]["matrix"].shape, d["conv"]["spatial_maps"].shape
    ((18, 2), (2, 3, 3))
    """
    if not 0 <= int(factor) < fit.rank:
        raise InputError(f"factor {factor} does not exist at rank {fit.rank}; choose 0 <= factor < {fit.rank}")
    out = {}
    for layer in layers:
        if layer not in fit.loadings:
            raise InputError(f"no block named {layer!r}; blocks are {list(fit.loadings)}")
        out[layer] = {
            "matrix": views.neuron_factor_matrix(fit, layer),
            "unused_share": float(views.utilisation(fit, layer, threshold)["unused_share"]),
            "spatial_maps": views.spatial_maps(fit, layer, int(factor)),
        }
    return out


def spectrum_frame(spectra: Spectrum | Mapping[str, Spectrum]):
    """Singular values as a long :class:`pandas.DataFrame` (``network, block, index, value``).

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> sp = pl.spectrum(pl.Activations.from_arrays({"a": np.random.default_rng(0).random((6, 20))}), k=3)
    >>> spectrum_frame({"net": sp})[["block", "index"]].values.tolist()
    [['a', 0], ['a', 1], ['a', 2]]
    """
    pd = _pandas()
    if isinstance(spectra, Spectrum):
        spectra = {str(spectra.meta.get("name", "network")): spectra}
    rows = []
    for net, sp in spectra.items():
        for block, vals in sp.values.items():
            v = np.asarray(vals, dtype=np.float64)
            rows.append(pd.DataFrame({"network": str(net), "block": block, "index": np.arange(v.size), "value": v}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["network", "block", "index", "value"])
