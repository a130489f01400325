"""Hierarchical alternating least squares (HALS; Cichocki & Phan 2009), accelerated as in
Gillis & Glineur (2012).

One iteration::

    A  = sum_b w_b X_b^T W_b,  B = sum_b w_b W_b^T W_b        (one pass over the data)
    F[:, k] <- max(0, F[:, k] + (A[:, k] - F B[:, k]) / B[k, k])   for k = 1..r, a few times
    C_b = X_b F,  G = F^T F                                    (one pass over the data)
    W_b[:, k] <- max(0, W_b[:, k] + (C_b[:, k] - W_b G[:, k]) / G[k, k])  for every block, a few times

The two big products are single matrix products per block; the column updates only touch the
small Gram matrices ``B``, ``G`` and the factors, so they cost ``O((samples + features) r^2)`` and
are repeated a few times per pass over the data while they still make progress.  Every column
update is the exact minimizer of the objective in that column, so the objective never increases.
The weights cancel in the ``W_b`` update (each block is fitted given ``F``) and weight ``F``'s.
The objective is computed from ``C_b``, ``G`` and ``||X_b||^2`` without forming the residual.

Signed blocks (semi-NMF, Ding, Li & Jordan 2010) take the exact unconstrained least-squares
loadings ``W_b = C_b G^{-1}`` instead of the clamped column updates; ``F``'s update is the same
(its rows stay non-negative), so the objective still never increases.
"""

from __future__ import annotations

import torch

from ._linalg import hals_rows, loadings_update, one_thread, row_slices, signed_slices
from ._problem import (
    Problem,
    SolverResult,
    big_mm,
    block_sq_from_grams,
    count_pass,
    iterate,
    products,
    weighted_sum,
)

__all__ = ["solve", "HalsState"]


def _inner_budget(problem: Problem, rank: int, work: int) -> int:
    """Row sweeps per pass over the data: about half what one data pass costs (Gillis & Glineur)."""
    data = sum(problem.n_features) * problem.n_samples * rank
    cheap = max(work * rank * (rank + 1), 1)
    return int(max(1, min(1 + 0.5 * data / cheap, 10)))


class HalsState:
    """HALS on transposed, contiguous factors ``Ft`` (r x samples) and ``Wt`` (r x total features)."""

    def __init__(self, problem: Problem, F: torch.Tensor, W: list[torch.Tensor], max_inner: int | None = None):
        self.problem = problem
        self.slices = row_slices(problem)
        self.Ft = F.T.contiguous()
        self.Wt = torch.cat([w.T for w in W], dim=1).contiguous()
        r = F.shape[1]
        n, M = problem.n_samples, sum(problem.n_features)
        self.inner_F = max_inner or _inner_budget(problem, r, n)
        self.inner_W = max_inner or _inner_budget(problem, r, M)
        self.active = [w > 0 for w in problem.weights]
        self.signed = signed_slices(problem)  # semi-NMF: these blocks' loadings by least squares
        # F's rows are spread over the processes of a distributed fit: their stopping rule adds up
        self.reduce = problem.comm.sum_floats if problem.comm is not None else None

    def step(self) -> float:
        """One HALS iteration; returns the exact objective after it."""
        p, Ft, Wt = self.problem, self.Ft, self.Wt
        r = Ft.shape[0]
        # F given W: A^T = sum_b w_b W_b^T X_b, B = sum_b w_b W_b^T W_b
        W = Wt.T.contiguous()
        A = None
        B = torch.zeros((r, r), dtype=Ft.dtype, device=Ft.device)
        count_pass(p, [i for i, w in enumerate(p.weights) if w != 0])
        for sl, w, Xb in zip(self.slices, p.weights, p.X):
            if w == 0:
                continue
            Wb = W[sl]
            part = big_mm(Xb.T, Wb)
            if A is None:
                A = part if w == 1.0 else part * w
            else:
                A.add_(part, alpha=w)
            B.add_(Wb.T @ Wb, alpha=w)
        hals_rows(Ft, A.T, B, max_inner=self.inner_F, reduce=self.reduce)
        # W given F: C_b = X_b F, G = F^T F (the weights cancel; summed over processes when distributed)
        XF, G = products(p, Ft.T.contiguous(), Ft)
        Ct = torch.empty_like(Wt)
        for sl, XFb in zip(self.slices, XF):
            Ct[:, sl] = XFb.T
        loadings_update(Wt, Ct, G, self.signed, max_inner=self.inner_W)
        with one_thread(Wt.device):
            return self.objective(Ct, G)

    def objective(self, Ct: torch.Tensor, G: torch.Tensor) -> float:
        """``sum_b w_b (||X_b||^2 - 2 <W_b, X_b F> + <W_b^T W_b, F^T F>)`` in float64.

        Keeps each block's (unweighted) value in ``block_sq``: the final errors need no pass.
        """
        W = [self.Wt[:, sl].T for sl in self.slices]
        XF = [Ct[:, sl].T for sl in self.slices]
        self.block_sq = block_sq_from_grams(self.problem, W, XF, G)
        return weighted_sum(self.problem, self.block_sq)

    def factors(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        F = self.Ft.T.contiguous()
        W = [self.Wt[:, sl].T.contiguous() for sl in self.slices]
        return F, W


def solve(
    problem: Problem,
    F: torch.Tensor,
    W: list[torch.Tensor],
    *,
    max_iter: int,
    tol: float,
    eps: float = 0.0,
    callback=None,
    max_inner: int | None = None,
) -> SolverResult:
    """Run HALS until ``max_iter`` iterations or a relative objective change below ``tol``.

    ``max_inner`` caps the row sweeps per pass over the data (default: chosen from the sizes so
    that the sweeps cost about half a data pass); ``eps`` is unused (no denominators to guard).
    """
    state = HalsState(problem, F, W, max_inner=max_inner)
    objective, it, done = iterate(state.step, max_iter, tol, callback)
    F, W = state.factors()
    return SolverResult(F, W, objective, it, done, block_sq=getattr(state, "block_sq", None))
