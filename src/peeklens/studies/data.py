"""MNIST and CIFAR-10 for the case studies, from a local directory or through torchvision.

Local layouts understood (the directory is ``root``, ``$PEEKLENS_DATA``, or given explicitly):

* MNIST: the four original IDX ``.gz`` files in ``root/mnist/``, ``root/`` or torchvision's
  ``root/MNIST/raw/``.
* CIFAR-10: ``root/cifar10/cifar10_{train,test}_subset.npz`` (arrays ``x`` N x 32 x 32 x 3 uint8 and
  ``y``), or torchvision's ``root/cifar-10-batches-py``.

With ``download=True`` the torchvision dataset classes fetch the data into ``root`` when it is not
there yet.  Images come back as float32 tensors in [0, 1] of shape (N, C, H, W) with int64 labels;
the networks are trained on normalized inputs (:func:`normalize`), while the factorization sees
the [0, 1] pixels.
"""

from __future__ import annotations

import gzip
import zipfile
import zlib
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError

__all__ = [
    "DataNotFoundError",
    "data_dir",
    "load_mnist",
    "load_cifar10",
    "load_dataset",
    "normalize",
    "NORMALIZATION",
    "CIFAR10_CLASSES",
]

#: Per-channel mean and standard deviation used to normalize inputs before the network.
NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

_MNIST_FILES = {
    True: ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    False: ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


class DataNotFoundError(InputError):
    """The data directory or a data file is missing."""


def data_dir(root: str | os.PathLike | None = None) -> Path:
    """The data directory: ``root`` if given, else ``$PEEKLENS_DATA``.

    Raises
    ------
    DataNotFoundError
        When neither is set or the directory does not exist.
    """
    if root is None:
        env = os.environ.get("PEEKLENS_DATA")
        if not env:
            raise DataNotFoundError(
                "no data directory: pass --data DIR (or root=...) or set PEEKLENS_DATA to a directory "
                "holding mnist/ (IDX .gz files) or cifar10/ (.npz); or use download=True / --download"
            )
        root = env
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataNotFoundError(
            f"data directory {str(path)!r} does not exist; point --data / PEEKLENS_DATA at the directory "
            "holding mnist/ or cifar10/, or use --download"
        )
    return path


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read a (gzip-compressed) IDX file into a uint8 array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (EOFError, OSError, zlib.error) as e:  # a cut download, a file that is not gzip
        raise InputError(f"{str(path)!r} is truncated or damaged ({e}); download it again") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 8:
        raise InputError(f"{str(path)!r} is not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(int(n) for n in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise InputError(f"{str(path)!r} is truncated: header says {shape}, found {data.size} values")
    return data.reshape(shape)


def _mnist_local(root: Path, train: bool) -> tuple[np.ndarray, np.ndarray] | None:
    img, lab = _MNIST_FILES[train]
    for d in (root / "mnist", root, root / "MNIST" / "raw"):
        if (d / img).exists() and (d / lab).exists():
            return read_idx(d / img), read_idx(d / lab)
        if (d / img[:-3]).exists() and (d / lab[:-3]).exists():  # unpacked files
            return read_idx(d / img[:-3]), read_idx(d / lab[:-3])
    return None


def _to_tensors(x: np.ndarray, y: np.ndarray, chw: bool) -> tuple[torch.Tensor, torch.Tensor]:
    x = np.ascontiguousarray(x)
    t = torch.from_numpy(x.copy()).float().div_(255)
    t = t.unsqueeze(1) if t.ndim == 3 else (t.permute(0, 3, 1, 2).contiguous() if chw else t)
    return t, torch.from_numpy(np.asarray(y).astype(np.int64))


def _download_root(root: str | os.PathLike | None) -> Path:
    """Where ``download=True`` looks first and downloads to: ``root``, ``$PEEKLENS_DATA`` or a user cache."""
    path = Path(root or os.environ.get("PEEKLENS_DATA") or "~/.cache/peeklens/data").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_mnist(
    train: bool = False, root: str | os.PathLike | None = None, *, download: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST images (N, 1, 28, 28) in [0, 1] and labels (N,).

    Parameters
    ----------
    train : bool, default False
        The 60,000 training images, or the 10,000 test images.
    root : path, optional
        Data directory (default ``$PEEKLENS_DATA``).
    download : bool, default False
        Fetch through ``torchvision.datasets.MNIST`` when not found locally.
    """
    if download:
        root_p = _download_root(root)
        found = _mnist_local(root_p, train)
        if found is None:
            from torchvision.datasets import MNIST

            ds = MNIST(str(root_p), train=train, download=True)
            return _to_tensors(ds.data.numpy(), ds.targets.numpy(), True)
        return _to_tensors(*found, True)
    path = data_dir(root)
    found = _mnist_local(path, train)
    if found is None:
        raise DataNotFoundError(
            f"MNIST {'training' if train else 'test'} files ({' and '.join(_MNIST_FILES[train])}) not found in "
            f"{str(path / 'mnist')!r}; point --data / PEEKLENS_DATA at the directory holding mnist/, "
            "or use --download"
        )
    return _to_tensors(*found, True)


def _cifar_local(root: Path, train: bool) -> tuple[np.ndarray, np.ndarray] | None:
    f = root / "cifar10" / f"cifar10_{'train' if train else 'test'}_subset.npz"
    if not f.exists():
        f = root / f"cifar10_{'train' if train else 'test'}_subset.npz"
    if f.exists():
        try:
            with np.load(f, allow_pickle=False) as z:
                return z["x"], z["y"]
        except (zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError) as e:
            raise InputError(f"{str(f)!r} is truncated or damaged ({e}); get the CIFAR-10 subset again") from e
    if (root / "cifar-10-batches-py").is_dir():
        from torchvision.datasets import CIFAR10

        ds = CIFAR10(str(root), train=train, download=False)
        return ds.data, np.asarray(ds.targets)
    return None


def load_cifar10(
    train: bool = False, root: str | os.PathLike | None = None, *, download: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 images (N, 3, 32, 32) in [0, 1] and labels (N,).

    Locally this may be the subset described in the data README (5,169 training and 1,017 test
    images); ``download=True`` fetches the full set through ``torchvision.datasets.CIFAR10``.
    """
    if download:
        root_p = _download_root(root)
        found = _cifar_local(root_p, train)
        if found is None:
            from torchvision.datasets import CIFAR10

            ds = CIFAR10(str(root_p), train=train, download=True)
            found = (ds.data, np.asarray(ds.targets))
        return _to_tensors(*found, True)
    path = data_dir(root)
    found = _cifar_local(path, train)
    if found is None:
        raise DataNotFoundError(
            f"CIFAR-10 {'training' if train else 'test'} data not found in {str(path)!r} "
            "(expected cifar10/cifar10_{train,test}_subset.npz or cifar-10-batches-py/); "
            "point --data / PEEKLENS_DATA at it, or use --download"
        )
    return _to_tensors(*found, True)


def load_dataset(
    name: str, train: bool = False, root: str | os.PathLike | None = None, *, download: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`load_mnist` or :func:`load_cifar10` by name (``"mnist"``, ``"cifar10"``)."""
    if name == "mnist":
        return load_mnist(train, root, download=download)
    if name == "cifar10":
        return load_cifar10(train, root, download=download)
    raise InputError(f"unknown dataset {name!r}; choose 'mnist' or 'cifar10'")


def normalize(x: torch.Tensor, dataset: str) -> torch.Tensor:
    """Inputs in [0, 1] to the normalized values the networks are trained on.

    >>> normalize(torch.full((1, 1, 2, 2), 0.1307), "mnist").abs().max().item() < 1e-6
    True
    """
    mean, std = NORMALIZATION[dataset]
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


def denormalizer(dataset: str):
    """The inverse of :func:`normalize`, for ``capture(..., input_transform=...)``."""
    mean, std = NORMALIZATION[dataset]

    def undo(x: torch.Tensor) -> torch.Tensor:
        m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (x * s + m).clamp_(0, 1)

    return undo
