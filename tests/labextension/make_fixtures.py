"""Write small ``.peeklens`` files with ``pl.save`` and the views ``peeklens.views`` derives from them.

The vitest suite of the JupyterLab extension (``js/lab/test``) reads these files with the browser-side
reader and compares its TypeScript views with ``expected.json``. Usage::

    python tests/labextension/make_fixtures.py OUTDIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def _flat(a) -> list:
    return np.asarray(a, dtype=np.float64).ravel().tolist()


def _fit_expected(fit) -> dict:
    from peeklens import views

    out = {
        "rank": fit.rank,
        "latent": {"shape": list(views.latent_images(fit).shape), "data": _flat(views.latent_images(fit))},
        "top8": views.top_inputs(fit, 8).tolist(),
        "strength": _flat(views.factor_strength(fit)),
        "rmse": float(fit.rmse),
        "errors": [float(fit.errors[n]) for n in fit.loadings],
        "layers": {},
    }
    if fit.inputs:
        idx = views.top_inputs(fit, 3)
        imgs = views.input_images(fit, idx)
        out["top3_images"] = {"shape": list(imgs.shape), "data": _flat(imgs)}
        # the one thumbnail normalisation (schema: display.value_range = range of the full inputs)
        thumbs = views.thumbnails(fit, 8)
        out["top8_thumbs"] = {"shape": list(thumbs.shape), "data": _flat(thumbs)}
    hist = views.class_histograms(fit, 50)
    out["hist50"] = None if hist is None else hist.tolist()
    for name in fit.layer_names:
        u = views.utilisation(fit, name, threshold=0.2)
        out["layers"][name] = {
            "unused_share_0.2": u["unused_share"],
            "unused_channels_0.2": u.get("unused_channels", np.array([], int)).tolist()
            if "unused_channels" in u
            else None,
            "spatial1": {
                "shape": list(views.spatial_maps(fit, name, 1).shape),
                "data": _flat(views.spatial_maps(fit, name, 1)),
            },
        }
    return out


def main(outdir: str) -> None:
    import peeklens as pl

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    n = 60
    labels = rng.integers(0, 5, size=n)
    acts = pl.Activations.from_arrays(
        {
            "input:0": rng.random((64, n)),
            "conv <b>1</b>": rng.random((3 * 2 * 2, n)) * (rng.random((12, 1)) > 0.3),
            "fc": rng.random((5, n)),
        },
        shapes={"input:0": (8, 8), "conv <b>1</b>": (3, 2, 2), "fc": (5,)},
        labels=labels,
    )
    sweep = pl.sweep(acts, [2, 3, 4], solver="mu", max_iter=30, progress=False)
    pl.save(sweep, out / "sweep.peeklens")
    pl.save(sweep, out / "sweep_deflate.peeklens", compress=True)
    # what widgets sync and the report embeds: no full inputs, the display section only
    pl.save(sweep, out / "sweep_display.peeklens", include_inputs=False, class_names=[f"c{i}" for i in range(5)])

    rgb = pl.Activations.from_arrays(
        {f"input:{c}": rng.random((16, 40)) for c in range(3)} | {"layer": rng.random((6, 40))},
        shapes={**{f"input:{c}": (4, 4) for c in range(3)}, "layer": (6,)},
    )
    fit = pl.factorize(rgb, rank=3, solver="mu", max_iter=20)
    pl.save(fit, out / "rgb_fit.peeklens")
    pl.save(acts, out / "acts.peeklens")
    spec = pl.spectrum(acts, k=5)
    pl.save(spec, out / "spectrum.peeklens")

    expected = {
        "sweep": {
            "ranks": sweep.ranks,
            "fits": {str(r): _fit_expected(sweep[r]) for r in sweep.ranks},
            "labels": labels.tolist(),
        },
        "rgb_fit": _fit_expected(fit),
        "acts": {"names": acts.names, "first_input": _flat(acts["input:0"].data[:, :3])},
        "spectrum": {n: _flat(spec.values[n]) for n in spec.names},
    }
    (out / "expected.json").write_text(json.dumps(expected))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fixtures")
