"""A self-contained HTML report of one or several sweeps (the ``peeklens demo`` / ``study`` output).

One file, no network access needed to view it: charts are inline SVG drawn here, pictures are
PNG images embedded as ``data:`` URLs (encoded with :mod:`zlib`, no plotting library).  All text that
comes from models or users (layer names, labels) is HTML-escaped.  Picture data comes from
:mod:`peeklens.views`, the same functions the widgets use.

Sections: a summary table (accuracies next to the paper's, RMSE per rank, effective ranks), the
paper's RMSE-order check, RMSE against rank (one curve per network) and per-block relative errors,
top singular values per layer (semi-log), latent images with the classes of their top inputs, and
neurons x factors heatmaps with each layer's utilisation.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import math
import os
import struct
import zlib
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from . import views
from ._version import __version__
from .errors import InputError
from .results import Factorization, Sweep

__all__ = ["write_report", "render_report", "png_bytes", "line_chart_svg"]

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

_VIRIDIS = np.array([
    [68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
    [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37],
], dtype=np.float64)


def _esc(s: Any) -> str:
    return html.escape(str(s), quote=True)


# ----------------------------------------------------------------------------- pictures
def colormap(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to viridis RGB (uint8), shape ``values.shape + (3,)``."""
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64)), 0, 1) * (len(_VIRIDIS) - 1)
    lo = np.floor(v).astype(int)
    hi = np.minimum(lo + 1, len(_VIRIDIS) - 1)
    t = (v - lo)[..., None]
    return np.round(_VIRIDIS[lo] * (1 - t) + _VIRIDIS[hi] * t).astype(np.uint8)


def png_bytes(img: np.ndarray) -> bytes:
    """Encode an (H, W) or (H, W, 3) image as PNG; floats are taken in [0, 1], uint8 as is.

    >>> png_bytes(np.zeros((2, 3)))[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    a = np.asarray(img)
    if a.dtype != np.uint8:
        a = np.round(np.clip(np.nan_to_num(a.astype(np.float64)), 0, 1) * 255).astype(np.uint8)
    if a.ndim == 2:
        color = 0
    elif a.ndim == 3 and a.shape[2] == 3:
        color = 2
    else:
        raise InputError(f"png_bytes needs an (H, W) or (H, W, 3) image, got shape {a.shape}")
    h, w = a.shape[:2]
    if h == 0 or w == 0:
        raise InputError(f"cannot encode an empty image of shape {a.shape}")
    raw = b"".join(b"\x00" + a[i].tobytes() for i in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def _img_tag(img: np.ndarray, width: int | None = None, height: int | None = None, alt: str = "", cls: str = "") -> str:
    data = base64.b64encode(png_bytes(img)).decode("ascii")
    size = (f' width="{width}"' if width else "") + (f' height="{height}"' if height else "")
    return f'<img class="{cls}" alt="{_esc(alt)}" src="data:image/png;base64,{data}"{size}>'


# ----------------------------------------------------------------------------- charts
def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e4 or a < 1e-3:
        return f"{v:.0e}"
    return f"{v:.4g}"


def line_chart_svg(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    logy: bool = False,
    width: int = 520,
    height: int = 320,
    markers: bool = True,
) -> str:
    """An inline SVG line chart, one line per series ``label -> (x, y)``.

    >>> svg = line_chart_svg({"a": ([1, 2], [3.0, 4.0])}, title="t <1>")
    >>> svg.startswith("<svg") and "t &lt;1&gt;" in svg
    True
    """
    ml, mr, mt, mb = 64, 16, 30, 44
    pw, ph = width - ml - mr, height - mt - mb
    xs = [float(x) for s in series.values() for x in s[0]]
    ys = [float(y) for s in series.values() for y in s[1] if math.isfinite(float(y)) and (not logy or float(y) > 0)]
    if not xs or not ys:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="40"><text x="4" y="20">{_esc(title)}: no data</text></svg>'
    x0, x1 = min(xs), max(xs)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if logy:
        y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
        if y1 == y0:
            y1 += 1
        fy = lambda v: mt + ph * (1 - (math.log10(v) - y0) / (y1 - y0))  # noqa: E731
        yticks = [10.0 ** e for e in range(y0, y1 + 1)]
    else:
        lo, hi = min(ys), max(ys)
        pad = (hi - lo) * 0.08 or abs(hi) * 0.05 or 1.0
        y0, y1 = lo - pad, hi + pad
        fy = lambda v: mt + ph * (1 - (v - y0) / (y1 - y0))  # noqa: E731
        yticks = [t for t in _nice_ticks(y0, y1) if y0 <= t <= y1]
    fx = lambda v: ml + pw * (v - x0) / (x1 - x0)  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'font-family="sans-serif" font-size="11" role="img">']
    out.append(f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">{_esc(title)}</text>')
    out.append(f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
    for t in yticks:
        y = fy(t)
        out.append(f'<line x1="{ml}" x2="{ml + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{ml - 4}" y="{y + 4:.1f}" text-anchor="end">{_esc(_fmt(t))}</text>')
    xt = sorted(set(xs)) if len(set(xs)) <= 12 else _nice_ticks(x0, x1)
    for t in xt:
        x = fx(t)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{mt + ph}" y2="{mt + ph + 4}" stroke="#999"/>')
        out.append(f'<text x="{x:.1f}" y="{mt + ph + 16}" text-anchor="middle">{_esc(_fmt(t))}</text>')
    out.append(f'<text x="{ml + pw / 2}" y="{height - 6}" text-anchor="middle">{_esc(xlabel)}</text>')
    out.append(f'<text transform="translate(14 {mt + ph / 2}) rotate(-90)" text-anchor="middle">{_esc(ylabel)}</text>')
    legend = [f'<rect x="{ml + pw - 156}" y="{mt + 2}" width="152" height="{15 * len(series) + 4}" '
              f'fill="white" fill-opacity="0.85" stroke="#ddd"/>']
    for i, (label, (sx, sy)) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        pts = [(fx(float(a)), fy(float(b))) for a, b in zip(sx, sy)
               if math.isfinite(float(b)) and (not logy or float(b) > 0)]
        if not pts:
            continue
        d = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{d}"><title>{_esc(label)}</title></polyline>')
        if markers and len(pts) <= 60:
            for (x, y), a, b in zip(pts, sx, sy):
                out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"><title>{_esc(label)}: '
                           f'{_esc(_fmt(float(a)))}, {float(b):.5g}</title></circle>')
        ly = mt + 14 + 15 * i
        legend.append(f'<line x1="{ml + pw - 150}" x2="{ml + pw - 132}" y1="{ly - 4}" y2="{ly - 4}" '
                      f'stroke="{color}" stroke-width="3"/>')
        legend.append(f'<text x="{ml + pw - 128}" y="{ly}">{_esc(label)}</text>')
    out.extend(legend)
    out.append("</svg>")
    return "".join(out)


# ----------------------------------------------------------------------------- entries
class _Entry:
    def __init__(self, label, sweep, spectrum=None, accuracy=None, paper_accuracy=None, n_train=None, seconds=None):
        if not isinstance(sweep, Sweep) or not len(sweep):
            raise InputError(f"entry {label!r}: a report needs a Sweep with at least one finished rank")
        self.label, self.sweep, self.spectrum = str(label), sweep, spectrum
        self.accuracy, self.paper_accuracy, self.n_train, self.seconds = accuracy, paper_accuracy, n_train, seconds or {}


def _entries(obj, spectra, accuracies, paper_accuracies) -> tuple[list[_Entry], Any]:
    if hasattr(obj, "results") and hasattr(obj, "ordering"):  # a studies.StudyResult
        return [_Entry(r.label, r.sweep, r.spectrum, r.accuracy, r.paper_accuracy, r.n_train, r.seconds)
                for r in obj.results], obj
    if isinstance(obj, Sweep):
        obj = {"sweep": obj}
    if not isinstance(obj, Mapping) or not obj:
        raise InputError(f"write_report needs a Sweep, a dict of label -> Sweep, or a StudyResult; got {type(obj).__name__}")
    spectra, accuracies, paper_accuracies = spectra or {}, accuracies or {}, paper_accuracies or {}
    return [_Entry(k, v, spectra.get(k), accuracies.get(k), paper_accuracies.get(k)) for k, v in obj.items()], None


# ----------------------------------------------------------------------------- sections
def _summary_table(entries: list[_Entry], ranks: list[int]) -> str:
    layers = entries[0].sweep.block_names
    layer_blocks = [n for n in layers if not n.startswith("input:")]
    h = ['<div class="scroll"><table><thead><tr><th>network</th><th>training images</th><th>test accuracy</th><th>paper</th>']
    h += [f"<th>RMSE r={k}</th>" for k in ranks]
    h += [f"<th>entropy rank<br>{_esc(n)}</th>" for n in layer_blocks if any(e.spectrum for e in entries)]
    h.append("</tr></thead><tbody>")
    for e in entries:
        acc = f"{e.accuracy * 100:.1f} %" if e.accuracy is not None else "–"
        pa = f"{e.paper_accuracy:g} %" if e.paper_accuracy is not None else "–"
        nt = f"{e.n_train:,}" if e.n_train is not None else "–"
        h.append(f"<tr><td>{_esc(e.label)}</td><td>{nt}</td><td>{acc}</td><td>{pa}</td>")
        for k in ranks:
            h.append(f"<td>{e.sweep[k].rmse:.5f}</td>" if k in e.sweep else "<td>–</td>")
        if any(x.spectrum for x in entries):
            for n in layer_blocks:
                v = e.spectrum.entropy_rank.get(n) if e.spectrum else None
                h.append(f"<td>{v:.1f}</td>" if v is not None else "<td>–</td>")
        h.append("</tr>")
    h.append("</tbody></table></div>")
    return "".join(h)


def _ordering(study) -> str:
    o = study.ordering()
    exp = "; ".join(f"{_esc(study.results[i].label)} &lt; {_esc(study.results[j].label)}" for i, j in study.expected)
    cells = "".join(
        f'<td class="{"ok" if ok else "bad"}">{k}: {"yes" if ok else "no"}</td>' for k, ok in o["per_rank"].items())
    verdict = ("The RMSE orders the networks as the paper found at every rank." if o["holds"] else
               "The paper's order does <b>not</b> hold at every rank: " + "; ".join(
                   f"rank {k}: {_esc(a)} not below {_esc(b)}" for k, a, b in o["violations"]) + ".")
    return (f"<p>Paper's finding: lower RMSE for {exp} (less or narrower training makes the activations more "
            f"compressible).</p><table><tr><th>rank</th>{cells}</tr></table><p>{verdict}</p>")


def _latent_section(e: _Entry, fit: Factorization, n_top: int = 6) -> str:
    try:
        imgs = views.latent_images(fit)
    except InputError as exc:
        return f"<p>{_esc(exc)}</p>"
    hist = views.class_histograms(fit, k=50)
    top = views.top_inputs(fit, n_top)
    strength = views.factor_strength(fit)
    order = np.argsort(-strength)
    try:
        top_imgs = views.input_images(fit, top)  # (rank, n_top, H, W[,3])
    except InputError:
        top_imgs = None
    tiles = []
    for r in order:
        cap = f"factor {r} · {strength[r] * 100:.1f} % of the energy"
        if hist is not None and hist[r].sum():
            best = np.argsort(-hist[r])[:3]
            cap += "<br>top-50 classes: " + ", ".join(f"{c} ({hist[r][c]})" for c in best if hist[r][c])
        strip = ""
        if top_imgs is not None:
            t = top_imgs[r]
            strip_img = np.concatenate(list(t), axis=1)
            peak = float(strip_img.max()) or 1.0
            strip = _img_tag(strip_img / peak, width=min(40 * n_top, 240), alt=f"top inputs of factor {r}", cls="px")
        h, w = imgs.shape[1:3]
        tiles.append(f'<figure>{_img_tag(imgs[r], width=112, height=int(112 * h / w), alt=f"latent image {r}", cls="px")}'
                     f'<figcaption>{cap}</figcaption>{strip}</figure>')
    return f'<div class="gallery">{"".join(tiles)}</div>'


def _heatmap_section(fit: Factorization) -> str:
    parts = []
    hist = views.class_histograms(fit, k=50)
    for layer in fit.layer_names:
        O = views.neuron_factor_matrix(fit, layer, normalize="global")  # (neurons, rank)
        u = views.utilisation(fit, layer)
        shape = tuple(fit.blocks[layer]["shape"])
        img = colormap(np.sqrt(O.T))  # rows: factors, columns: neurons (sqrt for contrast)
        rows = []
        for r in range(fit.rank):
            lab = f"f{r}"
            if hist is not None and hist[r].sum():
                lab += f" · {int(np.argmax(hist[r]))}"
            rows.append(f'<div class="hrow"><span>{_esc(lab)}</span>'
                        f'{_img_tag(img[r:r + 1], width=720, height=12, alt=f"{layer} factor {r}", cls="px strip")}</div>')
        extra = ""
        if "unused_channels" in u:
            extra = f", channels with no used neuron: {len(u['unused_channels'])} of {shape[0]}"
        parts.append(
            f"<h4>{_esc(layer)} <small>({O.shape[0]} neurons, shape {_esc('×'.join(map(str, shape)))})</small></h4>"
            f"<p>Neurons whose loading is below 1 % of the layer's largest on every factor: "
            f"<b>{u['unused_share'] * 100:.1f} %</b>{extra}. Rows: factors (with the most common class of their "
            f"top-50 inputs); columns: neurons in channel-major order; colour: √loading.</p>"
            f'<div class="heat">{"".join(rows)}</div>')
    return "".join(parts)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1180px;color:#222;padding:0 12px}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:2em}
table{border-collapse:collapse;margin:8px 0;font-size:.9em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}.ok{background:#e3f6e3}.bad{background:#fbe3e3}
.charts{display:flex;flex-wrap:wrap;gap:12px}.gallery{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;width:250px;border:1px solid #e4e4e4;padding:6px;border-radius:4px}figcaption{font-size:.8em;margin:4px 0}
img.px{image-rendering:pixelated;background:#000}.hrow{display:flex;align-items:center;gap:6px;height:13px}
.hrow span{width:56px;font-size:.75em;text-align:right}img.strip{background:none}
.meta{color:#666;font-size:.85em}.scroll{overflow-x:auto}details{margin:8px 0}summary{cursor:pointer;font-weight:bold}
"""


def render_report(
    results,
    *,
    spectra: Mapping[str, Any] | None = None,
    accuracies: Mapping[str, float] | None = None,
    paper_accuracies: Mapping[str, float] | None = None,
    title: str | None = None,
    rank: int | None = None,
    notes: str | None = None,
) -> str:
    """The report as an HTML string; see :func:`write_report`."""
    entries, study = _entries(results, spectra, accuracies, paper_accuracies)
    ranks = sorted(set.intersection(*(set(e.sweep.ranks) for e in entries))) or entries[0].sweep.ranks
    show_rank = int(rank) if rank is not None else min(ranks)
    meta = getattr(study, "meta", {}) if study is not None else {}
    title = title or (f"peeklens · {meta.get('description', study.name)}" if study is not None else "peeklens report")
    body = [f"<h1>{_esc(title)}</h1>"]
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    m = [f"peeklens {__version__}", when]
    if meta:
        m += [f"{meta.get('samples')} test images of {_esc(meta.get('dataset'))}", f"ranks {meta.get('ranks')}",
              f"seed {meta.get('seed')}", f"{meta.get('seconds')} s in all"]
        if meta.get("factorize"):
            m.append("factorization: " + ", ".join(f"{k}={v}" for k, v in meta["factorize"].items()))
    fit0 = entries[0].sweep[ranks[0]]
    m.append("solver " + _esc(fit0.settings.get("solver")) + f", max_iter {fit0.settings.get('max_iter')}")
    body.append(f'<p class="meta">{_esc(" · ".join(str(x) for x in m))}</p>')
    if notes:
        body.append(f"<p>{_esc(notes)}</p>")
    body.append("<h2>Summary</h2>" + _summary_table(entries, ranks))
    if study is not None and study.expected:
        body.append("<h2>Does the RMSE order the networks as in the paper?</h2>" + _ordering(study))

    body.append("<h2>Reconstruction error against rank</h2><div class=\"charts\">")
    body.append(line_chart_svg({e.label: (ranks, [e.sweep[k].rmse for k in ranks]) for e in entries},
                               title="RMSE of the coupled factorization", xlabel="rank", ylabel="RMSE"))
    for b in entries[0].sweep.block_names:
        body.append(line_chart_svg({e.label: (ranks, [e.sweep[k].errors[b] for k in ranks]) for e in entries},
                                   title=f"relative error: {b}", xlabel="rank", ylabel="‖X−WFᵀ‖/‖X‖",
                                   width=380, height=260))
    body.append("</div><p>Lower RMSE at the same rank means the activations are more compressible: "
                "the paper found it for the less (or more narrowly) trained networks.</p>")

    if any(e.spectrum is not None for e in entries):
        body.append("<h2>Top singular values per layer</h2><div class=\"charts\">")
        for n in entries[0].spectrum.values if entries[0].spectrum is not None else []:
            ser = {e.label: (list(range(1, len(e.spectrum.values[n]) + 1)), list(e.spectrum.values[n]))
                   for e in entries if e.spectrum is not None and n in e.spectrum.values}
            body.append(line_chart_svg(ser, title=f"singular values of {n}", xlabel="index", ylabel="σ (log)",
                                       logy=True, markers=False))
        body.append("</div>")

    body.append(f"<h2>Latent images at rank {show_rank}</h2><p>Each tile: the input-side loadings of one factor "
                "folded back into an image (brightest = strongest), the classes of the 50 test images that load "
                "most on it (labels are only shown, never used), and its six strongest images. Tiles are ordered "
                "by their share of the model's energy.</p>")
    for i, e in enumerate(entries):
        if show_rank in e.sweep:
            body.append(f"<details{' open' if i < 2 else ''}><summary>{_esc(e.label)}</summary>"
                        f"{_latent_section(e, e.sweep[show_rank])}</details>")

    body.append(f"<h2>Neurons × factors at rank {show_rank}</h2>")
    for i, e in enumerate(entries):
        if show_rank in e.sweep:
            body.append(f"<details{' open' if i < 2 else ''}><summary>{_esc(e.label)}</summary>"
                        f"{_heatmap_section(e.sweep[show_rank])}</details>")

    files = getattr(study, "files", None) or {}
    if files:
        body.append("<h2>Files</h2><ul>" + "".join(
            f"<li>{_esc(k)}: <code>{_esc(os.path.basename(v))}</code></li>" for k, v in files.items()
            if k not in ("report",)) + "</ul><p>Open a <code>.peeklens</code> file with <code>pl.load(path)</code> and "
            "<code>pl.show(...)</code> in a notebook.</p>")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>'
            f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>")


def write_report(results, path: str | os.PathLike, **kwargs) -> Path:
    """Write a self-contained HTML report.

    Parameters
    ----------
    results : StudyResult, Sweep, or dict of label -> Sweep
        What to show; a :class:`peeklens.studies.StudyResult` brings accuracies, spectra and the
        paper's expected RMSE order with it.
    path : str or path-like
        The ``.html`` file to write (its directory is created).
    spectra, accuracies, paper_accuracies : dict of label -> value, optional
        For a dict of sweeps: per-label :class:`~peeklens.Spectrum`, test accuracy (0..1) and the
        paper's accuracy (in %).
    title : str, optional
    rank : int, optional
        Rank whose latent images and heatmaps are shown (default: the smallest swept).
    notes : str, optional
        A paragraph of text under the title.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import numpy as np, tempfile, os, peeklens as pl
    >>> from peeklens.report import write_report
    >>> rng = np.random.default_rng(0)
    >>> acts = pl.Activations.from_arrays({"input:0": rng.random((16, 40)), "relu": rng.random((6, 40))},
    ...                                   shapes={"input:0": (4, 4)}, labels=rng.integers(0, 3, 40))
    >>> sw = pl.sweep(acts, ranks=[2, 3], max_iter=10, progress=False)
    >>> p = write_report({"net": sw}, os.path.join(tempfile.mkdtemp(), "r.html"))
    >>> "<svg" in p.read_text() and "data:image/png;base64" in p.read_text()
    True
    """
    path = Path(path)
    text = render_report(results, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
