"""Compressed HALS: iterate on a randomized sketch of the data, then polish on the real data.

Following compressed NMF (Tepper & Sapiro 2016) with a randomized range finder (Halko, Martinsson
& Tropp 2011): the stacked weighted matrix ``X_w`` (total features x samples) is replaced by
``L B`` with ``L`` an orthonormal basis of its dominant range (``k = rank + oversample`` columns,
a few power iterations) and ``B = L^T X_w`` (k x samples).  HALS then runs on the small matrices::

    A^T = (V^T L) B,   C^T = (F^T B^T) L^T                     (instead of V^T X_w and F^T X_w^T)

so an iteration costs ``O((samples + features) (k + r) r)`` instead of ``O(samples features r)``.
The compressed iterations are accelerated by extrapolation (Ang & Gillis 2019): after each
accepted iteration both factors jump ahead along their last move by a factor ``beta`` that grows
while it helps; an iteration that ends above the last accepted objective is undone and ``beta``
shrinks, so the recorded objective never increases.
After the compressed phase converges, ``exact_iter`` ordinary HALS iterations on the real data
finish the fit, so the reported objective, errors and RMSE are those of the real data.

During the compressed phase the recorded objective is ``||X_w - L L^T X_w||^2 + ||L L^T X_w -
V F^T||^2``, an estimate of the real objective (exact when ``V F^T`` lies in the sketch's range);
the last ``settings["exact_iter"]`` entries of ``Factorization.objective`` are exact.
"""

from __future__ import annotations

import torch

from . import hals
from ._linalg import Sketch, hals_rows, one_thread, range_sketch, row_slices, sqrt_weights
from ._problem import Problem, SolverResult, converged, random_init

__all__ = ["solve", "sketch_size"]

DEFAULT_OVERSAMPLE = 20
DEFAULT_POWER_ITER = 2
DEFAULT_EXACT_ITER = 3


def sketch_size(problem: Problem, rank: int, oversample: int = DEFAULT_OVERSAMPLE) -> int:
    """Columns of the sketch for ``rank``: ``rank + oversample``."""
    return int(rank + oversample)


def worth_compressing(problem: Problem, k: int) -> bool:
    """Compression pays when the sketch is much smaller than the data's smaller side."""
    return 2 * k <= min(sum(problem.n_features), problem.n_samples)


def solve(
    problem: Problem,
    F: torch.Tensor,
    W: list[torch.Tensor],
    *,
    max_iter: int,
    tol: float,
    eps: float = 0.0,
    callback=None,
    sketch: Sketch | None = None,
    oversample: int = DEFAULT_OVERSAMPLE,
    power_iter: int = DEFAULT_POWER_ITER,
    exact_iter: int = DEFAULT_EXACT_ITER,
    seed: int = 0,
    extrapolate: bool = True,
    also_random: bool = False,
    info: dict | None = None,
) -> SolverResult:
    """Compressed HALS for up to ``max_iter`` iterations, then up to ``exact_iter`` exact HALS iterations.

    ``sketch`` (from :func:`~peeklens.factorize._linalg.range_sketch`, at least ``rank`` columns)
    may be shared by several ranks, e.g. across a sweep; otherwise one with ``rank + oversample``
    columns and ``power_iter`` power iterations is drawn from ``seed``.  When that sketch would not
    be much smaller than the data, plain HALS runs instead.  ``info`` (a dict) receives what was
    done: ``compressed_iter``, ``exact_iter``, ``sketch_k``.  ``extrapolate=False`` turns the
    extrapolation of the compressed phase off.  ``also_random=True``
    runs the compressed phase a second time from the paper's random start (from ``seed``) and keeps
    the start that ends lower (``info["start_kept"]``: ``"init"`` or ``"random"``).
    """
    info = {} if info is None else info
    r = F.shape[1]
    k = sketch_size(problem, r, oversample)
    if sketch is None and not worth_compressing(problem, k):
        res = hals.solve(problem, F, W, max_iter=max_iter, tol=tol, callback=callback)
        info.update(compressed_iter=0, exact_iter=res.n_iter, sketch_k=0)
        return res
    if sketch is None:
        sketch = range_sketch(problem, k, power_iter=power_iter, seed=seed)
    L, B = sketch.L, sketch.B
    slices = row_slices(problem)
    sw = sqrt_weights(problem)
    # V = [sqrt(w_b) W_b], transposed: (r x total features)
    Vt = torch.cat([w.T * s for w, s in zip(W, sw)], dim=1).contiguous()
    Ft = F.T.contiguous()
    objective, it = _phase(problem, L, B, Ft, Vt, max_iter=max_iter, tol=tol, extrapolate=extrapolate,
                           callback=callback)
    kept = "init"
    if also_random:  # a second start, the paper's random one, on the sketch; keep the better
        F2, W2 = random_init(problem, r, seed)
        Ft2 = F2.T.contiguous()
        Vt2 = torch.cat([w.T * s for w, s in zip(W2, sw)], dim=1).contiguous()
        obj2, it2 = _phase(problem, L, B, Ft2, Vt2, max_iter=max_iter, tol=tol, extrapolate=extrapolate,
                           callback=None)
        if obj2[-1] < objective[-1]:
            Ft, Vt, objective, it, kept = Ft2, Vt2, obj2, it2, "random"
    info["start_kept"] = kept
    compressed = it
    # back to per-block loadings; blocks of weight 0 keep their start (the exact phase fits them)
    W = [(Vt[:, sl].T / s).contiguous() if s > 0 else w for sl, s, w in zip(slices, sw, W)]
    F = Ft.T.contiguous()

    def shifted(i: int, obj: float) -> None:
        if callback is not None:
            callback(compressed + i, obj)

    res = hals.solve(problem, F, W, max_iter=max(int(exact_iter), 1), tol=tol, callback=shifted)
    info.update(compressed_iter=compressed, exact_iter=res.n_iter, sketch_k=sketch.k)
    n_total = compressed + res.n_iter
    # converged when the exact phase itself stopped on the tolerance
    return SolverResult(res.F, res.W, objective + res.objective, n_total, res.converged)


def _phase(problem, L, B, Ft, Vt, *, max_iter, tol, extrapolate, callback):
    """The compressed iterations, in place on ``Ft`` and ``Vt``; returns (objective, iterations)."""
    r, n, M = Ft.shape[0], Ft.shape[1], Vt.shape[1]
    inner_F = _inner(n, B.shape[0], r)
    inner_V = _inner(M, B.shape[0], r)
    total2 = problem.weighted_norm2()
    objective: list[float] = []
    it = 0
    # extrapolation (Ang & Gillis 2019): after an accepted step, jump ahead along the last move by
    # beta; if the next step ends higher than the last accepted point, go back there, shrink beta
    beta, beta_max = (0.5, 1.0) if extrapolate else (0.0, 0.0)
    Fs, Vs = Ft.clone(), Vt.clone()
    with one_thread(problem.device):
        for it in range(1, max_iter + 1):
            At = (Vt @ L) @ B  # r x n  ~ V^T X_w
            hals_rows(Ft, At, Vt @ Vt.T, max_inner=inner_F)
            G = Ft @ Ft.T
            Ct = (Ft @ B.T) @ L.T  # r x M  ~ F^T X_w^T
            hals_rows(Vt, Ct, G, max_inner=inner_V)
            cross = float(torch.sum(Vt.double() * Ct.double()))
            quad = float(torch.sum((Vt @ Vt.T).double() * G.double()))
            obj = max(total2 - 2.0 * cross + quad, 0.0)
            if extrapolate and objective and obj > objective[-1]:
                Ft.copy_(Fs)
                Vt.copy_(Vs)
                beta_max, beta = beta, beta / 1.5
                objective.append(objective[-1])  # still at the last accepted point
                if callback is not None:
                    callback(it, objective[-1])
                continue
            objective.append(obj)
            if callback is not None:
                callback(it, obj)
            if converged(objective, tol):
                Fs.copy_(Ft)
                Vs.copy_(Vt)
                break
            if extrapolate:
                dF, dV = Ft - Fs, Vt - Vs
                Fs.copy_(Ft)
                Vs.copy_(Vt)
                Ft.add_(dF, alpha=beta).clamp_(min=0)
                Vt.add_(dV, alpha=beta).clamp_(min=0)
                beta, beta_max = min(beta_max, 1.05 * beta), min(1.0, 1.01 * beta_max)
        if extrapolate:  # end on the last accepted point, not on a jump
            Ft.copy_(Fs)
            Vt.copy_(Vs)
    return objective, it


def _inner(N: int, k: int, r: int) -> int:
    """Row sweeps per compressed iteration: the small products cost about ``(N + k) k r``."""
    products = (N + k) * k * r
    sweeps = N * r * (r + 1)
    return int(max(1, min(1 + 0.5 * products / max(sweeps, 1), 5)))

