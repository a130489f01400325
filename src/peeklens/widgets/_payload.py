"""Widget payloads: plain dicts of binary float32/int32 buffers built from results.

Nothing here imports a widget library, so the payloads can be tested (and reused) alone.
Numbers travel as ``bytes`` (little-endian float32 / int32), never as JSON lists of floats;
ipywidgets sends every ``bytes`` value nested in a synced trait as a binary buffer.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .. import views
from ..errors import InputError
from ..results import Factorization, Sweep
from ..spectra import Spectrum

__all__ = [
    "f32",
    "i32",
    "as_sweep",
    "explorer_payload",
    "gallery_payload",
    "heatmap_payload",
    "spectrum_series",
    "compare_networks",
]


def f32(a) -> bytes:
    """Little-endian float32 bytes of an array (C order)."""
    return np.ascontiguousarray(np.asarray(a, dtype="<f4")).tobytes()


def i32(a) -> bytes:
    """Little-endian int32 bytes of an array (C order)."""
    return np.ascontiguousarray(np.asarray(a, dtype="<i4")).tobytes()


def as_sweep(obj) -> Sweep:
    """A :class:`Sweep` from a Sweep or a single :class:`Factorization`."""
    if isinstance(obj, Sweep):
        if not len(obj):
            raise InputError("this sweep has no finished ranks; nothing to show (run pl.sweep to the end)")
        return obj
    if isinstance(obj, Factorization):
        return Sweep({obj.rank: obj})
    raise InputError(
        f"expected a peeklens Sweep or Factorization, got {type(obj).__name__}; "
        "make one with pl.sweep(acts, ranks=...) or pl.factorize(acts, rank=...)"
    )


def explorer_payload(sweep: Sweep) -> dict:
    """Ranks, RMSE per rank and relative error per block (blocks x ranks)."""
    errs = sweep.errors()
    names = list(errs)
    table = np.stack([errs[n] for n in names]) if names else np.zeros((0, len(sweep)))
    return {
        "ranks": [int(r) for r in sweep.ranks],
        "rmse": f32(sweep.rmse),
        "block_names": [str(n) for n in names],
        "block_errors": f32(table),
    }


def _channels_last(img: np.ndarray) -> np.ndarray:
    """(n, H, W) -> (n, H, W, 1); (n, H, W, 3) stays."""
    return img[..., None] if img.ndim == 3 else img


def gallery_payload(sweep: Sweep, top_k: int = 8, hist_k: int = 50, class_names=None) -> dict:
    """Latent images, top-k input images and class histograms for every rank of a sweep."""
    first = next(iter(sweep.values()))
    if not first.input_names:
        raise InputError(
            "the latent gallery needs input-channel blocks; capture with include_input=True "
            "(pl.capture(model, data, include_input=True))"
        )
    n_classes = 0
    if first.labels is not None and np.asarray(first.labels).size:
        n_classes = int(np.asarray(first.labels).max()) + 1
    names = [str(c) for c in class_names] if class_names is not None else [str(i) for i in range(n_classes)]
    if class_names is not None and len(names) < n_classes:
        raise InputError(f"class_names has {len(names)} names but the labels go up to {n_classes - 1}")
    lo = hi = None
    if first.inputs:
        lo = min(float(np.min(first.inputs[n])) for n in first.input_names)
        hi = max(float(np.max(first.inputs[n])) for n in first.input_names)
    fits = []
    shape = None
    for rank, fit in sweep.items():
        lat = _channels_last(views.latent_images(fit))
        shape = [int(s) for s in lat.shape[1:]]
        entry = {"rank": int(rank), "latents": f32(lat), "top": None, "hist": None,
                 "strength": f32(views.factor_strength(fit))}
        if top_k > 0 and fit.inputs:
            idx = views.top_inputs(fit, top_k)
            imgs = _channels_last(views.input_images(fit, idx.reshape(-1)))
            if hi is not None and hi > lo:
                imgs = (imgs - lo) / (hi - lo)
            entry["top"] = f32(np.clip(imgs, 0, 1))
        if n_classes:
            entry["hist"] = i32(views.class_histograms(fit, hist_k, n_classes))
        fits.append(entry)
    k = int(min(max(top_k, 0), first.n_samples)) if first.inputs else 0
    return {"image_shape": shape, "top_k": k, "n_classes": n_classes, "class_names": names, "fits": fits}


def heatmap_payload(sweep: Sweep, layers=None, threshold: float = 0.01) -> dict:
    """Raw loadings (neurons x rank) of every layer block, and its unused share, for every rank."""
    first = next(iter(sweep.values()))
    if layers is None:
        layers = first.layer_names or [n for n in first.blocks if n not in first.input_names]
    layers = [str(n) for n in layers]
    if not layers:
        raise InputError("no layer blocks to show; capture some layers (pl.capture(model, data, layers=[...]))")
    for n in layers:
        if n not in first.loadings:
            raise InputError(f"no block named {n!r}; blocks are {list(first.loadings)}")
    shapes = [[int(s) for s in first.blocks[n]["shape"]] for n in layers]
    fits = []
    for rank, fit in sweep.items():
        fits.append({
            "rank": int(rank),
            "loadings": [f32(fit.loadings[n]) for n in layers],
            "unused": f32([views.utilisation(fit, n, threshold)["unused_share"] for n in layers]),
        })
    return {"layer_names": layers, "layer_shapes": shapes, "threshold": float(threshold), "fits": fits}


def _spectra_dict(spectra) -> dict[str, Spectrum]:
    if isinstance(spectra, Spectrum):
        return {str(spectra.meta.get("name", "network")): spectra}
    if isinstance(spectra, Mapping):
        out = {}
        for k, v in spectra.items():
            if not isinstance(v, Spectrum):
                raise InputError(f"spectra[{k!r}] is a {type(v).__name__}, expected a Spectrum from pl.spectrum(acts)")
            out[str(k)] = v
        return out
    raise InputError(
        f"expected a Spectrum (pl.spectrum(acts)) or a dict name -> Spectrum, got {type(spectra).__name__}"
    )


def spectrum_series(spectra, layers=None, k: int | None = None) -> list[dict]:
    """One series per (network, layer): ``{"network", "layer", "values"}`` with float32 bytes."""
    out = []
    for net, sp in _spectra_dict(spectra).items():
        names = sp.names if layers is None else [n for n in layers if n in sp.values]
        for n in names:
            v = np.asarray(sp.values[n], dtype=np.float32)
            out.append({"network": net, "layer": str(n), "values": f32(v[:k] if k else v)})
    return out


def compare_networks(sweeps: Mapping[str, Sweep]) -> tuple[list[dict], list[int]]:
    """Per network: ranks, RMSE and the latent images at every rank (for the side-by-side galleries)."""
    if not isinstance(sweeps, Mapping) or not sweeps:
        raise InputError("Compare needs a dict of name -> Sweep, e.g. {'25%': sweep25, '100%': sweep100}")
    nets = []
    shape = [1, 1, 1]
    for name, sw in sweeps.items():
        sw = as_sweep(sw)
        lats = []
        for fit in sw.values():
            if fit.input_names:
                lat = _channels_last(views.latent_images(fit))
                shape = [int(s) for s in lat.shape[1:]]
                lats.append(f32(lat))
        nets.append({"name": str(name), "ranks": [int(r) for r in sw.ranks], "rmse": f32(sw.rmse),
                     "latents": lats, "image_shape": shape})
    return nets, shape
