"""Write an explained sweep (pl.explain) as a .peeklens file plus what the views must show, for
js/test/interpret_views.test.ts:  python make_interpret_fixture.py OUT_DIR"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

import peeklens as pl


def main(out: Path) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 6), nn.ReLU())
    x = torch.rand(40, 1, 8, 8)
    data = torch.utils.data.TensorDataset(x, torch.arange(40) % 3)
    acts = pl.capture(model, data, layers=["1"], progress=False)
    sw = pl.sweep(acts, ranks=[2, 3], max_iter=30, seed=0, progress=False)
    # factor 1 left out (as after an interrupt); 4 heatmaps per factor, of which the file displays 3
    pl.explain(model, sw, "1", ranks=[3], factors=[2, 0], n_images=2, steps=6, top_k=4, progress=False)
    out.mkdir(parents=True, exist_ok=True)
    pl.save(sw, out / "explained.peeklens", include_inputs=False, top_k=3)
    ex = sw[3].interpretation["1"]
    expected = {
        "rank": 3,
        "layer": "1",
        "factors": ex.factors.tolist(),
        "maximized": (ex.maximized.astype(np.float64) / 255).tolist(),  # (m, n, H, W, 1)
        "samples": ex.samples.tolist(),
        "heatmaps": (ex.heatmaps.astype(np.float64) / 255).tolist(),  # (m, k, H, W)
        "boxes": ex.boxes.tolist(),
        "rel": (ex.maximized_scores[:, 0] / ex.reference).tolist(),
    }
    (out / "interpret_expected.json").write_text(json.dumps(expected))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
