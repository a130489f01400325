"""Fixtures for the interpret tests: a planted network (one conv channel hand-set to detect a diagonal
stroke) with data that holds the stroke at known places, and small fitted models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import peeklens as pl

SIZE = 28
STROKE = 7  # length of the planted diagonal stroke, in pixels
KERNEL = 5


def template(k: int = KERNEL) -> np.ndarray:
    """The planted pattern: a k x k diagonal line (top-left to bottom-right)."""
    return np.eye(k, dtype=np.float32)


class PlantedNet(nn.Module):
    """conv1 (1 -> 4, 5x5) -> ReLU (module "relu1") -> max-pool 2 -> conv2 -> ReLU -> linear.

    Channel 0 of conv1 is the zero-mean diagonal template with a threshold bias, so that it fires
    on diagonal strokes only; channels 1..3 are random zero-mean filters.
    """

    def __init__(self, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(1, 4, KERNEL)
        self.relu1 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 8, 3)
        self.relu2 = nn.ReLU()
        self.fc = nn.Linear(8 * 10 * 10, 10)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
            # Channels 1..3: random zero-mean filters (brightness alone drives no channel) as strong as the
            # planted one, with a lower threshold.
            w = self.conv1.weight[1:]
            w -= w.mean(dim=(2, 3), keepdim=True)
            w *= 4 / w.flatten(1).norm(dim=1)[:, None, None, None]
            t = torch.from_numpy(template())
            t = t - t.mean()
            self.conv1.weight[0, 0] = 4 * t / t.norm()
            self.conv1.bias[0] = -2.0  # a diagonal of ones gives 8 - 2 = 6; a horizontal stroke 0 - 2 < 0
            self.conv1.bias[1:] = -1.0

    def forward(self, x):
        x = self.pool(self.relu1(self.conv1(x)))
        x = self.relu2(self.conv2(x))
        return self.fc(x.flatten(1))


def planted_data(n: int = 300, seed: int = 0):
    """Images in [0, 1]: faint noise, one horizontal or vertical distractor stroke each, and in every
    other image a diagonal stroke at a random place.

    Returns ``x`` (n, 1, 28, 28) and ``boxes`` (n, 4): top, left, height, width of the diagonal
    stroke (-1 where there is none).
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.15, size=(n, 1, SIZE, SIZE)).astype(np.float32)
    boxes = np.full((n, 4), -1, dtype=np.int64)
    for i in range(n):
        r, c = rng.integers(2, SIZE - STROKE - 2, size=2)
        if rng.random() < 0.5:
            x[i, 0, r, c : c + STROKE] = 1.0
        else:
            x[i, 0, r : r + STROKE, c] = 1.0
        if i % 2 == 0:
            r, c = rng.integers(2, SIZE - STROKE - 2, size=2)
            for d in range(STROKE):
                x[i, 0, r + d, c + d] = 1.0
            boxes[i] = (r, c, STROKE, STROKE)
    return torch.from_numpy(x), boxes


def best_ncc(image: np.ndarray, pattern: np.ndarray) -> float:
    """Normalized cross-correlation of ``pattern`` with ``image`` (2-D) at the best shift (valid positions)."""
    image = np.asarray(image, dtype=np.float64)
    p = np.asarray(pattern, dtype=np.float64)
    p = (p - p.mean()) / np.linalg.norm(p - p.mean())
    kh, kw = p.shape
    win = np.lib.stride_tricks.sliding_window_view(image, (kh, kw))  # (H-kh+1, W-kw+1, kh, kw)
    w = win - win.mean(axis=(2, 3), keepdims=True)
    norms = np.sqrt((w**2).sum(axis=(2, 3)))
    ncc = (w * p).sum(axis=(2, 3)) / np.where(norms > 1e-12, norms, np.inf)
    return float(ncc.max())


@pytest.fixture(scope="session")
def planted():
    """The planted net, its data, the rank-5 fit of its "relu1" block and the planted factor.

    The planted factor is the one whose "relu1" loadings have the largest share on channel 0.
    """
    torch.manual_seed(0)
    net = PlantedNet()
    x, boxes = planted_data()
    acts = pl.capture(net, x, layers=["relu1"], progress=False)
    fit = pl.factorize(acts, rank=5, seed=0)
    loads = fit.loadings["relu1"].reshape(4, -1, fit.rank)  # channel, position, factor
    share = loads[0].sum(axis=0) / loads.sum(axis=(0, 1))
    return {"net": net, "x": x, "boxes": boxes, "fit": fit, "factor": int(np.argmax(share)), "share": share}


@pytest.fixture(scope="session")
def ncc():
    """best_ncc(image, pattern): normalized cross-correlation at the best shift."""
    return best_ncc


@pytest.fixture(scope="session")
def small_fit():
    """A small conv net ("0" conv, "1" ReLU, "3" a dense ReLU) on 1 x 8 x 8 inputs, and a rank-3 fit."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 6), nn.ReLU())
    x = torch.rand(40, 1, 8, 8)
    acts = pl.capture(model, x, layers=["1", "4"], progress=False)
    return model, pl.factorize(acts, rank=3, seed=0), x
