import numpy as np
import pytest
import torch

from peeklens.studies import DataNotFoundError, data_dir, denormalizer, load_cifar10, load_mnist, normalize
from peeklens.studies import data as data_mod
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
        load_mnist(True, tmp_path, download=False)


def test_missing_data_errors(tmp_path, monkeypatch):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_mnist(False, tmp_path / "nope", download=False)
    monkeypatch.delenv("PEEKLENS_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(data_mod, "DEFAULT_DIRS", (str(tmp_path / "cache"),))
    with pytest.raises(DataNotFoundError, match="PEEKLENS_DATA"):
        data_dir()
    with pytest.raises(DataNotFoundError, match="CIFAR-10"):
        load_cifar10(False, tmp_path, download=False)


def _fake_torchvision_mnist(monkeypatch, *, fail: str | None):
    """torchvision.datasets.MNIST stand-in: 'downloads' the real local files, or fails like an offline machine
    (after printing mirror chatter and leaving a half-written raw/ folder, as torchvision does)."""
    import shutil

    import torchvision.datasets

    local = data_dir() / "mnist"

    class FakeMNIST:
        def __init__(self, root, train=True, download=False):
            raw = __import__("pathlib").Path(root) / "MNIST" / "raw"
            raw.mkdir(parents=True)
            print("Downloading https://example.invalid/train-images-idx3-ubyte.gz")
            if fail:
                (raw / "train-images-idx3-ubyte.gz").write_bytes(b"partial")
                raise RuntimeError(f"Error downloading train-images-idx3-ubyte.gz:\nTried mirrors.\n{fail}")
            for f in local.iterdir():
                shutil.copy(f, raw / f.name)

    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMNIST)


def test_download_when_missing_lands_files_and_says_so(tmp_path, monkeypatch, caplog, capsys):
    _fake_torchvision_mnist(monkeypatch, fail=None)
    dest = tmp_path / "fresh"
    with caplog.at_level("WARNING", logger="peeklens"):
        x, y = load_mnist(False, dest)
    assert x.shape == (10000, 1, 28, 28) and y[:3].tolist() == [7, 2, 1]
    assert sorted(p.name for p in (dest / "mnist").iterdir()) == sorted(
        ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
         "train-labels-idx1-ubyte.gz"])
    assert [p.name for p in dest.iterdir()] == ["mnist"]  # no staging folder left
    assert [r.getMessage() for r in caplog.records] == [f"peeklens: downloaded MNIST to {dest}"]
    assert "Downloading" not in capsys.readouterr().out  # torchvision's mirror chatter is swallowed
    x2, _ = load_mnist(True, dest, download=False)  # second call: local, no download
    assert x2.shape[0] == 60000


def test_offline_download_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    _fake_torchvision_mnist(monkeypatch, fail="<urlopen error [Errno -3] Temporary failure in name resolution>")
    dest = tmp_path / "fresh"
    with pytest.raises(DataNotFoundError) as e:
        load_mnist(False, dest)
    msg = str(e.value)
    assert "\n" not in msg and "could not be downloaded" in msg and "name resolution" in msg
    assert "PEEKLENS_DATA" in msg
    assert not dest.exists()  # the half-written download, and the folder made for it, are gone
    with pytest.raises(DataNotFoundError, match="could not be downloaded"):  # same message the second time
        load_mnist(False, dest)


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
