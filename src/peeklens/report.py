"""A self-contained, interactive HTML report of one or several sweeps (the ``peeklens demo`` / ``study`` output).

The report is the same views as the widgets and the JupyterLab document, offline: one HTML file
that embeds the browser bundle (``peeklens/static/report.js``, built from ``js/report``) and the
results, each sweep's ``.peeklens`` bytes (:func:`peeklens.io.to_bytes`: no full inputs, deflated)
base64-encoded, read through the same in-memory source as any file.  It opens from disk with no
server and no network, with a rank slider, tile selection and "save as PNG/SVG" on every view.

The caller brings the words: the title, a summary table (columns) and, optionally, a verdict
paragraph; this module knows nothing about studies.  All text from models or users (layer names,
labels, table cells) is HTML-escaped.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import io as _io
from ._version import __version__
from .errors import InputError
from .results import Factorization, Sweep
from .spectra import Spectrum

__all__ = ["write_report", "render_report", "report_bundle", "BUNDLE"]

#: The report's browser bundle (built by ``npm run build``, shipped in the wheel).
BUNDLE = Path(__file__).resolve().parent / "static" / "report.js"


def _esc(s: Any) -> str:
    return html.escape(str(s), quote=True)


def report_bundle() -> str:
    """The JavaScript of the report bundle, safe to inline in a ``<script>`` element.

    Raises :class:`~peeklens.InputError` when the bundle was not built.
    """
    if not BUNDLE.exists():
        raise InputError(
            f"the report bundle {BUNDLE} is missing: peeklens was installed without its front end; "
            "reinstall with Node.js available (npm ci && pip install -e .)"
        )
    return BUNDLE.read_text(encoding="utf-8").replace("</script", "<\\/script")


def _sweeps(results) -> dict[str, Sweep]:
    if isinstance(results, (Sweep, Factorization)):
        results = {"sweep": results}
    if not isinstance(results, Mapping) or not results:
        raise InputError(
            f"write_report needs a Sweep or a dict of label -> Sweep, got {type(results).__name__}"
        )
    out = {}
    for label, sw in results.items():
        if isinstance(sw, Factorization):
            sw = Sweep({sw.rank: sw}, quality=sw.quality)
        if not isinstance(sw, Sweep) or not len(sw):
            raise InputError(f"entry {label!r}: a report needs a Sweep with at least one finished rank")
        out[str(label)] = sw
    return out


def _default_table(sweeps: Mapping[str, Sweep]) -> dict[str, list]:
    ranks = sorted(set.intersection(*(set(s.ranks) for s in sweeps.values())))
    table: dict[str, list] = {"network": list(sweeps)}
    for k in ranks:
        table[f"RMSE r={k}"] = [f"{s[k].rmse:.5f}" for s in sweeps.values()]
    return table


def _table_html(table: Mapping[str, Sequence]) -> str:
    cols = list(table)
    if not cols:
        return ""
    n = max(len(v) for v in table.values())
    head = "".join(f"<th>{_esc(c)}</th>" for c in cols)
    rows = []
    for i in range(n):
        cells = []
        for c in cols:
            v = table[c][i] if i < len(table[c]) else ""
            cells.append(f"<td>{_esc('–' if v is None else v)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (f'<div class="pl-report-table"><table><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _embed(kind: str, label: str, data: bytes) -> str:
    b64 = base64.b64encode(data).decode("ascii")
    return (f'<script type="application/x-peeklens" data-kind="{kind}" data-label="{_esc(label)}">'
            f"{b64}</script>")


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1180px;color:#222;
padding:0 12px;overflow-wrap:anywhere}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:2em}
table{border-collapse:collapse;margin:8px 0;font-size:.9em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}.pl-verdict.ok{background:#e3f6e3}.pl-verdict.bad{background:#fbe3e3}
.pl-verdict{padding:6px 10px;border-radius:4px}.pl-report-table{max-width:100%;overflow-x:auto}
.meta{color:#666;font-size:.85em}details{margin:8px 0;max-width:100%}
summary{cursor:pointer;font-weight:bold;font-size:1.1em}
.pl-lab-document,.pl-report-compare{max-width:100%;overflow-x:hidden}.pl-lab-document canvas{max-width:100%}
.pl-lab-head{display:flex;gap:8px;align-items:center}.pl-export button{font-size:10px;cursor:pointer}
.pl-report-network .pl-lab-title{display:none}
.pl-lab-error,.pl-report-error{color:#b00;white-space:pre-wrap}
.pl-compare-galleries{flex-wrap:wrap !important}
noscript{display:block;padding:8px;background:#fbe3e3}
"""


def _interpretation_note(sweeps: Mapping[str, Sweep]) -> str:
    """A paragraph on the explained factors (pl.explain / peeklens explain), or "" when there are none."""
    layers = sorted({n for sw in sweeps.values() for f in sw.values() for n in (f.interpretation or {})})
    if not layers:
        return ""
    return (
        f"<p>Factors of layer {_esc(', '.join(layers))} are explained: beside each latent image, the input that "
        "maximizes the factor's activation in that layer, and the <b>attribution</b> button over the gallery lays "
        "on its top inputs where that activation comes from (the red box marks the hottest region).</p>"
    )


def render_report(
    results,
    *,
    spectra: Mapping[str, Spectrum] | None = None,
    title: str = "peeklens report",
    subtitle: str | None = None,
    table: Mapping[str, Sequence] | None = None,
    verdict: str | None = None,
    verdict_ok: bool | None = None,
    verdict_title: str = "Verdict",
    notes: str | None = None,
    class_names: Sequence[str] | None = None,
    files: Mapping[str, str] | None = None,
    decode=None,
) -> str:
    """The report as an HTML string; see :func:`write_report`."""
    sweeps = _sweeps(results)
    spectra = dict(spectra or {})
    for k, v in spectra.items():
        if not isinstance(v, Spectrum):
            raise InputError(f"spectra[{k!r}] is a {type(v).__name__}, expected a Spectrum from pl.spectrum(acts)")
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = [f"<h1>{_esc(title)}</h1>",
            f'<p class="meta">{_esc(subtitle + " · " if subtitle else "")}peeklens {_esc(__version__)} · {when}</p>',
            "<noscript>This report draws its charts with JavaScript: allow scripts for this file.</noscript>"]
    if notes:
        body.append(f"<p>{_esc(notes)}</p>")
    body.append("<h2>Summary</h2>" + _table_html(table if table is not None else _default_table(sweeps)))
    if verdict:
        cls = "" if verdict_ok is None else (" ok" if verdict_ok else " bad")
        body.append(f"<h2>{_esc(verdict_title)}</h2><p class=\"pl-verdict{cls}\">{_esc(verdict)}</p>")
    body.append(
        "<h2>Networks</h2><p>Per network: the RMSE and per-block errors against rank (move the slider), the latent "
        "images of the factors at that rank (the input-side loadings folded back into images, their strongest "
        "test images and the classes of their top 50 inputs; labels are only shown, never used), and the neurons × "
        "factors heatmaps with each layer's utilisation. Click a tile to see its spatial maps.</p>"
        + _interpretation_note(sweeps)
        + '<div id="pl-report-networks"></div>'
        "<h2>Comparison</h2><p>The networks ranked by their label-free quality score when it was measured "
        "(<code>pl.quality</code>: its components, how far to trust it, and which differences are within the noise "
        "between training seeds), RMSE against rank of every network in one chart, the top singular values per "
        "layer (semi-log), and the latent images side by side.</p>"
        '<div id="pl-report-compare"></div>'
    )
    if files:
        body.append("<h2>Files</h2><ul>" + "".join(
            f"<li>{_esc(k)}: <code>{_esc(os.path.basename(v))}</code></li>" for k, v in files.items())
            + "</ul><p>Open a <code>.peeklens</code> file with <code>pl.load(path)</code> and "
            "<code>pl.show(...)</code> "
            "in a notebook, or double-click it in JupyterLab.</p>")
    data = [
        _embed("sweep", label, _io.to_bytes(sw, class_names=class_names, decode=decode)) for label, sw in sweeps.items()
    ]
    data += [_embed("spectrum", label, _io.to_bytes(sp)) for label, sp in spectra.items()]
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{_esc(title)}</title>'
            f"<style>{_CSS}</style></head><body>{''.join(body)}{''.join(data)}"
            f"<script>{report_bundle()}</script></body></html>")


def write_report(results, path: str | os.PathLike, **kwargs) -> Path:
    """Write a self-contained, interactive HTML report that opens from disk without network.

    Parameters
    ----------
    results : Sweep, Factorization, or dict of label -> Sweep
        The networks to show (one section each, and a comparison).
    path : str or path-like
        The ``.html`` file to write (its directory is created).
    spectra : dict of label -> Spectrum, optional
        Singular values per layer, overlaid in the comparison.
    title : str, default "peeklens report"
    subtitle : str, optional
        A line of context under the title (data set, settings...).
    table : dict of column name -> list, optional
        The summary table, column by column (cells shown as text); default: RMSE per common rank.
    verdict, verdict_ok, verdict_title : optional
        A paragraph under the table (e.g. whether the paper's RMSE order holds), coloured green or red
        by ``verdict_ok``.
    notes : str, optional
        A paragraph of text under the title.
    class_names : list of str, optional
        Names of the label classes.
    files : dict of str to str, optional
        Result files to list at the end.
    decode : list of str or callable, optional
        Token samples (``samples="tokens"``): a vocabulary or a tokenizer's ``decode``; the galleries show
        each factor's top tokens in context (:func:`peeklens.schema.token_texts`).

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
    >>> p = write_report({"net": sw}, os.path.join(tempfile.mkdtemp(), "r.html"), title="demo")
    >>> text = p.read_text()
    >>> 'type="application/x-peeklens"' in text and "<title>demo</title>" in text
    True
    """
    path = Path(path)
    text = render_report(results, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
