"""Result containers: :class:`Factorization` (one rank) and :class:`Sweep` (many ranks)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .errors import InputError

if TYPE_CHECKING:
    from .quality import Quality

__all__ = ["Factorization", "Sweep"]


@dataclass(eq=False)
class Factorization:
    """A fitted coupled non-negative factorization ``X_b ~ W_b F^T`` for every block b.

    Attributes
    ----------
    F : numpy.ndarray
        Shared sample factor, (samples x rank).
    loadings : dict of str to numpy.ndarray
        Per-block factor W_b (features x rank): the paper's P_i for input
        channels and O_j for layers.
    errors : dict of str to float
        Relative error ``||X_b - W_b F^T|| / ||X_b||`` per block.
    rmse : float
        The paper's overall RMSE: ``sqrt(sum_b ||X_b - W_b F^T||^2 / total entries)``.
    objective : numpy.ndarray
        The (weighted) objective ``sum_b w_b ||X_b - W_b F^T||^2`` after each iteration.
    n_iter : int
        Iterations run.
    converged : bool
        Whether the tolerance was met before ``max_iter``.
    seconds : float
        Wall time of the fit.
    settings : dict
        Solver, rank, max_iter, tol, seed, device, weights... as used.
    blocks : dict of str to dict
        Description of every block (``kind``, per-sample ``shape``,
        ``n_features``), so that views can fold loadings without the data.
    labels : numpy.ndarray or None
        Per-sample labels carried over from the activations, for display only (never used by
        the fit); the schema's *sample* fields (:mod:`peeklens.schema`) document them.
    inputs : dict of str to numpy.ndarray or None
        The input-channel matrices (pixels x samples), shared with the activations (not copied),
        so that views can show the inputs that load on a factor; data the factorization does not
        own, kept as the schema's ``inputs`` field. Files keep them with ``pl.save(...,
        include_inputs=True)``; the schema's ``display`` section always keeps the images of the
        samples the views show.
    spatial : dict of str to numpy.ndarray or None
        Tensor model only (``settings["model"] == "tensor"``): per tensor block its spatial factor
        S (H*W positions x rank); ``loadings`` of those blocks is then the channel factor (channels x rank).
    interpretation : dict of str to peeklens.interpret.Explanation or None
        Per layer block, what its factors mean (maximized images, attribution heatmaps of the top
        inputs), added by :func:`peeklens.explain`; saved as the schema's ``interpretation`` section.
    quality : Quality or None
        The network's label-free training-quality score (``fit.quality = pl.quality(acts)``), saved
        with the fit (the schema's ``quality`` section) and shown by the comparison views.
    """

    F: np.ndarray
    loadings: dict[str, np.ndarray]
    errors: dict[str, float]
    rmse: float
    objective: np.ndarray
    n_iter: int
    converged: bool
    seconds: float
    settings: dict
    blocks: dict[str, dict] = field(default_factory=dict)
    labels: np.ndarray | None = None
    inputs: dict[str, np.ndarray] | None = None
    spatial: dict[str, np.ndarray] | None = None
    #: Where each sample comes from when a sample is a token or position (``Activations.sample_info``:
    #: ``sample``, ``position``, ``token``), for display only; None when a sample is a whole input.
    sample_info: dict[str, np.ndarray] | None = None
    interpretation: dict | None = None
    quality: Quality | None = None

    @property
    def rank(self) -> int:
        """Number of factors."""
        return int(self.F.shape[1])

    @property
    def n_samples(self) -> int:
        """Number of samples (rows of F)."""
        return int(self.F.shape[0])

    @property
    def input_names(self) -> list[str]:
        """Names of the input-channel blocks."""
        return [n for n, b in self.blocks.items() if b.get("kind") == "input"]

    @property
    def layer_names(self) -> list[str]:
        """Names of the layer blocks."""
        return [n for n, b in self.blocks.items() if b.get("kind") == "layer"]

    def reconstruct(self, name: str) -> np.ndarray:
        """The model of block ``name``: ``W F^T`` (features x samples).

        For a tensor block of a tensor-model fit ``W`` is the Khatri-Rao product of its channel and
        spatial factors (:func:`peeklens.nmf.tensor.tensor_loadings`): the CP model unfolded to
        (channels * positions x samples), rows in the block's (C, H, W) order.

        Examples
        --------
        >>> import numpy as np, peeklens as pl
        >>> acts = pl.Activations.from_arrays({"conv": np.random.default_rng(0).random((12, 20))},
        ...                                   shapes={"conv": (3, 2, 2)})
        >>> pl.factorize(acts, 2, model="tensor", max_iter=5).reconstruct("conv").shape
        (12, 20)
        """
        if name not in self.loadings:
            raise InputError(f"no block named {name!r}; blocks are {list(self.loadings)}")
        from .nmf.tensor import tensor_loadings  # here: peeklens.nmf imports this module

        return tensor_loadings(self, name) @ self.F.T

    def plot(self, **kwargs):
        """Relative error per block as a bqplot Figure; see :func:`peeklens.plots.factorization_figure`."""
        from .plots import factorization_figure

        return factorization_figure(self, **kwargs)

    def __repr__(self) -> str:
        status = "converged" if self.converged else "max_iter reached"
        errs = ", ".join(f"{k}: {v:.3f}" for k, v in self.errors.items())
        return (
            f"Factorization(rank={self.rank}, solver={self.settings.get('solver')!r}, rmse={self.rmse:.4g}, "
            f"{self.n_iter} iterations, {status}, {self.seconds:.2f}s)\n  relative error per block: {errs}"
        )


@dataclass(eq=False)
class Sweep(Mapping[int, Factorization]):
    """Factorizations at several ranks: a read-only mapping ``rank -> Factorization``.

    Attributes
    ----------
    fits : dict of int to Factorization
        The finished ranks in increasing order.
    interrupted : bool
        True when the sweep was stopped (KeyboardInterrupt) before every
        requested rank finished; the finished ranks are kept.
    requested : list of int
        The ranks that were asked for.
    quality : Quality or None
        The network's label-free training-quality score (``sweep.quality = pl.quality(acts)``), saved
        with the sweep (the schema's ``quality`` section) and shown by the comparison views.
    """

    fits: dict[int, Factorization]
    interrupted: bool = False
    requested: list[int] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    quality: Quality | None = None

    def __post_init__(self) -> None:
        self.fits = {int(r): self.fits[r] for r in sorted(self.fits)}
        if not self.requested:
            self.requested = list(self.fits)

    def __getitem__(self, rank: int) -> Factorization:
        try:
            return self.fits[int(rank)]
        except KeyError:
            raise KeyError(f"rank {rank} is not in this sweep; ranks are {self.ranks}") from None

    def __iter__(self) -> Iterator[int]:
        return iter(self.fits)

    def __len__(self) -> int:
        return len(self.fits)

    @property
    def ranks(self) -> list[int]:
        """The finished ranks, increasing."""
        return list(self.fits)

    @property
    def block_names(self) -> list[str]:
        """Block names (from the first factorization)."""
        return list(next(iter(self.fits.values())).blocks) if self.fits else []

    @property
    def rmse(self) -> np.ndarray:
        """Overall RMSE per rank, in the order of :attr:`ranks`."""
        return np.array([f.rmse for f in self.fits.values()])

    def errors(self) -> dict[str, np.ndarray]:
        """Relative error per block, each an array over :attr:`ranks`."""
        return {n: np.array([f.errors[n] for f in self.fits.values()]) for n in self.block_names}

    def table(self) -> dict[str, list]:
        """The error table as columns: ``rank``, ``rmse`` and one column per block.

        Ready for ``pandas.DataFrame(sweep.table())``.
        """
        out: dict[str, list] = {"rank": self.ranks, "rmse": [float(v) for v in self.rmse]}
        for n, v in self.errors().items():
            out[n] = [float(x) for x in v]
        return out

    def plot(self, **kwargs):
        """Error against rank as a bqplot Figure; see :func:`peeklens.plots.sweep_figure`."""
        from .plots import sweep_figure

        return sweep_figure(self, **kwargs)

    def __repr__(self) -> str:
        if not self.fits:
            return "Sweep(no finished ranks)"
        names = self.block_names
        widths = [max(10, len(n) + 2) for n in names]
        head = f"{'rank':>6}{'rmse':>12}" + "".join(f"{n:>{w}}" for n, w in zip(names, widths))
        lines = [
            f"Sweep over {len(self)} ranks"
            + (f" (interrupted: {len(self)} of {len(self.requested)} finished)" if self.interrupted else ""),
            head,
        ]
        for r, f in self.fits.items():
            lines.append(
                f"{r:>6d}{f.rmse:>12.5g}" + "".join(f"{f.errors[n]:>{w}.4f}" for n, w in zip(names, widths))
            )
        lines.append("(rmse: the paper's overall RMSE; other columns: relative error per block)")
        return "\n".join(lines)
