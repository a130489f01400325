"""The interpretation of a whole fit for the views: every factor's maximized image and attribution heatmaps."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..errors import InputError
from ..results import Factorization, Sweep
from ._inputs import input_spec, positive_int
from ._target import check_factor, layer_spec
from .attribute import ATTRIBUTION_METHODS
from .attribute import attribute as _attribute_one
from .maximize import maximize as _maximize_one
from .results import Explanation, display_images

__all__ = ["explain", "to_uint8"]


def to_uint8(images: np.ndarray, value_range) -> np.ndarray:
    """Pictures ``(n, H, W)`` or ``(n, H, W, 3)`` as ``(n, H, W, C)`` uint8 of ``(v - lo) / (hi - lo)`` clipped.

    Examples
    --------
    >>> import numpy as np
    >>> to_uint8(np.array([[[0.0, 0.5, 2.0]]]), (0, 1)).ravel().tolist()
    [0, 128, 255]
    """
    lo, hi = (float(v) for v in value_range)
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 3:
        x = x[..., None]
    x = np.clip((x - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)
    return np.round(x * 255.0).astype(np.uint8)


def _fits_of(results, ranks) -> dict[int, Factorization]:
    if isinstance(results, Factorization):
        fits = {results.rank: results}
    elif isinstance(results, Sweep):
        fits = dict(results.fits)
    else:
        raise InputError(
            "explain() takes a Factorization or a Sweep (pl.factorize, pl.sweep, pl.load), got "
            f"{type(results).__name__}"
        )
    if not fits:
        raise InputError("this sweep has no finished ranks; nothing to explain")
    if ranks is None:
        return fits
    ranks = [ranks] if isinstance(ranks, (int, np.integer)) else list(ranks)
    missing = [r for r in ranks if r not in fits]
    if missing:
        raise InputError(f"ranks {missing} are not in this sweep; its ranks are {sorted(fits)}")
    return {int(r): fits[r] for r in ranks}


def _method(fit: Factorization, layer: str, attribute) -> str | None:
    if attribute in (None, False):
        return None
    conv = len(fit.blocks.get(layer, {}).get("shape") or ()) == 3
    if attribute == "auto":
        if conv:
            return "spatial"
        try:
            import captum.attr  # noqa: F401
        except ImportError:
            warnings.warn(
                f"layer {layer!r} is not convolutional (shape {fit.blocks[layer].get('shape')}): its factors are "
                "attributed by gradients, which need Captum (pip install captum); explaining without attribution",
                stacklevel=3,
            )
            return None
        return "guided_backprop"
    if attribute not in ATTRIBUTION_METHODS:
        raise InputError(f"attribute must be 'auto', None or one of {ATTRIBUTION_METHODS}, got {attribute!r}")
    if attribute == "spatial" and not conv:
        raise InputError(
            f"attribute='spatial' needs a convolutional layer; {layer!r} has shape {fit.blocks[layer].get('shape')}. "
            "Use attribute='guided_backprop' (Captum) or attribute=None"
        )
    if attribute != "spatial":
        try:
            import captum.attr  # noqa: F401
        except ImportError as e:
            raise InputError(
                f"attribute={attribute!r} uses Captum: pip install captum (attribute='spatial' works without it)"
            ) from e
    return attribute


def explain(
    model: nn.Module,
    results: Factorization | Sweep,
    layer: str,
    *,
    ranks: int | Iterable[int] | None = None,
    factors: Iterable[int] | None = None,
    maximize: bool = True,
    attribute: str | None = "auto",
    n_images: int = 1,
    steps: int = 128,
    top_k: int = 8,
    crop_size: int | tuple[int, int] | None = None,
    seed: int = 0,
    preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
    device: str | torch.device | None = None,
    maximize_options: dict | None = None,
    progress: bool = True,
) -> dict[int, Explanation]:
    """Explain the factors of ``layer`` for the views: maximized images and attributions of top inputs.

    For every chosen rank and factor, :func:`peeklens.maximize` finds the input(s) that maximize the
    factor and :func:`peeklens.attribute` says where in the factor's top ``top_k`` inputs (the
    gallery's thumbnails) its evidence lies, with the hottest region's box.  The result of each rank
    is attached to its factorization (``fit.interpretation[layer]``), so :func:`peeklens.save`, the
    widgets, the JupyterLab document and :func:`peeklens.report.write_report` show it in the latent
    gallery's tiles.

    Parameters
    ----------
    model : torch.nn.Module
        The model the activations were captured from.
    results : Factorization or Sweep
        Its factorization(s); they must carry the captured inputs (``fit.inputs``: capture with
        ``include_input=True``; files saved with ``include_inputs=True`` keep them) for attribution.
    layer : str
        A layer block of the factorization.
    ranks : int or iterable of int, optional
        Ranks of a sweep to explain (default every rank).
    factors : iterable of int, optional
        Factors to explain at every rank (default all; factors beyond a rank are skipped).
    maximize : bool, default True
        Compute the maximizing image(s).
    attribute : {"auto", "spatial", "guided_backprop", "deconvnet", "integrated_gradients"} or None
        Attribution of the top inputs.  ``"auto"``: the factor's own spatial map for convolutional
        layers (no Captum needed), guided backprop (Captum) for dense ones (without Captum: a
        warning, and no attribution).  None: no attribution.
    n_images : int, default 1
        Maximized images per factor (with :func:`peeklens.maximize`'s diversity term when > 1).
    steps : int, default 128
        Optimization steps per maximized image.
    top_k : int, default 8
        Top inputs attributed per factor; give at least the ``top_k`` of :func:`peeklens.save` so
        that every thumbnail gets its heatmap.
    crop_size : int or (int, int), optional
        Size of the hottest-region boxes (default 40 % of the input side).
    seed : int, default 0
        Seed of the maximization.
    preprocess : callable, optional
        Maps captured inputs to what the model takes (e.g. the normalization), as for
        :func:`peeklens.maximize`.
    device : str or torch.device, optional
        Where to work (default: where the model is).
    maximize_options : dict, optional
        More keyword arguments of :func:`peeklens.maximize` (``lr``, ``param``, ``jitter``...).
    progress : bool, default True
        A progress bar over the factors.

    Returns
    -------
    dict of int to Explanation
        Per rank, the :class:`~peeklens.interpret.Explanation` of ``layer`` (also attached to the
        factorization).  Ctrl-C stops the work and keeps the factors that finished (their
        explanation says ``interrupted``); ranks not started are left out.

    Raises
    ------
    InputError, LayerNotFoundError
        Unknown rank, layer or factor, a method the layer does not allow, no inputs to attribute;
        raised before any work starts.

    Examples
    --------
    >>> import torch, peeklens as pl
    >>> from torch import nn
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
    >>> acts = pl.capture(model, torch.rand(30, 1, 8, 8), layers=["1"], progress=False)
    >>> fit = pl.factorize(acts, rank=2, max_iter=20)
    >>> ex = pl.explain(model, fit, "1", steps=10, top_k=3, progress=False)[2]
    >>> ex.maximized.shape, ex.heatmaps.shape, ex.samples.shape, ex.method
    ((2, 1, 8, 8, 1), (2, 3, 8, 8), (2, 3), 'spatial')
    >>> fit.interpretation["1"] is ex
    True
    """
    from .. import views

    fits = _fits_of(results, ranks)
    n_images = positive_int("n_images", n_images)
    steps = positive_int("steps", steps)
    top_k = positive_int("top_k", top_k)
    if not maximize and attribute in (None, False):
        raise InputError("nothing to do: maximize=False and attribute=None")
    plan: list[tuple[int, Factorization, list[int]]] = []
    first = next(iter(fits.values()))
    for r, fit in fits.items():
        if factors is None:
            chosen = list(range(fit.rank))
        else:
            chosen = [int(f) for f in factors if isinstance(f, (int, np.integer)) and 0 <= int(f) < fit.rank]
            bad = [f for f in factors if not isinstance(f, (int, np.integer)) or int(f) < 0]
            if bad:
                raise InputError(f"factors must be non-negative integers, got {bad}")
            if not chosen:
                raise InputError(f"none of factors {list(factors)} exists at rank {r} (factors 0..{fit.rank - 1})")
        for f in chosen:
            check_factor(fit, layer, f)
        plan.append((r, fit, chosen))
    layer_spec(model, first, layer)  # the model has the layer (LayerNotFoundError before any work)
    method = _method(first, layer, attribute)
    if method is not None and not first.inputs:
        raise InputError(
            "attribution needs the captured inputs, and this factorization carries none; capture with "
            "include_input=True (or load a file saved with include_inputs=True), or pass attribute=None"
        )
    spec = input_spec(first, stats=False)
    value_range = list(views.input_range(first)) if first.inputs else [spec.low, spec.high]
    options = dict(maximize_options or {})
    for k in ("n", "steps", "seed", "progress", "device", "preprocess"):
        if k in options:
            raise InputError(f"maximize_options may not set {k!r}; it is an argument of explain()")
    settings = {"n_images": n_images, "steps": steps, "seed": int(seed), "top_k": top_k, **options}
    out: dict[int, Explanation] = {}
    bar = tqdm(total=sum(len(c) for _, _, c in plan), desc=f"explain {layer}", unit="factor", disable=not progress)
    interrupted = False
    try:
        for r, fit, chosen in plan:
            rows: list[dict] = []
            try:
                for f in chosen:
                    row = _one_factor(
                        model, fit, layer, f, maximize, method, value_range, top_k, crop_size, options,
                        n_images=n_images, steps=steps, seed=seed, device=device, preprocess=preprocess,
                    )  # fmt: skip
                    rows.append({"factor": f, **row})
                    bar.update(1)
            except KeyboardInterrupt:
                interrupted = True
            if rows:
                ex = _assemble(layer, fit.rank, rows, method, value_range, top_k, interrupted, settings)
                out[r] = ex
                fit.interpretation = {**(fit.interpretation or {}), layer: ex}
            if interrupted:
                break
    finally:
        bar.close()
    if interrupted:
        done = sum(len(e.factors) for e in out.values())
        warnings.warn(f"explain interrupted: keeping the {done} factors that finished", stacklevel=2)
    return out


def _one_factor(model, fit, layer, f, maximize, method, value_range, top_k, crop_size, options, **kw) -> dict:
    """The arrays of one factor (one row of the explanation); KeyboardInterrupt when interrupted."""
    from .. import views

    row: dict = {}
    if maximize:
        m = _maximize_one(model, fit, layer, f, n=kw["n_images"], steps=kw["steps"], seed=kw["seed"],
                          device=kw["device"], preprocess=kw["preprocess"], progress=False, **options)  # fmt: skip
        if m.interrupted:  # maximize keeps finished images; a factor counts when all finished
            raise KeyboardInterrupt
        row["maximized"] = to_uint8(display_images(m.inputs), value_range)
        row["maximized_scores"] = m.scores.astype(np.float32)
        row["reference"] = np.float32(m.reference)
    if method is not None:
        idx = views.top_inputs(fit, top_k)[f]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*plain gradient.*")
            a = _attribute_one(model, fit, layer, f, idx, method=method, crops=True, crop_size=crop_size,
                               device=kw["device"], preprocess=kw["preprocess"])  # fmt: skip
        heat = a.heatmaps.reshape(len(idx), *a.heatmaps.shape[-2:]).astype(np.float32)
        scale = heat.reshape(len(idx), -1).max(axis=1)
        safe = np.where(scale > 0, scale, 1.0)[:, None, None]
        row["samples"] = idx.astype(np.int64)
        row["heatmaps"] = np.round(np.clip(heat / safe, 0, 1) * 255).astype(np.uint8)
        row["heat_scale"] = scale.astype(np.float32)
        row["scores"] = a.scores.astype(np.float32)
        row["boxes"] = np.zeros((len(idx), 4), np.int32) if a.boxes is None else a.boxes.astype(np.int32)
    return row


def _assemble(layer, rank, rows, method, value_range, top_k, interrupted, settings) -> Explanation:
    def stack(name, dtype):
        if name not in rows[0]:
            return None
        return np.ascontiguousarray(np.stack([np.asarray(r[name]) for r in rows]).astype(dtype))

    return Explanation(
        layer=layer,
        rank=int(rank),
        factors=np.asarray([r["factor"] for r in rows], dtype=np.int64),
        method=method,
        value_range=[float(v) for v in value_range],
        top_k=int(rows[0]["samples"].shape[0]) if "samples" in rows[0] else 0,
        maximized=stack("maximized", np.uint8),
        maximized_scores=stack("maximized_scores", np.float32),
        reference=stack("reference", np.float32),
        samples=stack("samples", np.int64),
        heatmaps=stack("heatmaps", np.uint8),
        heat_scale=stack("heat_scale", np.float32),
        scores=stack("scores", np.float32),
        boxes=stack("boxes", np.int32),
        interrupted=bool(interrupted),
        settings=dict(settings),
    )
