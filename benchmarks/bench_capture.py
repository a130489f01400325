"""Capture overhead against a plain ``torch.no_grad()`` forward pass over the same data.

Target (issue "Kernel-side core"): capture costs at most 15 % more than the plain forward pass.

Run by hand::

    python benchmarks/bench_capture.py            # paper network on the 10,000 MNIST test images + ResNet-18
    python benchmarks/bench_capture.py --repeats 5

Both are timed in the same process, interleaved (plain, capture, plain, capture...), and the
median of the repeats is reported, so that load from other processes hits both alike.
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import peeklens as pl
from peeklens.studies import PaperNet  # noqa: F401  (also imported from here by bench_paper_mu.py)

REPO = Path(__file__).resolve().parents[1]


def mnist_test() -> torch.Tensor:
    d = Path(os.environ.get("PEEKLENS_DATA", REPO.parent / "shared" / "data")) / "mnist"
    with gzip.open(d / "t10k-images-idx3-ubyte.gz", "rb") as f:
        raw = f.read()
    x = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 1, 28, 28)
    return torch.from_numpy(x.copy()).float().div_(255)


def plain(model, x, batch):
    model.eval()
    with torch.no_grad():
        for i in range(0, len(x), batch):
            model(x[i : i + batch])


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def compare(name, model, x, layers, batch, repeats):
    plain(model, x[:batch], batch)  # warm-up
    pl.capture(model, x[:batch], layers, progress=False, batch_size=batch)
    tp, tc = [], []
    for _ in range(repeats):
        tp.append(timed(lambda: plain(model, x, batch)))
        tc.append(timed(lambda: pl.capture(model, x, layers, progress=False, batch_size=batch)))
    p, c = statistics.median(tp), statistics.median(tc)
    acts = pl.capture(model, x[:2], layers, progress=False)
    feats = sum(b.n_features for b in acts.blocks.values())
    print(
        f"{name:34s} {len(x):6d} samples  {feats:8d} features/sample  plain {p:7.3f}s  capture {c:7.3f}s  "
        f"ratio {c / p:5.2f}  ({(c / p - 1) * 100:+.0f} %)"
    )
    return c / p


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores\n")
    x = mnist_test()
    net = PaperNet()
    compare("paper net, relu+relu_1 (FX)", net, x, ["relu", "relu_1"], 500, args.repeats)
    compare("paper net, default (all relus)", net, x, None, 500, args.repeats)

    from torchvision.models import resnet18

    r18 = resnet18(weights=None)
    xr = torch.rand(256, 3, 112, 112)
    compare("resnet18 112px, layer1..4 (hooks)", r18, xr, ["layer1", "layer2", "layer3", "layer4"], 64, args.repeats)
    compare("resnet18 112px, avgpool+layer4 (hooks)", r18, xr, ["layer4", "avgpool"], 64, args.repeats)


if __name__ == "__main__":
    sys.exit(main())
