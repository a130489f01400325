"""The results schema: the one contract from Python to every front end (version 2).

A result (:class:`~peeklens.Activations`, :class:`~peeklens.Factorization`, :class:`~peeklens.Sweep`
or :class:`~peeklens.Spectrum`) becomes a *payload*: a JSON-ready ``meta`` dict and named NumPy
``arrays`` referred to from ``meta`` by key.  :func:`peeklens.save` writes the payload as a zip
(``meta.json`` + ``<key>.npy``); the widgets sync the same payload (``meta`` as JSON, arrays as binary
buffers); the JupyterLab document and the offline HTML report read the zip.  Every front end then
derives and draws the pictures with the same TypeScript (``js/core``), described in
``js/core/schema.ts``, the TypeScript copy of this page.

``meta`` (every payload)
    ``format`` ("peeklens"), ``format_version`` (:data:`FORMAT_VERSION`), ``type``, ``peeklens``,
    ``torch``, ``numpy`` (versions), ``created`` (UTC, ISO 8601), ``shapes`` and ``dtypes`` (NumPy
    ``str`` descr, little-endian) of every array key.  In a file, also ``sha256`` (hex digest of each
    ``.npy`` member); the file's ``meta.json.sha256`` member holds the digest of the exact
    ``meta.json`` bytes, so an edited metadata file is refused.

``type == "Factorization"``
    ``fit``: one *fit* (below), plus the *sample* fields (below) in ``fit``.

``type == "Sweep"``
    ``ranks``, ``requested``, ``interrupted``, ``info``; ``fits``: rank (as text) -> *fit*; plus the
    *sample* fields at the top level (shared by every rank).

A *fit*
    ``rank``, ``names`` (blocks, in order), ``F`` (key of samples x rank), ``W`` (keys of each block's
    features x rank loadings), ``objective`` (key), ``errors`` (per block), ``rmse``, ``n_iter``,
    ``converged``, ``seconds``, ``settings``, ``blocks`` (per block: ``kind`` "input"/"layer",
    per-sample ``shape``, ``n_features``), ``spatial`` (tensor model only: block position -> key of
    its spatial factor, positions x rank; else null); optionally ``interpretation`` (below).

``interpretation`` of a fit (optional; absent or null when the factors were not explained)
    A list, one entry per explained layer block (:func:`peeklens.explain`,
    :class:`peeklens.interpret.Explanation`): ``layer``, ``rank``, ``method`` (attribution method
    or null), ``value_range`` ``[lo, hi]``, ``top_k``, ``interrupted``, ``settings``, and keys (or null) of

    - ``factors``: (m,) int64, the explained factors, one row of every array below per factor;
    - ``maximized``: (m, n, H, W, C) uint8, C 1 or 3: the inputs that maximize each factor as
      pictures, ``255 * clip((v - lo) / (hi - lo), 0, 1)`` (the thumbnails' normalisation);
    - ``maximized_scores`` (m, n) and ``reference`` (m,) float32: the factor's activation of the
      maximized inputs and of its top captured input;
    - ``samples``: (m, top_k) int64, the attributed samples: each factor's top inputs (largest
      ``F[:, r]``, as ``display``), which the views match to their thumbnails by sample index;
    - ``heatmaps``: (m, top_k, H, W) uint8, attribution maps on the input grid divided by their maximum
      ``heat_scale`` (m, top_k) float32, times 255; ``scores`` (m, top_k) float32, the factor's
      activation of each sample; ``boxes`` (m, top_k, 4) int32, ``top, left, height, width`` of the
      hottest region.

    An optional key: files without it read as before, and readers that do not know it ignore it, so
    the format version stays 2.

The *sample* fields (data the factorization does not own, kept for display only)
    ``labels``: key of the per-sample labels (int64) or null; they never enter the factorization.
    ``inputs``: ``{"names", "arrays"}`` (keys of the full pixels x samples input-channel blocks) or
    null; in files only, and only with ``include_inputs=True`` (:class:`Factorization.inputs`).
    ``display``: the samples the views show, or null without input-channel blocks (or token text):

    - ``top_k``: thumbnails per factor;
    - ``samples``: key of the sorted sample indices (int64): the union, over every rank and factor, of
      the ``top_k`` samples with the largest ``F[:, r]`` (:func:`peeklens.views.top_inputs`);
    - ``images``: keys, one per input channel, of (pixels x len(samples)) float32: those samples' columns;
    - ``value_range``: ``[lo, hi]``, minimum and maximum over the full input blocks: thumbnails are
      shown as ``(v - lo) / (hi - lo)`` clipped to [0, 1] (the one thumbnail normalisation);
    - ``class_names``: names of the label classes, or null (the class index is shown);
    - ``text`` (optional): for token samples saved with ``decode=``, one string per entry of ``samples``:
      the token with a few tokens of context from the same input, the token in brackets
      (:func:`token_texts`); ``images`` is then empty when the capture kept no input block;
    - ``patches`` (optional): for image-patch token samples saved with ``decode=PatchGrid(...)``, keys of
      ``images`` (len(samples), h, w, C) float32 in [0, 1], each patch with a margin of its neighbours,
      ``boxes`` (len(samples), 4) int32 ``top, left, height, width`` of the patch in it, and ``cells``
      (len(samples), 2) int32, its row and column in the image's patch grid (-1: no patch, e.g. CLS)
      (:func:`peeklens.patches.patch_crops`).

``quality`` (Sweep and Factorization payloads; absent when not measured)
    The network's label-free training-quality score (:func:`peeklens.quality`), set on the result
    as ``sweep.quality = pl.quality(acts)`` and saved with it: ``score``, ``components`` (name ->
    number), ``used`` (the components the score is made of), ``layers``, ``n_samples``,
    ``fingerprint`` (hash of the test inputs and layers: equal fingerprints mean comparable scores),
    ``calibration`` (what the calibration study measured: held-out Spearman ``rho`` and Kendall ``tau``
    with their 95 % intervals ``rho_ci`` / ``tau_ci``, ``seed_noise``: score differences up to it are
    within the noise between seeds) and ``seconds``.  Non-finite numbers are stored as null.  The
    comparison views rank networks by ``score``.

``type == "Activations"``
    ``names``, ``blocks`` (``info()`` of each: ``kind``, ``shape``, ``transform``, ``signed``), ``arrays``
    (keys, features x samples), ``labels``, ``info``, ``sample_info`` (null, or name -> key of a per-sample
    array: for token samples the source sample, position and token id, see :func:`peeklens.capture`).

``type == "Spectrum"``
    ``names``, ``k``, ``values`` (keys), ``entropy_rank``, ``stable_rank``, ``method``, ``info``.

Files of format version 1 (no ``display``, no ``dtypes``, no metadata digest) are still read.

Examples
--------
>>> import numpy as np, peeklens as pl
>>> rng = np.random.default_rng(0)
>>> acts = pl.Activations.from_arrays({"input:0": rng.random((4, 12)), "fc": rng.random((3, 12))},
...                                   shapes={"input:0": (2, 2)}, labels=np.arange(12) % 3)
>>> sweep = pl.sweep(acts, ranks=[1, 2], max_iter=5, progress=False)
>>> meta, arrays = to_payload(sweep, include_inputs=False)
>>> meta["type"], meta["fits"]["2"]["F"], arrays["r2.F"].shape
('Sweep', 'r2.F', (12, 2))
>>> back = from_payload(meta, arrays.__getitem__)
>>> np.allclose(back[2].F, sweep[2].F)
True
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from . import views
from ._version import __version__
from .activations import Activations, Block
from .errors import FileFormatError, InputError
from .patches import PatchGrid, patch_crops
from .results import Factorization, Sweep
from .spectra import Spectrum

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "READABLE_VERSIONS",
    "DISPLAY_TOP_K",
    "Result",
    "to_payload",
    "from_payload",
    "check_header",
    "display_samples",
    "token_texts",
]

FORMAT_NAME = "peeklens"
#: Version 2: ``dtypes``, the ``display`` section, and the metadata digest in files.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
#: Thumbnails per factor kept in the ``display`` section by default.
DISPLAY_TOP_K = 8

Result = Activations | Factorization | Sweep | Spectrum


class _Arrays:
    """Collects the arrays of a payload under their keys."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def put(self, key: str, arr) -> str:
        arr = np.asarray(arr)
        if arr.dtype == object:
            raise InputError(f"cannot save array {key!r} of dtype object (no pickle in peeklens files)")
        self.arrays[key] = arr
        return key


def _jsonable(v: Any):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return repr(v)


def display_samples(fits: Sequence[Factorization], top_k: int = DISPLAY_TOP_K) -> np.ndarray:
    """The sorted indices of the samples the views show: every fit's top-``top_k`` samples per factor.

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> F = np.array([[1.0, 0.0], [0.0, 3.0], [2.0, 1.0]])
    >>> fit = pl.Factorization(F=F, loadings={}, errors={}, rmse=0.0, objective=np.zeros(1), n_iter=1,
    ...                        converged=True, seconds=0.0, settings={})
    >>> display_samples([fit], top_k=1).tolist()
    [1, 2]
    """
    chosen = [views.top_inputs(f, top_k).ravel() for f in fits if f.n_samples]
    if not chosen:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate(chosen)).astype(np.int64)


def _fit_meta(a: _Arrays, fit: Factorization, prefix: str) -> dict:
    names = list(fit.loadings)
    return {
        "rank": fit.rank,
        "names": names,
        "F": a.put(f"{prefix}F", fit.F),
        "W": [a.put(f"{prefix}W.{i}", fit.loadings[n]) for i, n in enumerate(names)],
        "objective": a.put(f"{prefix}objective", fit.objective),
        "errors": [float(fit.errors[n]) for n in names],
        "rmse": float(fit.rmse),
        "n_iter": int(fit.n_iter),
        "converged": bool(fit.converged),
        "seconds": float(fit.seconds),
        "settings": _jsonable(fit.settings),
        # every block says whether it is signed (semi-NMF loadings of both signs), also for fits whose
        # block descriptions predate the flag (then read from settings["signed"])
        "blocks": [_jsonable({**fit.blocks.get(n, {}), "signed": views.is_signed(fit, n)}) for n in names],
        # tensor model: per tensor block its spatial factor (positions x rank), by block position
        "spatial": (
            {str(names.index(n)): a.put(f"{prefix}S.{names.index(n)}", S) for n, S in fit.spatial.items()}
            if getattr(fit, "spatial", None)
            else None
        ),
        **_interpretation_meta(a, fit, prefix),
    }


def _interpretation_meta(a: _Arrays, fit: Factorization, prefix: str) -> dict:
    """``{"interpretation": [...]}`` for a fit explained by :func:`peeklens.explain`, else ``{}``."""
    explained = getattr(fit, "interpretation", None)
    if not explained:
        return {}
    out = []
    for i, ex in enumerate(explained.values()):
        entry = {k: _jsonable(v) for k, v in ex.meta().items() if k not in ex.ARRAY_FIELDS}
        for name in ex.ARRAY_FIELDS:
            arr = getattr(ex, name)
            entry[name] = None if arr is None else a.put(f"{prefix}interp.{i}.{name}", arr)
        out.append(entry)
    return {"interpretation": out}


def _load_interpretation(get, entries) -> dict | None:
    """The fit's ``interpretation`` (layer -> Explanation) from its schema entries, or None."""
    if not entries:
        return None
    from .interpret.results import Explanation

    out = {}
    for e in entries:
        arrays = {n: get(e.get(n)) for n in Explanation.ARRAY_FIELDS}
        meta = {k: v for k, v in e.items() if k not in Explanation.ARRAY_FIELDS and k != "type"}
        out[str(e["layer"])] = Explanation.from_parts(meta, {k: v for k, v in arrays.items() if v is not None})
    return out


def _sample_meta(
    a: _Arrays, fits: Sequence[Factorization], include_inputs: bool, top_k: int, class_names, decode=None
) -> dict:
    first = fits[0]
    labels, inputs = first.labels, first.inputs
    out: dict = {"labels": a.put("labels", labels) if labels is not None else None, "inputs": None, "display": None}
    names = first.input_names
    if class_names is not None:
        class_names = [str(c) for c in class_names]
        if labels is not None and np.asarray(labels).size:
            n_classes = int(np.max(labels)) + 1
            if len(class_names) < n_classes:
                raise InputError(f"class_names has {len(class_names)} names but the labels go up to {n_classes - 1}")
    if inputs and include_inputs:
        order = list(inputs)
        out["inputs"] = {
            "names": order,
            "arrays": [a.put(f"input.{i}", np.asarray(inputs[n], dtype=np.float32)) for i, n in enumerate(order)],
        }
    if names and inputs and all(n in inputs for n in names):
        k = int(max(0, min(top_k, first.n_samples)))
        idx = display_samples(fits, k) if k else np.zeros(0, dtype=np.int64)
        lo, hi = views.input_range(first) if first.n_samples else (0.0, 1.0)
        out["display"] = {
            "top_k": k,
            "samples": a.put("display.samples", idx),
            "images": [
                a.put(f"display.image.{i}", np.ascontiguousarray(np.asarray(inputs[n])[:, idx], np.float32))
                for i, n in enumerate(names)
            ],
            "value_range": [lo, hi],
            "class_names": class_names,
        }
    elif class_names is not None:
        out["display"] = {"top_k": 0, "samples": None, "images": [], "value_range": None, "class_names": class_names}
    info = getattr(first, "sample_info", None)
    patches = isinstance(decode, PatchGrid)
    if decode is not None and info is not None and ("token" in info or patches) and first.n_samples:
        k = int(max(1, min(top_k, first.n_samples)))
        if out["display"] is None or not out["display"].get("samples"):
            idx = display_samples(fits, k)
            out["display"] = {
                "top_k": k,
                "samples": a.put("display.samples", idx),
                "images": [],
                "value_range": None,
                "class_names": class_names,
            }
        else:
            idx = display_samples(fits, out["display"]["top_k"])
        if patches:
            crops, boxes, cells = patch_crops(info, idx, decode)
            out["display"]["patches"] = {
                "images": a.put("display.patches.images", crops),
                "boxes": a.put("display.patches.boxes", boxes),
                "cells": a.put("display.patches.cells", cells),
            }
        else:
            out["display"]["text"] = token_texts(info, idx, decode)
    return out


def token_texts(sample_info: Mapping[str, np.ndarray], samples, decode, context: int = 3) -> list[str]:
    """The text the views show for token samples: each token with ``context`` tokens either side of it
    from the same input, the token itself in brackets.

    Parameters
    ----------
    sample_info : dict of str to numpy.ndarray
        ``Activations.sample_info`` of a ``samples="tokens"`` capture (``sample``, ``position``, ``token``).
    samples : array of int
        The samples (token rows) to describe.
    decode : sequence of str or callable
        A vocabulary (token id -> text) or a function from a list of token ids to their text (e.g. a
        tokenizer's ``decode``), applied to one token at a time.
    context : int, default 3

    Examples
    --------
    >>> info = {"sample": np.array([0, 0, 0, 0, 1, 1]), "position": np.array([0, 1, 2, 3, 0, 1]),
    ...         "token": np.array([1, 2, 3, 4, 2, 5])}
    >>> token_texts(info, [2, 4], ["<pad>", "the", "cat", "sat", "down", "ran"], context=1)
    ['cat [sat] down', '[cat] ran']
    >>> token_texts(info, [0], lambda ids: "".join(chr(96 + i) for i in ids), context=5)
    ['[a] b c d']
    """
    if "token" not in sample_info:
        raise InputError("these samples carry no token ids (sample_info has no 'token'); capture token ids")
    if callable(decode):

        def word(t: int) -> str:
            return str(decode([int(t)]))
    else:
        vocab = list(decode)

        def word(t: int) -> str:
            if not 0 <= int(t) < len(vocab):
                raise InputError(f"token id {int(t)} is not in the vocabulary of {len(vocab)} entries")
            return str(vocab[int(t)])

    src, pos, tok = (np.asarray(sample_info[k]) for k in ("sample", "position", "token"))
    out = []
    for i in np.asarray(samples, dtype=np.int64).reshape(-1):
        same = np.flatnonzero((src == src[i]) & (np.abs(pos - pos[i]) <= int(context)))
        same = same[np.argsort(pos[same], kind="stable")]
        out.append(" ".join(f"[{word(tok[j])}]" if j == i else word(tok[j]) for j in same))
    return out


def _describe(obj: Result, a: _Arrays, include_inputs: bool, top_k: int, class_names, decode=None) -> dict:
    if isinstance(obj, Activations):
        names = obj.names
        return {
            "type": "Activations",
            "names": names,
            "blocks": [obj[n].info() for n in names],
            "arrays": [a.put(f"block.{i}", obj[n].data) for i, n in enumerate(names)],
            "labels": a.put("labels", obj.labels) if obj.labels is not None else None,
            "sample_info": (
                {k: a.put(f"sample_info.{i}", v) for i, (k, v) in enumerate(obj.sample_info.items())}
                if obj.sample_info is not None
                else None
            ),
            "info": _jsonable(obj.meta),
        }
    if isinstance(obj, Factorization):
        fit = _fit_meta(a, obj, "")
        fit.update(_sample_meta(a, [obj], include_inputs, top_k, class_names, decode))
        return {"type": "Factorization", "fit": fit}
    if isinstance(obj, Sweep):
        fits = {str(r): _fit_meta(a, f, f"r{r}.") for r, f in obj.fits.items()}
        shared = (
            _sample_meta(a, list(obj.fits.values()), include_inputs, top_k, class_names, decode)
            if obj.fits
            else {"labels": None, "inputs": None, "display": None}
        )
        return {
            "type": "Sweep",
            "ranks": obj.ranks,
            "requested": list(obj.requested),
            "interrupted": bool(obj.interrupted),
            "fits": fits,
            "info": _jsonable(obj.meta),
            **shared,
        }
    if isinstance(obj, Spectrum):
        names = obj.names
        return {
            "type": "Spectrum",
            "names": names,
            "k": obj.k,
            "values": [a.put(f"sv.{i}", obj.values[n]) for i, n in enumerate(names)],
            "entropy_rank": [float(obj.entropy_rank[n]) for n in names],
            "stable_rank": [float(obj.stable_rank[n]) for n in names],
            "method": [obj.method[n] for n in names],
            "info": _jsonable(obj.meta),
        }
    raise InputError(f"save() takes Activations, Factorization, Sweep or Spectrum, got {type(obj).__name__}")


def to_payload(
    obj: Result,
    *,
    include_inputs: bool = True,
    top_k: int = DISPLAY_TOP_K,
    class_names: Sequence[str] | None = None,
    decode=None,
) -> tuple[dict, dict[str, np.ndarray]]:
    """The schema's ``(meta, arrays)`` of a result.

    Parameters
    ----------
    obj : Activations, Factorization, Sweep or Spectrum
    include_inputs : bool, default True
        For a Factorization or Sweep, also keep the full input-channel blocks (``inputs``). The
        ``display`` section (the images of the samples the views show) is kept either way.
    top_k : int, default 8
        Thumbnails per factor in the ``display`` section.
    class_names : sequence of str, optional
        Names of the label classes, shown by the views.
    decode : sequence of str or callable, optional
        For token samples (``samples="tokens"`` captures): a vocabulary or a function from token ids to
        text; the ``display`` section then keeps ``text``, each displayed sample's token in context
        (:func:`token_texts`), so that every view can show it without the model or a kernel.

    Returns
    -------
    meta : dict
        JSON-ready; ``shapes`` and ``dtypes`` describe every array.
    arrays : dict of str to numpy.ndarray
        Little-endian arrays (memory-mapped blocks stay memory-mapped, in their own memory order: files
        record it in the ``.npy`` header, widgets send ``tobytes()``, which is C order).

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> acts = pl.Activations.from_arrays({"a": np.ones((3, 4))})
    >>> meta, arrays = to_payload(acts)
    >>> meta["format_version"], meta["dtypes"]["block.0"], arrays["block.0"].shape
    (2, '<f4', (3, 4))
    """
    import torch

    a = _Arrays()
    body = _describe(obj, a, include_inputs, int(top_k), class_names, decode)
    body.update(_quality_section(obj))
    arrays = {}
    for k, arr in a.arrays.items():
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        arrays[k] = arr
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "peeklens": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **body,
        "shapes": {k: [int(s) for s in v.shape] for k, v in arrays.items()},
        "dtypes": {k: v.dtype.str for k, v in arrays.items()},
    }
    return meta, arrays


def _quality_section(obj) -> dict:
    """``{"quality": ...}`` for a Sweep or Factorization whose ``quality`` is set, else ``{}``."""
    from .quality import Quality

    q = getattr(obj, "quality", None) if isinstance(obj, (Sweep, Factorization)) else None
    if q is None:
        return {}
    if not isinstance(q, Quality):
        raise InputError(
            f"{type(obj).__name__}.quality is a {type(q).__name__}; set it to the Quality of pl.quality(acts)"
        )
    return {"quality": q.to_json()}


def _with_quality(obj, meta: Mapping, where: str):
    """``obj`` with its ``quality`` read from ``meta`` (files without the section read as before)."""
    from .quality import Quality

    section = meta.get("quality")
    if section is not None:
        try:
            obj.quality = Quality.from_dict(section)
        except InputError as e:
            raise FileFormatError(f"{where}: bad quality section ({e})") from e
    return obj


def check_header(meta, where: str) -> int:
    """Check ``format`` and ``format_version`` of ``meta``; return the version.

    Raises :class:`~peeklens.FileFormatError` naming ``where`` for a foreign or newer payload.

    >>> check_header({"format": "peeklens", "format_version": 2}, "x")
    2
    """
    if not isinstance(meta, dict):
        raise FileFormatError(f"{where}: meta.json is a {type(meta).__name__}, not an object: not a peeklens file")
    if meta.get("format") != FORMAT_NAME:
        raise FileFormatError(f"{where} is not a peeklens results file (format {meta.get('format')!r})")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise FileFormatError(f"{where}: format_version is missing or not an integer")
    if version > FORMAT_VERSION:
        raise FileFormatError(
            f"{where} uses format version {version}, written by peeklens {meta.get('peeklens')}; this is "
            f"peeklens {__version__} (format {FORMAT_VERSION}). Upgrade peeklens to read it"
        )
    if version not in READABLE_VERSIONS:
        raise FileFormatError(f"{where}: unknown format version {version}")
    return version


# ---------------------------------------------------------------------- reading
def _load_fit(get, where: str, m: dict, labels, inputs) -> Factorization:
    names = list(m["names"])
    blocks = {n: dict(b) for n, b in zip(names, m["blocks"])}
    loadings = {n: get(k) for n, k in zip(names, m["W"])}
    F = get(m["F"])
    if F is None or F.ndim != 2:
        raise FileFormatError(f"{where}: F is not a matrix")
    for n, W in loadings.items():
        if W is None or W.ndim != 2 or W.shape[1] != F.shape[1]:
            shape = None if W is None else W.shape
            raise FileFormatError(f"{where}: loadings of {n!r} have shape {shape}, inconsistent with F {F.shape}")
    spatial = {names[int(i)]: get(k) for i, k in m["spatial"].items()} if m.get("spatial") else None
    extra = {"spatial": spatial} if spatial is not None else {}
    interpretation = _load_interpretation(get, m.get("interpretation"))
    if interpretation is not None:
        extra["interpretation"] = interpretation
    return Factorization(
        F=F,
        loadings=loadings,
        errors=dict(zip(names, (float(e) for e in m["errors"]))),
        rmse=float(m["rmse"]),
        objective=get(m["objective"]),
        n_iter=int(m["n_iter"]),
        converged=bool(m["converged"]),
        seconds=float(m["seconds"]),
        settings=dict(m["settings"]),
        blocks=blocks,
        labels=labels,
        inputs=inputs,
        **extra,
    )


def _load_shared(get, m: dict):
    labels = get(m.get("labels"))
    inp = m.get("inputs")
    inputs = {n: get(k) for n, k in zip(inp["names"], inp["arrays"])} if inp else None
    return labels, inputs


def from_payload(meta: Mapping, get_array: Callable[[str], np.ndarray], *, where: str = "payload") -> Result:
    """Rebuild a result from its ``meta`` and a function that returns the array of a key.

    ``get_array`` is called only for the keys the result needs (a file reader verifies each one).
    Inconsistent metadata raises :class:`~peeklens.FileFormatError` naming ``where``.

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> meta, arrays = to_payload(pl.Activations.from_arrays({"a": np.ones((3, 4))}))
    >>> from_payload(meta, arrays.__getitem__)["a"].data.shape
    (3, 4)
    """
    check_header(meta, where)

    def get(key):
        if key is None:
            return None
        if not isinstance(key, str):
            raise FileFormatError(f"{where}: bad array reference {key!r} in metadata")
        return get_array(key)

    kind = meta.get("type")
    try:
        if kind == "Activations":
            blocks = {}
            for n, info, key in zip(meta["names"], meta["blocks"], meta["arrays"]):
                blocks[n] = Block(
                    n,
                    get(key),
                    tuple(info["shape"]),
                    info["kind"],
                    info.get("transform"),
                    bool(info.get("signed", False)),
                )
            info_keys = meta.get("sample_info")
            return Activations(
                blocks,
                labels=get(meta.get("labels")),
                meta=meta.get("info") or {},
                sample_info={k: get(v) for k, v in info_keys.items()} if info_keys else None,
            )
        if kind == "Factorization":
            m = meta["fit"]
            labels, inputs = _load_shared(get, m)
            return _with_quality(_load_fit(get, where, m, labels, inputs), meta, where)
        if kind == "Sweep":
            labels, inputs = _load_shared(get, meta)
            fits = {int(k): _load_fit(get, where, m, labels, inputs) for k, m in meta["fits"].items()}
            return _with_quality(
                Sweep(
                    fits,
                    interrupted=bool(meta.get("interrupted")),
                    requested=[int(x) for x in meta.get("requested", list(fits))],
                    meta=meta.get("info") or {},
                ),
                meta,
                where,
            )
        if kind == "Spectrum":
            names = meta["names"]
            return Spectrum(
                values={n: get(k) for n, k in zip(names, meta["values"])},
                entropy_rank=dict(zip(names, map(float, meta["entropy_rank"]))),
                stable_rank=dict(zip(names, map(float, meta["stable_rank"]))),
                method=dict(zip(names, meta["method"])),
                k=int(meta["k"]),
                meta=meta.get("info") or {},
            )
    except FileFormatError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise FileFormatError(f"{where}: metadata is inconsistent ({type(e).__name__}: {e})") from e
    raise FileFormatError(f"{where}: unknown object type {kind!r}")
