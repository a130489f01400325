"""Starting factors: NNDSVD-style initialization (Boutsidis & Gallopoulos 2008), and new columns
for warm starts across a sweep."""

from __future__ import annotations

import torch

from ._linalg import Sketch, one_thread, orth_samples, randomized_svd, row_slices, sqrt_weights
from ._problem import Problem, contiguous_axis, count_pass, reduce_floats, reduce_sum

__all__ = ["nndsvda_init", "nndsvd_factors", "extend_factors"]


def nndsvd_factors(U: torch.Tensor, S: torch.Tensor, V: torch.Tensor, fill: float | None, problem=None):
    """NNDSVD of ``U diag(S) V^T``: non-negative ``(Wst, F)`` with one column per singular triplet.

    Each triplet contributes the larger (in norm product) of its positive and negative parts;
    with ``fill`` (NNDSVDa) the zeros are replaced by ``fill``, usually the mean of the data.
    In a distributed fit (``problem.comm``), ``V`` holds this process's rows and the norms of its
    columns' parts are summed over the processes (one all-reduce).
    """
    Wst = torch.zeros_like(U)
    F = torch.zeros_like(V)
    v_norms = None
    if problem is not None and problem.comm is not None:
        parts = torch.stack([V.clamp(min=0), (-V).clamp(min=0)]).double().square().sum(dim=1)  # 2 x r
        v_norms = reduce_sum(problem, parts).sqrt().tolist()
    for j in range(U.shape[1]):
        u, v = U[:, j], V[:, j]
        up, un, vp, vn = u.clamp(min=0), (-u).clamp(min=0), v.clamp(min=0), (-v).clamp(min=0)
        nup, nun, nvp, nvn = (float(torch.linalg.vector_norm(t)) for t in (up, un, vp, vn))
        if v_norms is not None:
            nvp, nvn = v_norms[0][j], v_norms[1][j]
        if nup * nvp >= nun * nvn:
            a, b, na, nb = up, vp, nup, nvp
        else:
            a, b, na, nb = un, vn, nun, nvn
        lam = float(S[j]) * na * nb
        if lam <= 0 or na == 0 or nb == 0:
            continue
        scale = lam**0.5
        Wst[:, j] = a * (scale / na)
        F[:, j] = b * (scale / nb)
    if fill is not None:
        Wst[Wst == 0] = fill
        F[F == 0] = fill
    return Wst, F


def _data_mean(problem: Problem) -> float:
    """Mean entry of the stacked weighted matrix (no pass when the problem's first read kept the sums)."""
    if problem.sums is not None:
        total = sum(s * t for s, t in zip(sqrt_weights(problem), problem.sums))
        return total / (sum(problem.n_features) * problem.n_samples)
    total = sum(s * _sum(Xb) for s, Xb in zip(sqrt_weights(problem), problem.X))
    count_pass(problem)
    total = reduce_floats(problem, [total])[0]
    return total / (sum(problem.n_features) * problem.n_samples)


def _sum(X: torch.Tensor) -> float:
    """Sum of a 2-D tensor: float32 sums along the contiguous axis, added in float64 (fast and close)."""
    return float(X.sum(dim=contiguous_axis(X)).double().sum())


def _unstack(problem: Problem, Wst: torch.Tensor, fill: float) -> list[torch.Tensor]:
    out = []
    for sl, s in zip(row_slices(problem), sqrt_weights(problem)):
        out.append((Wst[sl] / s).contiguous() if s > 0 else torch.full_like(Wst[sl], fill))
    return out


def nndsvda_init(problem: Problem, rank: int, seed: int, sketch: Sketch | None = None):
    """NNDSVDa from a randomized SVD of the stacked weighted matrix (zeros filled with its mean).

    The SVD costs a few passes over the data (a range finder with 10 extra columns and 4 power
    iterations, drawn from ``seed``), or none when a wide enough ``sketch`` is given.
    """
    U, S, V = randomized_svd(problem, rank, seed=seed, sketch=sketch)
    mean = _data_mean(problem)
    with one_thread(U.device):
        Wst, F = nndsvd_factors(U, S, V, fill=mean, problem=problem)
    return F.contiguous(), _unstack(problem, Wst, mean)


def extend_factors(
    problem: Problem, F: torch.Tensor, W: list[torch.Tensor], extra: int, *, seed: int, sketch: Sketch | None = None
):
    """Warm start: ``F`` and ``W`` plus ``extra`` new columns fitted to what they leave unexplained.

    The new columns are the NNDSVDa factors of the residual ``X_w - V F^T`` (``V`` the weighted
    stacked loadings), from a randomized SVD of it: on ``sketch`` when given (no pass over the
    data), else with two passes per power iteration.
    """
    sw = sqrt_weights(problem)
    V = torch.cat([w * s for w, s in zip(W, sw)], dim=0)
    g = torch.Generator().manual_seed(int(seed) + 7919)
    k = extra + 5
    comm = problem.comm
    if sketch is not None:
        # the residual inside the sketch's range, L (B - (L^T V) F^T): its SVD through the small
        # k x k Gram matrix, no pass over the data
        L, B = sketch.L, sketch.B
        with one_thread(F.device):
            core = (B - (L.T @ V) @ F.T).double()  # k x n
            evals, evecs = torch.linalg.eigh(reduce_sum(problem, core @ core.T))
            order = torch.argsort(evals, descending=True)[:extra]
            S = evals[order].clamp_min(0).sqrt()
            Uc = evecs[:, order]
            Vr = (core.T @ Uc) / S.clamp_min(1e-30)
            U = (L.double() @ Uc).float()
            S, Vr = S.float(), Vr.float().contiguous()
    else:
        from ._linalg import xw_mm, xwt_mm

        def rmul(Om):  # R @ Om (summed over processes when distributed)
            return reduce_sum(problem, xw_mm(problem, Om) - V @ (F.T @ Om))

        def rtmul(Qm):  # R^T @ Qm (this process's rows)
            return xwt_mm(problem, Qm) - F @ (V.T @ Qm)

        if comm is None:
            Om = torch.randn((problem.n_samples, k), generator=g).to(F.device)
        else:  # drawn for all samples, this process's rows kept: the same start as one process
            Om = torch.randn((problem.n_samples, k), generator=g)[comm.rows].contiguous().to(F.device)
        Qm = torch.linalg.qr(rmul(Om), mode="reduced").Q
        Z = torch.linalg.qr(rtmul(Qm), mode="reduced").Q if comm is None else orth_samples(problem, rtmul(Qm))
        Qm = torch.linalg.qr(rmul(Z), mode="reduced").Q
        Bm = rtmul(Qm).T  # k x n
        if comm is None:
            Ub, S, Vh = torch.linalg.svd(Bm.double(), full_matrices=False)
            U = (Qm.double() @ Ub[:, :extra]).float()
            S, Vr = S[:extra].float(), Vh[:extra].T.float().contiguous()
        else:
            Ub, S, Vd = comm.gram_svd(Bm, extra)
            U = (Qm.double() @ Ub).float()
            S, Vr = S.float(), Vd.float().contiguous()
    # NNDSVD without fill: the new columns start at the residual's dominant non-negative parts;
    # a tiny positive floor keeps HALS/MU from locking a zero entry.
    Wst, Fn = nndsvd_factors(U, S, Vr, fill=None, problem=problem)
    top = float(F.max()) if F.numel() else 0.0
    if comm is not None:
        top = comm.max_float(top)
    floor = 1e-6 * max(top, 1e-12)
    Fn.clamp_(min=floor)
    Wst.clamp_(min=floor)
    Wn = _unstack(problem, Wst, floor)
    F2 = torch.cat([F, Fn], dim=1).contiguous()
    W2 = [torch.cat([w, wn], dim=1).contiguous() for w, wn in zip(W, Wn)]
    return F2, W2
