"""The paper's solver: Lee & Seung multiplicative updates, coupled through F.

One iteration, exactly as in Saini & Papalexakis (2018), with ``*`` and ``/``
element-wise and ``eps`` added to every denominator::

    F   <- F   * (sum_b w_b X_b^T W_b) / (F sum_b w_b W_b^T W_b + eps)
    W_b <- W_b * (X_b F)               / (W_b F^T F + eps)        for every block b

(with all weights 1, as in the paper).  This equals multiplicative-update NMF
of the stacked matrix, so any NMF implementation is an oracle for it.

**Signed blocks** (semi-NMF, Ding, Li & Jordan 2010, section 3): a block marked signed has
unconstrained loadings, fitted exactly given ``F`` by least squares, and ``F`` (still
non-negative) takes Ding et al.'s multiplicative rule with the positive and negative parts
(``P+ = (|P| + P) / 2``, ``P- = (|P| - P) / 2``) of ``A = sum_b w_b X_b^T W_b`` and
``B = sum_b w_b W_b^T W_b``::

    F   <- F * sqrt((A+ + F B-) / (A- + F B+ + eps))
    W_b <- X_b F (F^T F)^{-1}                                     for every signed block b

while non-negative blocks keep the paper's update above.  As in Ding et al., the signed loadings
come first: :func:`peeklens.factorize` fits them by least squares to the starting ``F`` before
the first iteration.  With no signed block the iteration is the paper's, unchanged.
"""

from __future__ import annotations

import torch

from ._linalg import gram_solve
from ._problem import Problem, SolverResult, big_mm, block_sq_from_grams, converged, weighted_sum

__all__ = ["solve", "update_F", "update_W"]


def update_F(problem: Problem, F: torch.Tensor, W: list[torch.Tensor], eps: float) -> None:
    """One multiplicative update of ``F`` given the loadings, in place.

    The paper's rule when no block is signed; Ding et al.'s semi-NMF rule otherwise.
    """
    num = torch.zeros_like(F)
    gram = torch.zeros((F.shape[1], F.shape[1]), dtype=F.dtype, device=F.device)
    for w, Xb, Wb in zip(problem.weights, problem.X, W):
        if w == 0:
            continue
        num.add_(big_mm(Xb.T, Wb), alpha=w)
        gram.add_(Wb.T @ Wb, alpha=w)
    if not problem.any_signed:
        den = F @ gram
        den.add_(eps)
        F.mul_(num).div_(den)
        return
    A_pos, A_neg = num.clamp(min=0), (-num).clamp_(min=0)
    B_pos, B_neg = gram.clamp(min=0), (-gram).clamp_(min=0)
    top = A_pos.add_(F @ B_neg)
    bottom = A_neg.add_(F @ B_pos).add_(eps)
    F.mul_(top.div_(bottom).sqrt_())


def update_W(
    problem: Problem, F: torch.Tensor, W: list[torch.Tensor], eps: float
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Update every block's loadings given ``F``, in place; returns ``[X_b F]`` and ``F^T F`` (for the objective)."""
    FtF = F.T @ F
    XF = []
    for Xb, Wb, signed in zip(problem.X, W, problem.signed):
        XFb = big_mm(Xb, F)
        if signed:  # least squares: W_b = X_b F (F^T F)^{-1}
            Wb.copy_(gram_solve(FtF, XFb.T).T)
        else:
            den = Wb @ FtF
            den.add_(eps)
            Wb.mul_(XFb).div_(den)
        XF.append(XFb)
    return XF, FtF


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
    """Run multiplicative updates until ``max_iter`` or a relative objective change below ``tol``.

    ``F`` and ``W`` are updated in place (``F`` first, then every block, as in the paper);
    ``callback(i, objective)`` is called after each iteration.
    """
    objective: list[float] = []
    block_sq = None
    done = False
    it = 0
    for it in range(1, max_iter + 1):
        update_F(problem, F, W, eps)
        XF, FtF = update_W(problem, F, W, eps)
        block_sq = block_sq_from_grams(problem, W, XF, FtF)
        objective.append(weighted_sum(problem, block_sq))
        if callback is not None:
            callback(it, objective[-1])
        if converged(objective, tol):
            done = True
            break
    return SolverResult(F, W, objective, it, done, block_sq=block_sq)
