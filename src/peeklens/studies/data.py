"""MNIST and CIFAR-10 for the case studies, from a local directory or through torchvision.

Local layouts understood (the directory is ``root``, ``$PEEKLENS_DATA``, or given explicitly):

* MNIST: the four original IDX ``.gz`` files in ``root/mnist/``, ``root/`` or torchvision's
  ``root/MNIST/raw/``.
* CIFAR-10: ``root/cifar10/cifar10_{train,test}_subset.npz`` (arrays ``x`` N x 32 x 32 x 3 uint8 and
  ``y``), or torchvision's ``root/cifar-10-batches-py``.

Where the data is looked for, in order: ``root`` when given (only there), else ``$PEEKLENS_DATA``, then the
usual caches ``~/.cache/peeklens/data`` and torchvision's customary ``./data`` (:func:`search_dirs`).  When
it is in none of them, the loaders download it through torchvision (with its progress bar) into
``root``, ``$PEEKLENS_DATA`` or ``~/.cache/peeklens/data``, staging the files in a temporary folder so that
a failed download leaves nothing behind, and log one line saying where the data went; ``download=False``
never downloads.  Offline with no data, the error is one line that says where to put the files.  Images come
back as float32 tensors in [0, 1] of shape (N, C, H, W) with int64 labels;
the networks are trained on normalized inputs (:func:`normalize`), while the factorization sees
the [0, 1] pixels.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import logging
import os
import shutil
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError

__all__ = [
    "DataNotFoundError",
    "data_dir",
    "search_dirs",
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


_log = logging.getLogger("peeklens")

#: The caches looked in after ``$PEEKLENS_DATA``: peeklens' own, then torchvision's customary ``./data``.
DEFAULT_DIRS = ("~/.cache/peeklens/data", "data")


class DataNotFoundError(InputError):
    """The data directory or a data file is missing."""


def search_dirs(root: str | os.PathLike | None = None) -> list[Path]:
    """The directories the loaders look in, in order.

    ``root`` alone when given; otherwise ``$PEEKLENS_DATA`` (when set) and :data:`DEFAULT_DIRS`.

    >>> [str(p) for p in search_dirs("/tmp/x")]
    ['/tmp/x']
    """
    if root is not None:
        return [Path(root).expanduser()]
    env = os.environ.get("PEEKLENS_DATA")
    dirs = [Path(env).expanduser()] if env else []
    return dirs + [Path(d).expanduser() for d in DEFAULT_DIRS]


def _searched(root) -> str:
    return ", ".join(repr(str(d)) for d in search_dirs(root))


def data_dir(root: str | os.PathLike | None = None) -> Path:
    """The data directory: ``root`` if given, else the first of :func:`search_dirs` that exists.

    Raises
    ------
    DataNotFoundError
        When ``root`` does not exist, or none of the search directories does.
    """
    for path in search_dirs(root):
        if path.is_dir():
            return path
    if root is not None:
        raise DataNotFoundError(
            f"data directory {str(root)!r} does not exist; point --data / PEEKLENS_DATA at the directory "
            "holding mnist/ or cifar10/"
        )
    raise DataNotFoundError(
        f"no data directory: none of {_searched(None)} exists; pass --data DIR (or root=...) or set PEEKLENS_DATA "
        "to a directory holding mnist/ (IDX .gz files) or cifar10/ (.npz); the loaders download when allowed"
    )


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
    """Where a download goes: ``root``, ``$PEEKLENS_DATA`` or peeklens' cache."""
    return Path(root or os.environ.get("PEEKLENS_DATA") or DEFAULT_DIRS[0]).expanduser()


def _download(name: str, fetch, dest: Path, moves: dict[str, str], root) -> None:
    """Run ``fetch(tmpdir)`` (a torchvision download) in a temporary folder beside ``dest`` and move the
    finished files (``moves``: path in tmpdir -> path in dest) into place; on any failure nothing is left."""
    created = [p for p in [dest, *dest.parents] if not p.exists()]
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataNotFoundError(
            f"cannot create the data directory {str(dest)!r} ({e}); set PEEKLENS_DATA to a writable directory"
        ) from e
    tmp = Path(tempfile.mkdtemp(prefix=".peeklens-download-", dir=dest))
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter):  # torchvision prints per-mirror messages; its progress bar stays
            fetch(tmp)
        for src, dst in moves.items():
            target = dest / dst
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(tmp / src), str(target))
    except Exception as e:  # noqa: BLE001 - network, HTTP, checksum: all end in the same one-line advice
        reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise DataNotFoundError(
            f"{name} is not on this machine and could not be downloaded ({reason[:200]}). Without internet, copy "
            f"the files into {_searched(root) if root is not None else 'one of ' + _searched(None)} (or set "
            "PEEKLENS_DATA to the directory holding them)"
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for p in created:  # folders this call made and left empty (a failed download)
            with contextlib.suppress(OSError):
                p.rmdir()
    _log.warning("peeklens: downloaded %s to %s", name, dest)


def _download_mnist(dest: Path, root) -> None:
    def fetch(tmp: Path) -> None:
        from torchvision.datasets import MNIST

        MNIST(str(tmp), train=False, download=True)  # fetches all four files

    files = [f for pair in _MNIST_FILES.values() for f in pair]
    _download("MNIST", fetch, dest, {f"MNIST/raw/{f}": f"mnist/{f}" for f in files}, root)


def load_mnist(
    train: bool = False, root: str | os.PathLike | None = None, *, download: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST images (N, 1, 28, 28) in [0, 1] and labels (N,).

    Parameters
    ----------
    train : bool, default False
        The 60,000 training images, or the 10,000 test images.
    root : path, optional
        Data directory; by default the loader looks in :func:`search_dirs`.
    download : bool, optional
        ``None`` (default) or ``True``: fetch through ``torchvision.datasets.MNIST`` when the files are not
        found locally; ``False``: never download, raise :class:`DataNotFoundError` instead.
    """
    for d in search_dirs(root):
        found = _mnist_local(d, train) if d.is_dir() else None
        if found is not None:
            return _to_tensors(*found, True)
    if root is not None and download is False and not Path(root).expanduser().is_dir():
        raise DataNotFoundError(
            f"data directory {str(root)!r} does not exist; point --data / PEEKLENS_DATA at the directory "
            "holding mnist/, or allow the download"
        )
    if download is False:
        raise DataNotFoundError(
            f"MNIST {'training' if train else 'test'} files ({' and '.join(_MNIST_FILES[train])}) not found in "
            f"{_searched(root)}; point --data / PEEKLENS_DATA at the directory holding mnist/, "
            "or allow the download (download=True)"
        )
    dest = _download_root(root)
    _download_mnist(dest, root)
    found = _mnist_local(dest, train)
    if found is None:  # pragma: no cover - torchvision changed its layout
        raise DataNotFoundError(f"the MNIST download into {str(dest)!r} did not produce {_MNIST_FILES[train]}")
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


def _download_cifar10(dest: Path, root) -> None:
    def fetch(tmp: Path) -> None:
        from torchvision.datasets import CIFAR10

        CIFAR10(str(tmp), train=False, download=True)

    _download("CIFAR-10", fetch, dest, {"cifar-10-batches-py": "cifar-10-batches-py"}, root)


def load_cifar10(
    train: bool = False, root: str | os.PathLike | None = None, *, download: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 images (N, 3, 32, 32) in [0, 1] and labels (N,).

    Locally this may be the subset described in the data README (5,169 training and 1,017 test
    images); a download fetches the full set through ``torchvision.datasets.CIFAR10``. ``root`` and
    ``download`` as in :func:`load_mnist`.
    """
    for d in search_dirs(root):
        found = _cifar_local(d, train) if d.is_dir() else None
        if found is not None:
            return _to_tensors(*found, True)
    if download is False:
        raise DataNotFoundError(
            f"CIFAR-10 {'training' if train else 'test'} data not found in {_searched(root)} "
            "(expected cifar10/cifar10_{train,test}_subset.npz or cifar-10-batches-py/); "
            "point --data / PEEKLENS_DATA at it, or allow the download (download=True)"
        )
    dest = _download_root(root)
    _download_cifar10(dest, root)
    found = _cifar_local(dest, train)
    if found is None:  # pragma: no cover - torchvision changed its layout
        raise DataNotFoundError(f"the CIFAR-10 download into {str(dest)!r} did not produce cifar-10-batches-py/")
    return _to_tensors(*found, True)


def load_dataset(
    name: str, train: bool = False, root: str | os.PathLike | None = None, *, download: bool | None = None
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
