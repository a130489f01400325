"""What the widgets sync: the results themselves, as the schema's payload (:mod:`peeklens.schema`).

Every widget gets the schema ``meta`` (JSON) and the ``arrays`` its view needs (key -> little-endian
bytes in C order; ipywidgets sends every ``bytes`` value nested in a synced trait as a binary buffer).
The browser derives the pictures from them with the same TypeScript as the lab document and the
report (``js/core``).  Nothing here imports a widget library, so the payloads can be tested alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from .. import schema
from ..errors import InputError
from ..results import Factorization, Sweep
from ..spectra import Spectrum

__all__ = [
    "as_sweep",
    "sweep_payload",
    "buffers",
    "gallery_keys",
    "shows_tokens",
    "heatmap_keys",
    "layer_names",
    "spectrum_payloads",
    "compare_payloads",
    "interpretation_keys",
    "Payload",
]

Payload = tuple[dict, dict[str, np.ndarray]]


def as_sweep(obj) -> Sweep:
    """A :class:`Sweep` from a Sweep or a single :class:`Factorization`."""
    if isinstance(obj, Sweep):
        if not len(obj):
            raise InputError("this sweep has no finished ranks; nothing to show (run pl.sweep to the end)")
        return obj
    if isinstance(obj, Factorization):
        return Sweep({obj.rank: obj}, quality=obj.quality)
    raise InputError(
        f"expected a peeklens Sweep or Factorization, got {type(obj).__name__}; "
        "make one with pl.sweep(acts, ranks=...) or pl.factorize(acts, rank=...)"
    )


def sweep_payload(sweep: Sweep, *, top_k: int = schema.DISPLAY_TOP_K, class_names=None, decode=None) -> Payload:
    """The schema payload of a sweep without the full inputs (the display section carries the thumbnails,
    or with ``decode`` the text of token samples)."""
    return schema.to_payload(sweep, include_inputs=False, top_k=top_k, class_names=class_names, decode=decode)


def buffers(arrays: Mapping[str, np.ndarray], keys: Iterable[str] | None = None) -> dict[str, bytes]:
    """The raw C-order bytes of some arrays of a payload (all without ``keys``)."""
    keys = list(arrays) if keys is None else list(keys)
    return {k: np.ascontiguousarray(arrays[k]).tobytes() for k in keys}


def _fits(meta: dict) -> list[dict]:
    return list(meta["fits"].values()) if meta["type"] == "Sweep" else [meta["fit"]]


def gallery_keys(meta: dict) -> list[str]:
    """Arrays the latent gallery derives from: F and every loading of each rank, labels, display images."""
    keys = []
    for f in _fits(meta):
        keys += [f["F"], *f["W"], *(f.get("spatial") or {}).values()]  # tensor model: spatial factors too
    if meta.get("labels"):
        keys.append(meta["labels"])
    d = meta.get("display") or {}
    if d.get("samples"):
        keys += [d["samples"], *d["images"]]
    if d.get("patches"):
        keys += [d["patches"][k] for k in ("images", "boxes", "cells")]
    return keys + interpretation_keys(meta)


def shows_tokens(fit: Factorization, decode) -> bool:
    """Whether ``decode`` lets the gallery show this factorization's token samples (text, or image patches)."""
    from ..patches import PatchGrid

    info = fit.sample_info or {}
    return decode is not None and bool(info) and ("token" in info or isinstance(decode, PatchGrid))


def interpretation_keys(meta: dict) -> list[str]:
    """Arrays of the fits' ``interpretation`` sections (maximized images, heatmaps), shown in the gallery."""
    from ..interpret.results import Explanation

    keys = []
    for f in _fits(meta):
        for entry in f.get("interpretation") or []:
            keys += [entry[n] for n in Explanation.ARRAY_FIELDS if entry.get(n)]
    return keys


def layer_names(sweep: Sweep, layers=None) -> list[str]:
    """The layers the heatmaps show: ``layers`` checked, or every layer block."""
    first = next(iter(sweep.values()))
    if layers is None:
        layers = first.layer_names or [n for n in first.blocks if n not in first.input_names]
    layers = [str(n) for n in layers]
    if not layers:
        raise InputError("no layer blocks to show; capture some layers (pl.capture(model, data, layers=[...]))")
    for n in layers:
        if n not in first.loadings:
            raise InputError(f"no block named {n!r}; blocks are {list(first.loadings)}")
    return layers


def heatmap_keys(meta: dict, layers: list[str]) -> list[str]:
    """Arrays the neuron heatmaps derive from: the loadings of ``layers`` at every rank (and, for tensor
    blocks of the tensor model, their spatial factors)."""
    keys = []
    for f in _fits(meta):
        spatial = f.get("spatial") or {}
        for n in layers:
            i = f["names"].index(n)
            keys.append(f["W"][i])
            if str(i) in spatial:
                keys.append(spatial[str(i)])
    return keys


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


def spectrum_payloads(spectra) -> list[dict]:
    """One ``{"name", "meta", "arrays"}`` per network: each Spectrum's schema payload."""
    out = []
    for name, sp in _spectra_dict(spectra).items():
        meta, arrays = schema.to_payload(sp)
        out.append({"name": name, "meta": meta, "arrays": buffers(arrays)})
    return out


def compare_payloads(sweeps: Mapping[str, Sweep], quality: Mapping | None = None) -> list[dict]:
    """Per network ``{"name", "meta", "arrays"}``: the sweep's metadata and its input-side loadings.

    ``quality`` (name -> :class:`~peeklens.Quality`) replaces the sweeps' own ``quality`` (the
    schema's ``quality`` section of ``meta``) for the networks it names.
    """
    if not isinstance(sweeps, Mapping) or not sweeps:
        raise InputError("Compare needs a dict of name -> Sweep, e.g. {'25%': sweep25, '100%': sweep100}")
    quality = dict(quality or {})
    unknown = [k for k in quality if k not in sweeps]
    if unknown:
        raise InputError(f"quality names networks {unknown} that are not compared; the networks are {list(sweeps)}")
    out = []
    for name, sw in sweeps.items():
        sw = as_sweep(sw)
        if name in quality:
            sw = Sweep(sw.fits, interrupted=sw.interrupted, requested=sw.requested, meta=sw.meta, quality=quality[name])
        meta, arrays = schema.to_payload(sw, include_inputs=False, top_k=0)
        inputs = set(next(iter(sw.values())).input_names)
        keys = [k for f in _fits(meta) for n, k in zip(f["names"], f["W"]) if n in inputs]
        out.append({"name": str(name), "meta": meta, "arrays": buffers(arrays, keys)})
    return out
