"""The paper's solver: Lee & Seung multiplicative updates, coupled through F.

One iteration, exactly as in Saini & Papalexakis (2018), with ``*`` and ``/``
element-wise and ``eps`` added to every denominator::

    F   <- F   * (sum_b w_b X_b^T W_b) / (F sum_b w_b W_b^T W_b + eps)
    W_b <- W_b * (X_b F)               / (W_b F^T F + eps)        for every block b

(with all weights 1, as in the paper).  This equals multiplicative-update NMF
of the stacked matrix, so any NMF implementation is an oracle for it.
"""

from __future__ import annotations

import torch

from ._problem import Problem, SolverResult, big_mm, block_sq_from_grams, converged, weighted_sum

__all__ = ["solve"]


def solve(
    problem: Problem,
    F: torch.Tensor,
    W: list[torch.Tensor],
    *,
    max_iter: int,
    tol: float,
    eps: float,
    callback=None,
) -> SolverResult:
    """Run multiplicative updates until ``max_iter`` or a relative objective change below ``tol``."""
    objective: list[float] = []
    block_sq = None
    done = False
    it = 0
    for it in range(1, max_iter + 1):
        # F update: numerator and denominator summed over weighted blocks.
        num = torch.zeros_like(F)
        gram = torch.zeros((F.shape[1], F.shape[1]), dtype=F.dtype, device=F.device)
        for w, Xb, Wb in zip(problem.weights, problem.X, W):
            if w == 0:
                continue
            num.add_(big_mm(Xb.T, Wb), alpha=w)
            gram.add_(Wb.T @ Wb, alpha=w)
        den = F @ gram
        den.add_(eps)
        F.mul_(num).div_(den)
        # Block updates; X_b F is kept for the objective.
        FtF = F.T @ F
        XF = []
        for Xb, Wb in zip(problem.X, W):
            XFb = big_mm(Xb, F)
            den = Wb @ FtF
            den.add_(eps)
            Wb.mul_(XFb).div_(den)
            XF.append(XFb)
        block_sq = block_sq_from_grams(problem, W, XF, FtF)
        objective.append(weighted_sum(problem, block_sq))
        if callback is not None:
            callback(it, objective[-1])
        if converged(objective, tol):
            done = True
            break
    return SolverResult(F, W, objective, it, done, block_sq=block_sq)
