"""Singular-value spectra and effective ranks of every block (paper Figs. 4, 5, 8)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from ._validation import closest, non_negative_int, positive_int
from .activations import Activations
from .errors import InputError
from .nmf._problem import chunked_norm2, finite_min_max

__all__ = ["Spectrum", "spectrum", "entropy_rank", "stable_rank"]

#: Blocks whose smaller side is at most this are decomposed exactly.
EXACT_LIMIT = 4096


@dataclass(eq=False)
class Spectrum:
    """Top singular values and effective ranks per block.

    Attributes
    ----------
    values : dict of str to numpy.ndarray
        The top ``k`` singular values of each block, decreasing.
    entropy_rank : dict of str to float
        ``exp(H(p))`` with ``p = s / sum(s)`` (Roy & Vetterli 2007; RankMe, Garrido et al. 2023),
        over all singular values when exact, over the top ``k`` when randomized.
    stable_rank : dict of str to float
        ``||X||_F^2 / s_1^2``: a smooth, always exact lower bound of the rank.
    method : dict of str to str
        ``"exact"`` or ``"randomized"`` per block.
    """

    values: dict[str, np.ndarray]
    entropy_rank: dict[str, float]
    stable_rank: dict[str, float]
    method: dict[str, str]
    k: int
    meta: dict = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.values)

    def plot(self, **kwargs):
        """Singular values per block (log scale) as a bqplot Figure; see :func:`peeklens.plots.spectrum_figure`."""
        from .plots import spectrum_figure

        return spectrum_figure(self, **kwargs)

    def __repr__(self) -> str:
        lines = [f"Spectrum (top {self.k} singular values)"]
        for n, v in self.values.items():
            top = ", ".join(f"{x:.3g}" for x in v[:3])
            lines.append(
                f"  {n:24s} s1..3 = {top}   entropy rank {self.entropy_rank[n]:.1f}   "
                f"stable rank {self.stable_rank[n]:.2f}   ({self.method[n]})"
            )
        return "\n".join(lines)


def entropy_rank(s: np.ndarray) -> float:
    """Entropy effective rank ``exp(-sum p log p)``, ``p = s / sum(s)``.

    >>> round(entropy_rank(np.array([1.0, 1.0, 1.0, 0.0])), 6)
    3.0
    """
    s = np.asarray(s, dtype=np.float64)
    s = s[s > 0]
    if s.size == 0:
        return 0.0
    p = s / s.sum()
    return float(math.exp(-np.sum(p * np.log(p))))


def stable_rank(fro2: float, s1: float) -> float:
    """``||X||_F^2 / s_1^2`` (0 for a zero matrix).

    >>> stable_rank(8.0, 2.0)
    2.0
    """
    return 0.0 if s1 <= 0 else float(fro2 / (s1 * s1))


def _exact_singular_values(X: torch.Tensor) -> torch.Tensor:
    m, n = X.shape
    G = X @ X.T if m <= n else X.T @ X  # the small Gram matrix
    ev = torch.linalg.eigvalsh(G.double())
    return torch.sqrt(torch.clamp(ev.flip(0), min=0))


def spectrum(
    acts: Activations,
    k: int = 50,
    *,
    blocks=None,
    device=None,
    seed: int = 0,
    n_iter: int = 6,
    distributed: bool = False,
) -> Spectrum:
    """Top-``k`` singular values of every block, with entropy and stable ranks.

    Exact (eigenvalues of the smaller Gram matrix, in float64) when a block's
    smaller side is at most 4096; randomized (``torch.svd_lowrank``, Halko et
    al. 2011, with ``n_iter`` power iterations) otherwise.

    Parameters
    ----------
    acts : Activations
    k : int, default 50
        Number of singular values kept per block (fewer if a block is smaller).
    blocks : list of str, optional
        Only these blocks (default: all).
    device : str or torch.device, optional
    seed : int, default 0
        Seed of the randomized method.
    n_iter : int, default 6
        Power iterations of the randomized method.
    distributed : bool, default False
        The spectra of the union of the samples of every process of the initialized
        ``torch.distributed`` process group (``acts`` is this process's share; call it on every
        process).  Exact blocks (at most 4096 features) all-reduce their ``features x features``
        Gram matrix; wider blocks use a randomized range finder across processes
        (:func:`peeklens.nmf.distributed.spectrum_values`), statistically but not numerically the
        same as the single-process ``torch.svd_lowrank``.

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> X = np.outer(np.arange(1, 7), np.ones(5))  # rank 1
    >>> sv = pl.spectrum(pl.Activations.from_arrays({"a": X}), k=3)
    >>> sv.values["a"].round(3).tolist(), round(sv.stable_rank["a"], 3)
    ([21.331, 0.0, 0.0], 1.0)
    """
    if not isinstance(acts, Activations):
        raise InputError(
            f"spectrum expects peeklens.Activations (from pl.capture or Activations.from_arrays), "
            f"got {type(acts).__name__}"
        )
    k = positive_int(k, "k")
    n_iter = non_negative_int(n_iter, "n_iter")
    seed = non_negative_int(seed, "seed")
    names = acts.names if blocks is None else list(blocks)
    for n in names:
        if n not in acts.names:
            near = closest(n, acts.names)
            hint = f"did you mean {near!r}? " if near else ""
            raise InputError(f"spectrum: no block {n!r}; {hint}blocks are {acts.names}")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if distributed:
        from .nmf.distributed import spectrum_values

        values, ent, stab, method, n_total = spectrum_values(acts.select(names), k, dev, seed, n_iter, EXACT_LIMIT)
        return Spectrum(values, ent, stab, method, int(k), meta={"n_samples": n_total, "distributed": True})
    values, ent, stab, method = {}, {}, {}, {}
    gen = torch.Generator().manual_seed(seed)

    for n in names:
        data = np.asarray(acts[n].data, dtype=np.float32)  # memory maps stay memory maps
        if data.size == 0:
            raise InputError(f"block {n!r} is empty (shape {data.shape}); it has no spectrum")
        if finite_min_max(data)[0] is None:  # chunked: no copy of the block
            raise InputError(f"block {n!r} has NaN or Inf values; its spectrum is undefined")
        with warnings.catch_warnings():  # read-only memory maps are only read
            warnings.filterwarnings("ignore", message=".*not writable.*")
            X = torch.from_numpy(data).to(dev)
        kk = min(k, *X.shape)
        fro2 = chunked_norm2(X)
        if min(X.shape) <= EXACT_LIMIT:
            s = _exact_singular_values(X)
            method[n] = "exact"
            ent[n] = entropy_rank(s.cpu().numpy())
        else:
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
            _, s, _ = torch.svd_lowrank(X, q=min(kk + 10, *X.shape), niter=n_iter)
            s = s.double()
            method[n] = "randomized"
            ent[n] = entropy_rank(s[:kk].cpu().numpy())
        top = s[:kk].cpu().numpy()
        values[n] = top
        stab[n] = stable_rank(fro2, float(top[0]) if top.size else 0.0)
    return Spectrum(values, ent, stab, method, int(k), meta={"n_samples": acts.n_samples})
