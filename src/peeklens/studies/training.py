"""Training regimes of the case studies, with trained checkpoints cached on disk.

A :class:`Regime` says what a network is trained on: a fraction of the training data, a subset of
the classes, or the classes one after another without shuffling (the paper's case III), for some
epochs from a seed.  :func:`train` trains it with the PyTorch MNIST example's optimizer (SGD,
lr 0.01, momentum 0.5, batch 64) and caches the state dict, keyed by the regime; a later call loads
it (``torch.load(..., weights_only=True)``) instead of training again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from ..errors import InputError
from .data import load_dataset, normalize
from .networks import make_network

__all__ = ["Regime", "train", "evaluate", "select_indices", "noisy_labels", "cache_dir", "TrainedModel"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Regime:
    """What a network is trained on, and how.

    Parameters
    ----------
    network : {"paper", "alexnet", "smallcnn"}
    dataset : {"mnist", "cifar10"}
    fraction : float, default 1.0
        Share of the (class-filtered) training images used, drawn at random from ``seed``.
    classes : tuple of int, optional
        Train only on these classes (default: all).
    ordered : bool, default False
        Class by class without shuffling: all images of ``first_class``, then the other classes in
        increasing order (the paper's case III started with 9).
    first_class : int, default 9
    epochs : int, default 1
    seed : int, default 0
        Seeds the weights, the fraction draw, the shuffling and dropout.
    lr, momentum, batch_size
        The optimizer of the PyTorch MNIST example: SGD, 0.01, 0.5, 64.
    train_samples : int, optional
        Use only the first ``train_samples`` images of the training set before anything else
        (small, fast runs for tests and quick looks).
    label_noise : float, default 0.0
        Share of the selected training images whose label is replaced, once, by a different class
        drawn at random from ``seed`` (the labels of a corrupted run stay the same every epoch).
    name : str, optional
        A display label; by default one is made from the settings.

    Examples
    --------
    >>> Regime(fraction=0.25).label
    '25% of the data'
    >>> Regime(classes=(0, 1, 2, 3, 4)).label
    'classes 0-4'
    >>> Regime(ordered=True).label
    'class-ordered from 9'
    """

    network: str = "paper"
    dataset: str = "mnist"
    fraction: float = 1.0
    classes: tuple[int, ...] | None = None
    ordered: bool = False
    first_class: int = 9
    epochs: float = 1
    seed: int = 0
    lr: float = 0.01
    momentum: float = 0.5
    batch_size: int = 64
    train_samples: int | None = None
    label_noise: float = 0.0
    name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.network not in ("paper", "alexnet", "smallcnn"):
            raise InputError(f"unknown network {self.network!r}; choose 'paper', 'alexnet' or 'smallcnn'")
        if self.dataset not in ("mnist", "cifar10"):
            raise InputError(f"unknown dataset {self.dataset!r}; choose 'mnist' or 'cifar10'")
        if not (0 < float(self.fraction) <= 1):
            raise InputError(f"fraction must be in (0, 1], got {self.fraction!r}")
        if self.classes is not None:
            cl = tuple(sorted({int(c) for c in self.classes}))
            if not cl or cl[0] < 0 or cl[-1] > 9:
                raise InputError(f"classes must be a non-empty subset of 0..9, got {self.classes!r}")
            object.__setattr__(self, "classes", cl)
        if not 0 <= int(self.first_class) <= 9:
            raise InputError(f"first_class must be a class 0..9, got {self.first_class!r}")
        if not float(self.epochs) > 0:
            raise InputError(f"epochs must be > 0, got {self.epochs!r}")
        if float(self.epochs) == int(self.epochs):
            object.__setattr__(self, "epochs", int(self.epochs))
        if not 0 <= float(self.label_noise) < 1:
            raise InputError(f"label_noise must be in [0, 1), got {self.label_noise!r}")
        if not float(self.lr) > 0:
            raise InputError(f"lr must be > 0, got {self.lr!r}")
        if int(self.batch_size) < 1:
            raise InputError(f"batch_size must be >= 1, got {self.batch_size!r}")
        if self.train_samples is not None and int(self.train_samples) < 1:
            raise InputError(f"train_samples must be >= 1, got {self.train_samples!r}")

    @property
    def label(self) -> str:
        """A short human-readable description."""
        if self.name:
            return self.name
        parts = []
        if self.classes is not None and self.classes != tuple(range(10)):
            cl = self.classes
            if len(cl) > 2 and cl == tuple(range(cl[0], cl[-1] + 1)):
                parts.append(f"classes {cl[0]}-{cl[-1]}")
            else:
                parts.append("class " + ",".join(map(str, cl)) if len(cl) == 1 else "classes " + ",".join(map(str, cl)))
        if self.ordered:
            parts.append(f"class-ordered from {self.first_class}")
        if self.fraction < 1 or not parts:
            parts.insert(0, f"{self.fraction * 100:g}% of the data")
        if self.label_noise:
            parts.append(f"{self.label_noise * 100:g}% label noise")
        if self.lr != 0.01:
            parts.append(f"lr {self.lr:g}")
        if self.epochs != 1:
            parts.append(f"{self.epochs:g} epochs")
        return ", ".join(parts)

    def key(self) -> str:
        """A file-name-safe key of every setting that changes the trained weights."""
        d = asdict(self)
        d.pop("name")
        if not d["label_noise"]:  # settings added later stay out of the key at their default (old caches load)
            d.pop("label_noise")
        digest = hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
        return f"{self.network}-{self.dataset}-{digest}"


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """Where trained checkpoints are kept: ``path``, ``$PEEKLENS_CACHE``, or ``~/.cache/peeklens/models``."""
    p = path or os.environ.get("PEEKLENS_CACHE") or Path.home() / ".cache" / "peeklens" / "models"
    return Path(p).expanduser()


def select_indices(labels: np.ndarray | torch.Tensor, regime: Regime) -> np.ndarray:
    """Indices of the training images a regime uses, in training order (before shuffling).

    Examples
    --------
    >>> y = np.array([0, 9, 1, 9, 0, 1])
    >>> select_indices(y, Regime(ordered=True)).tolist()
    [1, 3, 0, 4, 2, 5]
    >>> select_indices(y, Regime(classes=(0,))).tolist()
    [0, 4]
    """
    y = np.asarray(labels).astype(np.int64)
    idx = np.arange(len(y))
    if regime.train_samples is not None:
        idx = idx[: int(regime.train_samples)]
    if regime.classes is not None:
        idx = idx[np.isin(y[idx], regime.classes)]
    if regime.fraction < 1:
        rng = np.random.default_rng(regime.seed)
        n = max(1, int(round(regime.fraction * len(idx))))
        idx = np.sort(rng.choice(idx, size=n, replace=False))
    if regime.ordered:
        present = sorted(set(y[idx].tolist()))
        order = [regime.first_class] + [c for c in present if c != regime.first_class]
        rank = {c: i for i, c in enumerate(order)}
        keys = np.array([rank.get(int(c), len(order)) for c in y[idx]])
        idx = idx[np.argsort(keys, kind="stable")]
    if len(idx) == 0:
        raise InputError(f"regime {regime.label!r} selects no training images")
    return idx


def noisy_labels(labels: torch.Tensor, idx: np.ndarray, regime: Regime) -> torch.Tensor:
    """The training labels a regime sees: ``labels`` with ``regime.label_noise`` of ``idx`` set to another class.

    Examples
    --------
    >>> y = torch.arange(10).repeat(10)
    >>> z = noisy_labels(y, np.arange(100), Regime(label_noise=0.3))
    >>> int((z != y).sum())
    30
    """
    if not regime.label_noise:
        return labels
    rng = np.random.default_rng([regime.seed, 7919])
    n = int(round(float(regime.label_noise) * len(idx)))
    hit = rng.choice(idx, size=n, replace=False)
    out = labels.clone()
    n_classes = int(labels.max()) + 1 if len(labels) else 10
    n_classes = max(n_classes, 10)
    shift = torch.from_numpy(rng.integers(1, n_classes, size=n))
    out[hit] = (labels[hit] + shift) % n_classes
    return out


def _loss(model: nn.Module, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if getattr(model, "loss", "cross_entropy") == "nll":
        return F.nll_loss(out, target)
    return F.cross_entropy(out, target)


@dataclass
class TrainedModel:
    """A trained network with its regime, checkpoint path, and training statistics."""

    model: nn.Module
    regime: Regime
    path: Path | None
    cached: bool
    n_train: int
    final_loss: float | None = None


def train(
    regime: Regime,
    *,
    data: tuple[torch.Tensor, torch.Tensor] | None = None,
    root: str | os.PathLike | None = None,
    download: bool | None = None,
    device: str | torch.device | None = None,
    cache: str | os.PathLike | None | bool = None,
    progress: bool = True,
) -> TrainedModel:
    """Train (or load from the cache) a network under a regime.

    Parameters
    ----------
    regime : Regime
    data : (images, labels), optional
        Training images in [0, 1] (N, C, H, W) and labels; default: the regime's training set
        from ``root`` / ``$PEEKLENS_DATA``.
    device : str or torch.device, optional
        Where to train (default CPU).  Training on CUDA is not bit-for-bit deterministic.
    cache : path, False or None
        Checkpoint directory (default :func:`cache_dir`); ``False`` never reads or writes one.
    progress : bool, default True
        A progress bar over training batches.

    Returns
    -------
    TrainedModel
        ``.model`` is on ``device`` and in eval mode.
    """
    dev = torch.device(device) if device is not None else torch.device("cpu")
    x, y = data if data is not None else load_dataset(regime.dataset, True, root, download=download)
    n_pool = int(len(x))
    model = make_network(regime.network, regime.dataset)
    path = None
    if cache is not False:
        path = cache_dir(cache if cache not in (None, True) else None) / f"{regime.key()}.pt"
        if path.exists():
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
                # a checkpoint trained on another pool of images (say, the CIFAR-10 subset instead of the full
                # set) does not count
                if int(state.get("n_pool", n_pool)) == n_pool:
                    model.load_state_dict(state["model"])
                    log.debug("loaded %s from %s", regime.label, path)
                    return TrainedModel(
                        model.to(dev).eval(), regime, path, True, int(state["n_train"]), float(state["final_loss"])
                    )
            except Exception as exc:  # a broken cache file: train again
                log.warning("ignoring unreadable checkpoint %s (%s)", path, exc)

    idx = select_indices(y, regime)
    y = noisy_labels(y, idx, regime)
    torch.manual_seed(regime.seed)
    model = make_network(regime.network, regime.dataset).to(dev)  # weights from the seed
    opt = torch.optim.SGD(model.parameters(), lr=regime.lr, momentum=regime.momentum)
    gen = torch.Generator().manual_seed(regime.seed)
    n_batches = int(np.ceil(len(idx) / regime.batch_size))
    total = max(1, int(round(n_batches * regime.epochs)))

    def orders():  # one order of the samples per pass over them
        for _ in range(int(np.ceil(regime.epochs))):
            order = torch.from_numpy(idx)
            if not regime.ordered:  # the PyTorch example shuffles every epoch; case III does not
                order = order[torch.randperm(len(idx), generator=gen)]
            yield order

    def step(sel: torch.Tensor) -> torch.Tensor:
        xb = normalize(x[sel], regime.dataset).to(dev)
        yb = y[sel].to(dev)
        opt.zero_grad(set_to_none=True)
        loss = _loss(model, model(xb), yb)
        loss.backward()
        opt.step()
        return loss

    model.train()
    last = run_batches(orders(), regime.batch_size, total, step, desc=f"train {regime.label}", progress=progress)
    model.eval()
    final = float(np.mean(last[-20:])) if last else None
    if path is not None:
        final_loss = final if final is not None else float("nan")
        save_checkpoint(path, model, n_train=len(idx), n_pool=n_pool, final_loss=final_loss)
    return TrainedModel(model, regime, path, False, len(idx), final)


def run_batches(orders, batch_size: int, total: int, step, *, desc: str, progress: bool = True) -> list[float]:
    """The training loop of the studies' networks: ``step(batch indices)`` (one optimizer step, returning
    the loss) on consecutive batches of each order of the samples ``orders`` yields, ``total`` batches in
    all, with a progress bar showing the loss; returns every batch's loss.

    >>> losses = run_batches(iter([torch.arange(5)] * 2), 2, 4, lambda sel: sel.float().sum(), desc="t", progress=False)
    >>> losses  # batches [0, 1], [2, 3], [4], then [0, 1] of the second order
    [1.0, 5.0, 4.0, 1.0]
    """
    bar = tqdm(total=total, desc=desc, unit="batch", disable=not progress)
    last: list[float] = []
    try:
        for order in orders:
            n_batches = int(np.ceil(len(order) / batch_size))
            for b in range(min(n_batches, total - len(last))):
                last.append(step(order[b * batch_size : (b + 1) * batch_size]).item())
                bar.update(1)
                if b % 20 == 0:
                    bar.set_postfix(loss=f"{last[-1]:.3f}", refresh=False)
            if len(last) >= total:
                break
    finally:
        bar.close()
    return last


def save_checkpoint(path: Path, model: nn.Module, **extra) -> None:
    """Write ``{"model": its CPU state dict, **extra}`` to ``path`` atomically (a temporary file, then a rename),
    so that a run interrupted while saving never leaves a broken cache entry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save({"model": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **extra}, tmp)
    os.replace(tmp, path)


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, dataset: str = "mnist", *, batch_size: int = 1000
) -> float:
    """Test accuracy (0..1) of a network on images in [0, 1] (normalized here)."""
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    correct = 0
    try:
        for i in range(0, len(x), batch_size):
            out = model(normalize(x[i : i + batch_size], dataset).to(dev))
            correct += int((out.argmax(1).cpu() == y[i : i + batch_size]).sum())
    finally:
        model.train(was)
    return correct / max(len(x), 1)
