"""Shared fixtures: real MNIST from $PEEKLENS_DATA (never downloaded) and the paper's network."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from peeklens.studies import PaperNet, load_mnist

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """$PEEKLENS_DATA, else ../shared/data beside the repository."""
    return Path(os.environ.get("PEEKLENS_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def mnist_test() -> tuple[torch.Tensor, torch.Tensor]:
    """The 10,000 real MNIST test images as (N, 1, 28, 28) floats in [0, 1], and their labels."""
    d = data_dir() / "mnist"
    if not (d / "t10k-images-idx3-ubyte.gz").exists():
        pytest.fail(f"MNIST not found in {d}; set PEEKLENS_DATA to the directory holding mnist/")
    return load_mnist(train=False, root=data_dir())


# The paper network lives in the package (peeklens.studies.PaperNet); imported above.


@pytest.fixture
def paper_net() -> PaperNet:
    torch.manual_seed(0)
    return PaperNet()


@pytest.fixture
def blocks_small():
    """A small non-negative two-block problem with known structure (rank-4 plus noise)."""
    from peeklens import Activations

    rng = np.random.default_rng(1)
    F_true = rng.random((60, 4))
    X1 = rng.random((30, 4)) @ F_true.T + 0.01 * rng.random((30, 60))
    X2 = rng.random((20, 4)) @ F_true.T + 0.01 * rng.random((20, 60))
    return Activations.from_arrays({"input:0": X1, "relu": X2}, shapes={"input:0": (5, 6)})
