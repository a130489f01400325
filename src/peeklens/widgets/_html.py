"""Compact HTML summaries of results, for front ends without widgets (names always escaped)."""

from __future__ import annotations

from html import escape

import numpy as np

from ..activations import Activations
from ..results import Factorization, Sweep
from ..spectra import Spectrum

__all__ = ["summary_html"]

_STYLE = "border-collapse:collapse;font-size:12px"
_CELL = "padding:2px 8px;border-bottom:1px solid #ddd;text-align:right"


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f'<th style="{_CELL}">{escape(h)}</th>' for h in head)
    body = "".join("<tr>" + "".join(f'<td style="{_CELL}">{escape(c)}</td>' for c in r) + "</tr>" for r in rows)
    return f'<table style="{_STYLE}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def summary_html(obj) -> str:
    """An HTML summary of Activations, a Factorization, a Sweep or a Spectrum.

    Every name and label is escaped, so a layer called ``<script>`` shows as text.

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> acts = pl.Activations.from_arrays({"<b>x</b>": np.ones((3, 4))})
    >>> "&lt;b&gt;x&lt;/b&gt;" in summary_html(acts)
    True
    """
    if isinstance(obj, Activations):
        rows = [[n, b.kind, "×".join(map(str, b.shape)), str(b.n_features), f"{b.nbytes / 2**20:.1f}"]
                for n, b in obj.blocks.items()]
        head = f"<b>Activations</b>: {len(obj)} blocks, {obj.n_samples} samples"
        if obj.labels is not None:
            head += f", {len(np.unique(np.asarray(obj.labels)))} label classes"
        return f"<div>{head}{_table(['block', 'kind', 'shape', 'features', 'MiB'], rows)}</div>"
    if isinstance(obj, Factorization):
        rows = [[n, f"{e:.4f}"] for n, e in obj.errors.items()]
        status = "converged" if obj.converged else "max_iter reached"
        head = (f"<b>Factorization</b>: rank {obj.rank}, RMSE {obj.rmse:.4g}, solver "
                f"{escape(str(obj.settings.get('solver')))}, {obj.n_iter} iterations ({status}), {obj.seconds:.2f} s")
        return f"<div>{head}{_table(['block', 'relative error'], rows)}</div>"
    if isinstance(obj, Sweep):
        if not len(obj):
            return "<div><b>Sweep</b>: no finished ranks</div>"
        t = obj.table()
        names = [k for k in t if k not in ("rank", "rmse")]
        rows = [[str(t["rank"][i]), f"{t['rmse'][i]:.4g}"] + [f"{t[n][i]:.4f}" for n in names]
                for i in range(len(t["rank"]))]
        extra = f" (interrupted: {len(obj)} of {len(obj.requested)} ranks)" if obj.interrupted else ""
        return f"<div><b>Sweep</b> over {len(obj)} ranks{extra}{_table(['rank', 'RMSE'] + names, rows)}</div>"
    if isinstance(obj, Spectrum):
        rows = [[n, f"{v[0]:.4g}" if len(v) else "", f"{obj.entropy_rank[n]:.1f}", f"{obj.stable_rank[n]:.2f}"]
                for n, v in obj.values.items()]
        return (f"<div><b>Spectrum</b> (top {obj.k} singular values)"
                f"{_table(['block', 's1', 'entropy rank', 'stable rank'], rows)}</div>")
    return f"<pre>{escape(repr(obj))}</pre>"
