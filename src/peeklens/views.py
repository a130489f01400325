"""Plain arrays derived from a factorization, for every front end.

The widgets, the CLI report and the JupyterLab extension all draw from these
functions; nothing here knows about widgets or HTML.  All functions take a
:class:`~peeklens.Factorization` (from ``factorize``, a ``Sweep`` or
``load``) and return NumPy arrays.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError
from .nmf.tensor import tensor_loadings, tensor_spatial_maps
from .results import Factorization

__all__ = [
    "latent_images",
    "top_inputs",
    "input_images",
    "input_range",
    "thumbnails",
    "class_histograms",
    "neuron_factor_matrix",
    "is_tensor",
    "is_signed",
    "channel_factor_matrix",
    "factor_spatial_maps",
    "spatial_maps",
    "utilisation",
    "factor_strength",
]


def _input_shape(fit: Factorization) -> tuple[list[str], tuple[int, ...]]:
    names = fit.input_names
    if not names:
        raise InputError(
            "this factorization has no input-channel blocks; capture with include_input=True to see latent images"
        )
    shape = tuple(fit.blocks[names[0]]["shape"])
    return names, shape


def _to_image(channels: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """Stack per-channel (..., pixels) arrays into (..., H, W) or (..., H, W, 3)."""
    if len(shape) == 1:  # flat inputs: show as a 1 x N strip
        shape = (1, shape[0])
    imgs = [c.reshape(c.shape[:-1] + shape) for c in channels]
    if len(imgs) == 3:
        return np.stack(imgs, axis=-1)
    return imgs[0] if len(imgs) == 1 else np.mean(imgs, axis=0)


def latent_images(fit: Factorization, *, normalize: bool = True) -> np.ndarray:
    """The input-side loadings ``P_i[:, r]`` folded back into images (paper Fig. 2).

    Returns
    -------
    numpy.ndarray
        (rank, H, W) for one input channel, (rank, H, W, 3) for three (RGB), float32.
        With ``normalize`` each factor's image is scaled to [0, 1] by its maximum (over channels).

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> rng = np.random.default_rng(0)
    >>> acts = pl.Activations.from_arrays({"input:0": rng.random((16, 30))}, shapes={"input:0": (4, 4)})
    >>> latent_images(pl.factorize(acts, rank=2, max_iter=5)).shape
    (2, 4, 4)
    """
    names, shape = _input_shape(fit)
    chans = [np.asarray(fit.loadings[n], dtype=np.float32).T for n in names]  # (rank, pixels)
    img = _to_image(chans, shape).astype(np.float32)
    if normalize:
        axes = tuple(range(1, img.ndim))
        peak = img.max(axis=axes, keepdims=True)
        img = np.divide(img, peak, out=np.zeros_like(img), where=peak > 0)
    return img


def top_inputs(fit: Factorization, k: int = 8) -> np.ndarray:
    """Indices of the ``k`` samples that load most on each factor (largest ``F[:, r]``).

    Returns an int64 array (rank, k), strongest first.
    """
    k = int(min(max(k, 1), fit.n_samples))
    F = np.asarray(fit.F)
    idx = np.argpartition(-F, k - 1, axis=0)[:k]  # (k, rank), unordered
    vals = np.take_along_axis(F, idx, axis=0)
    order = np.argsort(-vals, axis=0, kind="stable")
    return np.take_along_axis(idx, order, axis=0).T.astype(np.int64)


def input_images(fit: Factorization, indices) -> np.ndarray:
    """The input images of some samples, from the inputs kept with the factorization.

    ``indices`` of any shape gives an array of shape ``indices.shape + (H, W)`` (or ``(H, W, 3)``),
    with the values as captured.
    """
    names, shape = _input_shape(fit)
    if not fit.inputs:
        raise InputError(
            "this factorization carries no input images (saved with include_inputs=False?); "
            "factorize Activations captured with include_input=True"
        )
    indices = np.asarray(indices, dtype=np.int64)
    chans = [np.asarray(fit.inputs[n])[:, indices.reshape(-1)].T for n in names]  # (m, pixels)
    img = _to_image(chans, shape)
    return img.reshape(indices.shape + img.shape[1:]).astype(np.float32)


def input_range(fit: Factorization) -> tuple[float, float]:
    """Minimum and maximum over the input-channel blocks kept with the factorization.

    The one thumbnail normalisation of every front end maps ``v`` to ``(v - lo) / (hi - lo)``.
    """
    names, _ = _input_shape(fit)
    if not fit.inputs:
        raise InputError("this factorization carries no input images (saved with include_inputs=False?)")
    return (min(float(np.min(fit.inputs[n])) for n in names), max(float(np.max(fit.inputs[n])) for n in names))


def thumbnails(fit: Factorization, k: int = 8) -> np.ndarray:
    """Each factor's top-``k`` input images as the views show them: scaled by :func:`input_range` into [0, 1].

    Returns (rank, k, H, W) or (rank, k, H, W, 3), float32.

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> rng = np.random.default_rng(0)
    >>> acts = pl.Activations.from_arrays({"input:0": rng.random((16, 30))}, shapes={"input:0": (4, 4)})
    >>> t = thumbnails(pl.factorize(acts, rank=2, max_iter=5), k=3)
    >>> t.shape, bool(t.min() >= 0 and t.max() <= 1)
    ((2, 3, 4, 4), True)
    """
    lo, hi = input_range(fit)
    img = input_images(fit, top_inputs(fit, k))
    if hi > lo:
        img = np.clip((img - lo) / (hi - lo), 0, 1)
    return img.astype(np.float32)


def class_histograms(fit: Factorization, k: int = 50, n_classes: int | None = None) -> np.ndarray | None:
    """Counts of the labels of each factor's top-``k`` inputs: (rank, n_classes), or None without labels.

    Labels are display-only: they never enter the factorization.
    """
    if fit.labels is None:
        return None
    labels = np.asarray(fit.labels).astype(np.int64)
    n_classes = int(n_classes or (labels.max() + 1 if labels.size else 0))
    top = top_inputs(fit, k)
    out = np.zeros((fit.rank, n_classes), dtype=np.int64)
    for r in range(fit.rank):
        out[r] = np.bincount(labels[top[r]], minlength=n_classes)[:n_classes]
    return out


def is_tensor(fit: Factorization, layer: str) -> bool:
    """Whether ``layer`` is a tensor block of a tensor-model fit (``loadings`` channels x rank plus ``spatial``).

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> acts = pl.Activations.from_arrays({"conv": np.random.default_rng(0).random((12, 20))},
    ...                                   shapes={"conv": (3, 2, 2)})
    >>> fits = [pl.factorize(acts, 2, model=m, max_iter=5) for m in ("tensor", "matrix")]
    >>> [is_tensor(f, "conv") for f in fits]
    [True, False]
    """
    return layer in (fit.spatial or {})


def is_signed(fit: Factorization, layer: str) -> bool:
    """Whether ``layer`` is a signed block (semi-NMF: its loadings take both signs).

    Read from the block description (``fit.blocks[layer]["signed"]``) or, for fits whose blocks do not
    say, from ``fit.settings["signed"]``.

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> acts = pl.Activations.from_arrays({"h": np.random.default_rng(0).standard_normal((4, 20))}, signed=["h"])
    >>> is_signed(pl.factorize(acts, 2, max_iter=5), "h")
    True
    """
    info = fit.blocks.get(layer, {})
    if "signed" in info:
        return bool(info["signed"])
    return layer in (fit.settings.get("signed") or [])


def _check_layer(fit: Factorization, layer: str) -> None:
    if layer not in fit.loadings:
        raise InputError(f"no block named {layer!r}; blocks are {list(fit.loadings)}")


def _normalized(M: np.ndarray, normalize: str | None) -> np.ndarray:
    """Scale by the largest magnitude (of the matrix or of each column): signed values keep their sign."""
    A = np.abs(M)
    if normalize == "global":
        m = float(A.max()) if A.size else 0.0
        return M / m if m > 0 else M.copy()
    if normalize == "column":
        m = A.max(axis=0, keepdims=True)
        return np.divide(M, m, out=np.zeros_like(M), where=m > 0)
    if normalize is None:
        return M.copy()
    raise InputError(f"normalize must be 'global', 'column' or None, got {normalize!r}")


def neuron_factor_matrix(fit: Factorization, layer: str, *, normalize: str | None = "global") -> np.ndarray:
    """The neurons x factors matrix ``O_j`` of one layer (paper Fig. 9).

    For a tensor block (``model="tensor"``) the neurons' loadings are the CP model's outer products
    channel x position: row ``c * positions + p`` of factor ``r`` is ``C[c, r] * S[p, r]``, so the
    matrix has the same shape and meaning as the matrix model's (see
    :func:`peeklens.nmf.tensor.tensor_loadings`).

    Parameters
    ----------
    normalize : {"global", "column", None}
        Scale by the layer's largest magnitude (``"global"``: values in [0, 1], or [-1, 1] for a
        signed block), by each factor's largest magnitude (``"column"``), or not at all.

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> acts = pl.Activations.from_arrays({"conv": np.random.default_rng(0).random((12, 20))},
    ...                                   shapes={"conv": (3, 2, 2)})
    >>> neuron_factor_matrix(pl.factorize(acts, 2, model="tensor", max_iter=5), "conv").shape
    (12, 2)
    """
    _check_layer(fit, layer)
    return _normalized(np.asarray(tensor_loadings(fit, layer), dtype=np.float32), normalize)


def channel_factor_matrix(fit: Factorization, layer: str, *, normalize: str | None = "global") -> np.ndarray:
    """The channels x factors matrix of a tensor block: its CP channel factor ``C_j``.

    What the views draw as the tensor lens' heatmap, beside one spatial map per factor
    (:func:`factor_spatial_maps`). ``normalize`` as in :func:`neuron_factor_matrix`.

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> acts = pl.Activations.from_arrays({"conv": np.random.default_rng(0).random((12, 20))},
    ...                                   shapes={"conv": (3, 2, 2)})
    >>> channel_factor_matrix(pl.factorize(acts, 2, model="tensor", max_iter=5), "conv").shape
    (3, 2)
    """
    _check_layer(fit, layer)
    if not is_tensor(fit, layer):
        raise InputError(
            f"block {layer!r} is not a tensor block (tensor blocks of this fit: {sorted(fit.spatial or {})}); "
            "factorize with model='tensor', or use neuron_factor_matrix for a matrix block"
        )
    return _normalized(np.asarray(fit.loadings[layer], dtype=np.float32), normalize)


def factor_spatial_maps(fit: Factorization, layer: str) -> np.ndarray:
    """A tensor block's spatial factor folded to one (H x W) map per factor: (rank, H, W), float32.

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> acts = pl.Activations.from_arrays({"conv": np.random.default_rng(0).random((12, 20))},
    ...                                   shapes={"conv": (3, 2, 2)})
    >>> factor_spatial_maps(pl.factorize(acts, 2, model="tensor", max_iter=5), "conv").shape
    (2, 2, 2)
    """
    _check_layer(fit, layer)
    return np.asarray(tensor_spatial_maps(fit, layer), dtype=np.float32)


def spatial_maps(fit: Factorization, layer: str, factor: int) -> np.ndarray:
    """Factor ``factor``'s loadings on ``layer`` folded to (C, H, W): one small map per channel.

    Dense layers (shape (N,)) give (1, 1, N). For a tensor block the maps are the outer product of
    the factor's channel and spatial loadings (``C[c, r] * S[:, r]`` for channel ``c``).

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> acts = pl.Activations.from_arrays({"conv": np.random.default_rng(0).random((12, 20))},
    ...                                   shapes={"conv": (3, 2, 2)})
    >>> spatial_maps(pl.factorize(acts, 2, model="tensor", max_iter=5), "conv", 1).shape
    (3, 2, 2)
    """
    _check_layer(fit, layer)
    if not 0 <= int(factor) < fit.rank:
        raise InputError(f"factor {factor} is out of range for rank {fit.rank}")
    Oj = np.asarray(tensor_loadings(fit, layer), dtype=np.float32)[:, int(factor)]
    shape = tuple(fit.blocks[layer]["shape"])
    if len(shape) == 3:
        return Oj.reshape(shape)
    if len(shape) == 2:
        return Oj.reshape((1,) + shape)
    return Oj.reshape(1, 1, -1)


def utilisation(fit: Factorization, layer: str, threshold: float = 0.01) -> dict:
    """How much of a layer the factors use.

    A neuron is *negligible* when the magnitude of its loading on every factor is below
    ``threshold`` times the layer's largest magnitude (``|loading|``: signed blocks count negative
    loadings as used). A tensor block's neurons are its channel x position outer products.

    Returns
    -------
    dict
        ``unused_share`` (fraction of negligible neurons), ``unused`` (bool mask per neuron) and,
        for convolutional layers, ``unused_channels`` (channels whose neurons are all negligible).

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> X = np.random.default_rng(0).random((4, 20)); X[3] = 0
    >>> fit = pl.factorize(pl.Activations.from_arrays({"fc": X}), 2, max_iter=20)
    >>> utilisation(fit, "fc")["unused"].tolist()
    [False, False, False, True]
    """
    _check_layer(fit, layer)
    Oj = np.abs(np.asarray(tensor_loadings(fit, layer), dtype=np.float32))
    peak = float(Oj.max()) if Oj.size else 0.0
    unused = Oj.max(axis=1) < threshold * peak if peak > 0 else np.ones(Oj.shape[0], bool)
    out = {"unused_share": float(unused.mean()) if unused.size else 0.0, "unused": unused}
    shape = tuple(fit.blocks[layer]["shape"])
    if len(shape) == 3:
        out["unused_channels"] = np.flatnonzero(unused.reshape(shape[0], -1).all(axis=1))
    return out


def factor_strength(fit: Factorization) -> np.ndarray:
    """Share of the (unweighted) model energy carried by each factor, summing to 1.

    ``||F[:, r]|| * sqrt(sum_b ||W_b[:, r]||^2)`` normalized; useful to order tiles. For a tensor
    block ``W_b`` is the Khatri-Rao product of its channel and spatial factors.
    """
    fn = np.linalg.norm(np.asarray(fit.F, dtype=np.float64), axis=0)
    wn = np.sqrt(sum(np.sum(np.asarray(tensor_loadings(fit, n), dtype=np.float64) ** 2, axis=0) for n in fit.loadings))
    s = fn * wn
    total = s.sum()
    return (s / total) if total > 0 else s
