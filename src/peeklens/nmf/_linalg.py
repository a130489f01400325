"""Linear algebra shared by the fast solvers: the stacked weighted matrix as an operator,
randomized range finders and SVDs (Halko, Martinsson & Tropp 2011), and HALS row updates.

The stacked weighted matrix is ``X_w = [sqrt(w_1) X_1; sqrt(w_2) X_2; ...]`` (total features x
samples); ``sum_b w_b ||X_b - W_b F^T||^2 = ||X_w - V F^T||^2`` with ``V = [sqrt(w_b) W_b]``.  It is
never formed: products with it are computed block by block, so no copy of the data is made.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from ._problem import Problem, big_mm

__all__ = [
    "Sketch",
    "one_thread",
    "row_slices",
    "xw_mm",
    "xwt_mm",
    "range_sketch",
    "randomized_svd",
    "hals_rows",
    "gram_solve",
    "loadings_update",
    "clamp_unsigned",
    "signed_slices",
    "fit_signed_loadings",
]


def row_slices(problem: Problem) -> list[slice]:
    """Rows of each block in the stacked matrix."""
    out, start = [], 0
    for m in problem.n_features:
        out.append(slice(start, start + m))
        start += m
    return out


def sqrt_weights(problem: Problem) -> list[float]:
    return [float(np.sqrt(w)) for w in problem.weights]


def xw_mm(problem: Problem, B: torch.Tensor) -> torch.Tensor:
    """``X_w @ B`` for ``B`` (samples x k): (total features x k)."""
    out = torch.empty((sum(problem.n_features), B.shape[1]), dtype=B.dtype, device=B.device)
    for sl, s, Xb in zip(row_slices(problem), sqrt_weights(problem), problem.X):
        part = big_mm(Xb, B)
        out[sl] = part if s == 1.0 else part * s
    return out


def xwt_mm(problem: Problem, Q: torch.Tensor) -> torch.Tensor:
    """``X_w^T @ Q`` for ``Q`` (total features x k): (samples x k)."""
    out = None
    for sl, s, Xb in zip(row_slices(problem), sqrt_weights(problem), problem.X):
        if s == 0.0:
            continue
        part = big_mm(Xb.T, Q[sl].contiguous())
        if out is None:
            out = part if s == 1.0 else part * s
        else:
            out.add_(part, alpha=s)
    return out


def _gaussian(shape: tuple[int, int], seed: int, device: torch.device) -> torch.Tensor:
    """Standard normal test matrix drawn on the CPU, so that it is the same on every device."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randn(shape, generator=g, dtype=torch.float32).to(device)


def _orth(Y: torch.Tensor) -> torch.Tensor:
    with one_thread(Y.device):
        return torch.linalg.qr(Y, mode="reduced").Q


@dataclass
class Sketch:
    """``X_w ~ L @ B``: an orthonormal basis ``L`` (total features x k) of the range of ``X_w``
    and ``B = L^T X_w`` (k x samples).  ``tail2 = ||X_w||^2 - ||B||^2`` is the energy outside it."""

    L: torch.Tensor
    B: torch.Tensor
    tail2: float
    seed: int
    power_iter: int

    @property
    def k(self) -> int:
        return int(self.L.shape[1])


def range_sketch(problem: Problem, k: int, *, power_iter: int = 2, seed: int = 0) -> Sketch:
    """Randomized range finder with ``power_iter`` power (subspace) iterations.

    Costs ``2 * power_iter + 2`` passes over the data, each a product with ``k`` columns.
    """
    M, n = sum(problem.n_features), problem.n_samples
    k = int(min(k, M, n))
    dev = problem.device
    Q = _orth(xw_mm(problem, _gaussian((n, k), seed, dev)))
    for _ in range(power_iter):
        Z = _orth(xwt_mm(problem, Q))
        Q = _orth(xw_mm(problem, Z))
    B = xwt_mm(problem, Q).T.contiguous()  # k x n
    total = problem.weighted_norm2()
    tail2 = max(total - float(torch.sum(B.double() ** 2)), 0.0)
    return Sketch(Q, B, tail2, int(seed), int(power_iter))


def randomized_svd(
    problem: Problem,
    rank: int,
    *,
    oversample: int = 10,
    power_iter: int = 4,
    seed: int = 0,
    sketch: Sketch | None = None,
):
    """Top ``rank`` singular triplets of ``X_w``: ``U`` (features x rank), ``S`` (rank), ``V`` (samples x rank).

    Uses ``sketch`` when it is given and wide enough, else builds one.
    """
    if sketch is None or sketch.k < min(rank + oversample, sum(problem.n_features), problem.n_samples):
        sketch = range_sketch(problem, rank + oversample, power_iter=power_iter, seed=seed)
    with one_thread(sketch.B.device):
        Ub, S, Vt = torch.linalg.svd(sketch.B.double(), full_matrices=False)
        U = (sketch.L.double() @ Ub[:, :rank]).float()
    return U, S[:rank].float(), Vt[:rank].T.float().contiguous()


def hals_rows(Ht: torch.Tensor, At: torch.Tensor, G: torch.Tensor, *, max_inner: int = 1, delta: float = 0.1) -> int:
    """Hierarchical ALS on the rows of ``Ht`` (r x N), in place.

    Minimizes ``0.5 tr(Ht^T G Ht) - <At, Ht>`` over ``Ht >= 0`` (e.g. ``Ht = F^T``, ``At = V^T X_w``,
    ``G = V^T V``) one row at a time, each row given the others: the exact minimizer is
    ``max(0, (At[k] - sum_{j != k} G[k, j] Ht[j]) / G[k, k])``.  Only the small ``G`` and the
    ``r x N`` matrices are touched.  Repeats the sweep over rows up to ``max_inner`` times while
    it still moves the rows by more than ``delta`` times the first sweep (Gillis & Glineur 2012).
    Returns the number of sweeps made.
    """
    with one_thread(Ht.device):
        return _hals_rows(Ht, At, G, max_inner, delta)


@contextlib.contextmanager
def one_thread(device: torch.device):
    """Run small-matrix work (row updates, Gram matrices, sketched products) on one CPU thread.

    It touches matrices of a few thousand entries per operation; spreading each over threads
    gains little and, when another process holds a core, every operation waits for a descheduled
    thread (measured here: a rank-50 row sweep took 0.6 ms on one thread and up to 0.5 s on two
    under load).  Passes over the data keep every thread.
    """
    n = torch.get_num_threads()
    if device.type != "cpu" or n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


ROW_BLOCK = 8


def _hals_rows(Ht, At, G, max_inner, delta) -> int:
    diag = torch.diagonal(G)
    # a row whose partner is all zero (G[k, k] == 0) has no information: keep it as it is, so that
    # the pair can recover later (setting it to 0 would lock both at zero for good)
    ok = (diag > 0).tolist()
    d = diag.clamp_min(torch.finfo(G.dtype).tiny)
    G0 = G.clone().fill_diagonal_(0)
    Gs = G0 / d[:, None]
    r = Ht.shape[0]
    # with one block there is nothing outside it: At / d is the same for every sweep, scale it once
    whole = At / d[:, None] if r <= ROW_BLOCK else None
    first = None
    sweeps = 0
    # one buffer for the rows before a sweep, reused: fresh (rows x samples) temporaries every sweep
    # cost more than the sweep itself at rank 50 (each is a new mapping the kernel has to fault in)
    moved = torch.empty_like(Ht) if max_inner > 1 else None
    for sweeps in range(1, max_inner + 1):
        last = sweeps == max_inner
        if moved is not None and not last:
            moved.copy_(Ht)
        _sweep(Ht, At, G0, Gs, d, ok, r, whole)
        if moved is not None and not last:
            change = float(torch.linalg.vector_norm(moved.sub_(Ht))) ** 2
            if first is None:
                first = change
            elif change <= delta * delta * first:
                break
    return sweeps


def _sweep(Ht, At, G0, Gs, d, ok, r, whole) -> None:
    """One sweep over the rows, in blocks of ``ROW_BLOCK`` rows.

    ``G0`` is ``G`` with a zero diagonal, ``d`` its diagonal and ``Gs = G0 / d`` (row-scaled);
    ``whole`` is ``At / d``, needed (and given) only when all rows fit in one block.
    The same sequential row updates as row-by-row HALS, arranged so that most of the work is one
    matrix product per block: the contribution of the rows outside the block (earlier blocks
    already updated, later ones not yet) is computed at once, scaled by ``1 / d`` while the block
    is in cache, and only the few rows inside the block are updated one after another.  The row
    views come from one ``unbind`` per block (indexing row by row cost about a third of a
    rank-50 sweep).
    """
    for a in range(0, r, ROW_BLOCK):
        b = min(a + ROW_BLOCK, r)
        Hb = Ht[a:b]
        if b - a == r:  # one block: nothing outside it
            base = whole
        else:  # (At - G0[block, outside] @ Ht[outside]) / d
            base = torch.addmm(At[a:b], G0[a:b], Ht, alpha=-1)
            base.addmm_(G0[a:b, a:b], Hb)
            base.div_(d[a:b, None])
        HbT = Hb.T
        for row, out, g, live in zip(base.unbind(0), Hb.unbind(0), Gs[a:b, a:b].unbind(0), ok[a:b]):
            if live:
                torch.clamp(torch.addmv(row, HbT, g, alpha=-1), min=0, out=out)


def gram_solve(G: torch.Tensor, Ct: torch.Tensor) -> torch.Tensor:
    """``G^{-1} Ct`` for a symmetric positive semi-definite ``G`` (r x r): the unconstrained minimizer
    ``Ht`` of ``0.5 tr(Ht^T G Ht) - <Ct, Ht>``, e.g. the least-squares loadings of a signed block
    (``W_b^T = (F^T F)^{-1} (X_b F)^T``, Ding, Li & Jordan 2010).

    Solved in float64 through the eigendecomposition of ``G`` (``G^+ Ct``: for a singular ``G``,
    e.g. a factor that is all zero, the minimum-norm minimizer; eigenvalues below
    ``r * 1e-13 * max`` count as zero).  Returns ``Ct``'s dtype.  (A Cholesky factorization would
    do as well, but ``cholesky_ex`` of a small matrix took up to 20 ms here on a loaded machine,
    ``eigh`` 0.02 ms.)
    """
    evals, Q = torch.linalg.eigh(G.double())
    cut = evals.max().clamp_min(0) * (G.shape[0] * 1e-13)
    inv = torch.where(evals > cut, 1.0 / evals.clamp_min(torch.finfo(torch.float64).tiny), torch.zeros_like(evals))
    out = Q @ (inv[:, None] * (Q.T @ Ct.double()))
    return out.to(Ct.dtype)


def loadings_update(
    Vt: torch.Tensor, Ct: torch.Tensor, G: torch.Tensor, signed: list[slice], *, max_inner: int = 1
) -> None:
    """The loadings given ``F``, in place on the stacked ``Vt`` (r x total features).

    Columns of non-negative blocks: HALS (:func:`hals_rows`); columns in ``signed`` (slices of
    signed blocks): the exact unconstrained least squares :func:`gram_solve`, never clamped.
    """
    hals_rows(Vt, Ct, G, max_inner=max_inner)
    for sl in signed:
        Vt[:, sl] = gram_solve(G, Ct[:, sl])


def clamp_unsigned(Vt: torch.Tensor, signed: list[slice]) -> None:
    """Clamp the stacked loadings ``Vt`` at 0, except the columns of signed blocks (``signed`` slices)."""
    if not signed:
        Vt.clamp_(min=0)
        return
    start = 0
    for sl in sorted(signed, key=lambda s: s.start):
        if sl.start > start:
            Vt[:, start : sl.start].clamp_(min=0)
        start = sl.stop
    if start < Vt.shape[1]:
        Vt[:, start:].clamp_(min=0)


def signed_slices(problem: Problem) -> list[slice]:
    """Columns of the stacked loadings that belong to signed blocks."""
    return [sl for sl, sg in zip(row_slices(problem), problem.signed) if sg]


def fit_signed_loadings(problem: Problem, F: torch.Tensor, W: list[torch.Tensor]) -> list[torch.Tensor]:
    """``W`` with every signed block's loadings replaced by their least-squares fit given ``F``.

    The start of semi-NMF in Ding, Li & Jordan's order (the loadings first, then ``F``): a signed
    block's loadings from a non-negative init would make ``sum_b X_b^T W_b`` point the wrong way
    and drive ``F`` to zero in the first update.  One pass over the signed blocks.
    """
    if not problem.any_signed:
        return W
    FtF = F.T @ F
    return [
        gram_solve(FtF, big_mm(Xb, F).T).T.contiguous() if sg else Wb
        for Xb, Wb, sg in zip(problem.X, W, problem.signed)
    ]
