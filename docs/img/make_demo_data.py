"""Write the .peeklens files that docs/img/screenshots.py draws (two MNIST networks, a sweep with ranks 2, 10, 50).

Usage: PEEKLENS_DATA=/path/to/data python docs/img/make_demo_data.py OUTDIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

import peeklens as pl
from peeklens import studies


def main(out: str, n: int = 2000) -> None:
    torch.set_num_threads(1)
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    x, y = studies.load_mnist(train=False)
    x, y = x[:n], y[:n]
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(studies.normalize(x, "mnist"), y), batch_size=500
    )
    for name, fraction in [("mnist-25pct", 0.25), ("mnist-10pct", 0.1)]:
        model = studies.train(studies.Regime(fraction=fraction), progress=False).model
        acts = pl.capture(model, loader, layers=["relu", "relu_1"], input_transform=studies.denormalizer("mnist"))
        sweep = pl.sweep(acts, ranks=[2, 10, 50], progress=False)
        pl.save(sweep, outdir / f"{name}.peeklens")
        pl.save(pl.spectrum(acts, k=50), outdir / f"{name}-spectrum.peeklens")


if __name__ == "__main__":
    main(sys.argv[1])
