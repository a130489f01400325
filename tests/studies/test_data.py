import numpy as np
import pytest
import torch

from peeklens.studies import DataNotFoundError, data_dir, denormalizer, load_cifar10, load_mnist, normalize
from peeklens.studies.data import read_idx


def test_mnist_test_set_from_peeklens_data():
    x, y = load_mnist(train=False)
    assert x.shape == (10000, 1, 28, 28) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) == 1.0
    assert y.dtype == torch.int64 and y[:5].tolist() == [7, 2, 1, 0, 4]
    assert np.bincount(y.numpy()).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.slow
def test_mnist_train_set():
    x, y = load_mnist(train=True)
    assert x.shape == (60000, 1, 28, 28) and y[:5].tolist() == [5, 0, 4, 1, 9]


def test_cifar_subset():
    x, y = load_cifar10(train=False)
    assert x.shape == (1017, 3, 32, 32) and y.shape == (1017,)
    assert y[:4].tolist() == [3, 8, 8, 0]  # cat, ship, ship, airplane
    xt, _ = load_cifar10(train=True)
    assert xt.shape == (5169, 3, 32, 32)


def test_explicit_root_and_torchvision_layout(tmp_path):
    import shutil

    shared = data_dir  # $PEEKLENS_DATA, as the tests run with

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(shared() / "mnist" / f, raw / f)
    x, y = load_mnist(False, tmp_path)
    assert x.shape[0] == 10000
    with pytest.raises(DataNotFoundError, match="MNIST training files"):
        load_mnist(True, tmp_path)


def test_missing_data_errors(tmp_path, monkeypatch):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_mnist(False, tmp_path / "nope")
    monkeypatch.delenv("PEEKLENS_DATA", raising=False)
    with pytest.raises(DataNotFoundError, match="PEEKLENS_DATA"):
        data_dir()
    with pytest.raises(DataNotFoundError, match="CIFAR-10"):
        load_cifar10(False, tmp_path)


def test_truncated_idx(tmp_path):
    import gzip

    p = tmp_path / "bad-idx3-ubyte.gz"
    with gzip.open(p, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + np.array([5, 28, 28], ">u4").tobytes() + b"\x00" * 100)
    with pytest.raises(ValueError, match="truncated"):
        read_idx(p)


@pytest.mark.parametrize("ds,c", [("mnist", 1), ("cifar10", 3)])
def test_normalize_roundtrip(ds, c):
    x = torch.rand(4, c, 8, 8)
    z = normalize(x, ds)
    assert float(z.min()) < 0
    assert torch.allclose(denormalizer(ds)(z), x, atol=1e-6)
