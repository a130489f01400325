"""HALS for the coupled non-negative matrix-tensor model (the tensor lens).

Every block ``b`` of a :class:`~peeklens.nmf._problem.Problem` is (features_b x samples).  A
*matrix* block is modelled as in the paper, ``X_b ~ W_b F^T``.  A *tensor* block has per-sample
shape (C, H, W) and is read as a third-order tensor (channels x positions x samples) with a
non-negative CP model ``X_b[c, p, t] ~ sum_r C_b[c, r] S_b[p, r] F[t, r]`` whose sample factor is
the same ``F``.  Unfolded, that is the matrix model with structured loadings
``W_b = C_b (.) S_b``, the Khatri-Rao product (row ``c * P + p``), which has exactly the size of the
matrix model's loadings (features x rank).  So one iteration costs what a matrix HALS iteration
costs, two passes over the data:

1. ``F`` given the loadings: ``A = sum_b w_b X_b^T W_b`` (one GEMM per block with the small
   Khatri-Rao ``C_b (.) S_b``; no product of full size such as ``F (.) S_b`` is ever formed) and
   ``B = sum_b w_b W_b^T W_b`` with ``W_b^T W_b = (C_b^T C_b) * (S_b^T S_b)`` (Hadamard) for
   tensor blocks; HALS row sweeps on ``F``.
2. ``M_b = X_b F`` (features_b x rank) for every block, one GEMM each.  Matrix blocks: HALS on
   ``W_b`` with ``G = F^T F``.  Tensor blocks: ``M_b`` folded to (C x P x rank) holds every
   MTTKRP that ``C_b`` and ``S_b`` need given ``F``:
   ``MTTKRP_C[c, r] = sum_p M[c, p, r] S[p, r]`` with Gram ``(S^T S) * G`` and
   ``MTTKRP_S[p, r] = sum_c M[c, p, r] C[c, r]`` with Gram ``(C^T C) * G``; ``C_b`` and ``S_b``
   are updated alternately a few times (no pass over the data), then balanced
   (``||C_b[:, r]|| = ||S_b[:, r]||``, which leaves the model unchanged).

Every row update is the exact minimizer of the objective in that row (Cichocki & Phan 2009), so
the objective ``sum_b w_b ||X_b - model_b||^2`` never increases.  It is computed exactly from
``||X_b||^2``, ``<W_b, M_b>`` and the Gram matrices, without forming the residual.

Blocks are read in sample chunks (``CHUNK_ELEMENTS`` floats at a time), so a memory-mapped block
is streamed from disk instead of being loaded at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ._linalg import hals_rows, one_thread, randomized_svd, sqrt_weights, xw_mm, xwt_mm
from ._problem import Problem, SolverResult, big_mm, iterate

__all__ = [
    "TensorLayout",
    "TensorState",
    "solve",
    "khatri_rao",
    "random_factors",
    "svd_factors",
    "extend_factors",
    "CHUNK_ELEMENTS",
]

#: Floats of one block read at a time in a pass over the data (64 MiB of float32).
CHUNK_ELEMENTS = 1 << 24


@dataclass(frozen=True)
class TensorLayout:
    """Which blocks of a problem are tensors: ``modes[b] = (channels, positions)`` or ``None``.

    Tensor block rows are ordered channel-major (row ``c * positions + p``), the order of a
    (C, H, W) activation flattened in C order.
    """

    modes: tuple[tuple[int, int] | None, ...]

    def is_tensor(self, b: int) -> bool:
        return self.modes[b] is not None

    def n_params(self, problem: Problem, rank: int) -> int:
        """Numbers in the model: ``F`` plus every block's loadings (``C_b`` and ``S_b`` for tensors)."""
        total = problem.n_samples * rank
        for m, mode in zip(problem.n_features, self.modes):
            total += (m if mode is None else mode[0] + mode[1]) * rank
        return int(total)


def khatri_rao(C: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """Column-wise Kronecker product ``(C (.) S)[c * P + p, r] = C[c, r] S[p, r]``: (C*P x rank).

    >>> import torch
    >>> khatri_rao(torch.tensor([[1.0], [2.0]]), torch.tensor([[3.0], [4.0]])).flatten().tolist()
    [3.0, 4.0, 6.0, 8.0]
    """
    return (C[:, None, :] * S[None, :, :]).reshape(C.shape[0] * S.shape[0], C.shape[1])


def _sample_chunks(Xb: torch.Tensor):
    """Slices of samples such that each chunk of ``Xb`` holds at most ``CHUNK_ELEMENTS`` floats."""
    n, m = Xb.shape[1], Xb.shape[0]
    step = max(1, CHUNK_ELEMENTS // max(1, m))
    return [slice(a, min(a + step, n)) for a in range(0, n, step)]


def _inner_budget(data: int, cheap: int) -> int:
    """Sweeps per pass over the data: about half what one data pass costs (Gillis & Glineur 2012)."""
    return int(max(1, min(1 + 0.5 * data / max(cheap, 1), 10)))


class TensorState:
    """HALS state: ``Ft`` (r x samples) and, per block, ``[Wt]`` or ``[Ct, St]`` (r x size), contiguous.

    ``factors[b]`` is a list of one (features x r) matrix for a matrix block and of two matrices
    (channels x r, positions x r) for a tensor block; all float32 on ``problem.device``.
    """

    def __init__(self, problem: Problem, layout: TensorLayout, F: torch.Tensor, factors: list[list[torch.Tensor]],
                 *, max_inner: int | None = None, delta: float = 0.1):
        self.problem, self.layout, self.delta = problem, layout, delta
        self.Ft = F.T.contiguous()
        self.Lt = [[f.T.contiguous() for f in fs] for fs in factors]
        r, n = self.Ft.shape
        data = sum(problem.n_features) * n * r
        self.inner_F = max_inner or _inner_budget(data, n * r * (r + 1))
        self.inner_W = max_inner or _inner_budget(data, sum(problem.n_features) * r * (r + 1))
        small = sum(2 * m * r + (mode[0] + mode[1]) * r * (r + 1)
                    for m, mode in zip(problem.n_features, layout.modes) if mode is not None)
        self.inner_T = max_inner or _inner_budget(data, small)
        self.block_sq: list[float] | None = None

    # -------------------------------------------------------------- helpers
    def loading(self, b: int) -> torch.Tensor:
        """Block ``b``'s loadings as the matrix model sees them: ``W_b`` or ``C_b (.) S_b`` (features x r)."""
        fs = self.Lt[b]
        if len(fs) == 1:
            return fs[0].T
        return khatri_rao(fs[0].T, fs[1].T)

    def gram(self, b: int) -> torch.Tensor:
        """``W_b^T W_b``: for a tensor block the Hadamard product ``(C^T C) * (S^T S)``."""
        fs = self.Lt[b]
        out = fs[0] @ fs[0].T
        for f in fs[1:]:
            out = out * (f @ f.T)
        return out

    # -------------------------------------------------------------- one iteration
    def step(self) -> float:
        """One iteration (two passes over the data); returns the exact objective after it."""
        p, Ft = self.problem, self.Ft
        r, n = Ft.shape
        dev, dt = Ft.device, Ft.dtype
        # 1. F given the loadings
        A = torch.zeros((n, r), dtype=dt, device=dev)
        B = torch.zeros((r, r), dtype=dt, device=dev)
        for b, (w, Xb) in enumerate(zip(p.weights, p.X)):
            if w == 0:
                continue
            Wb = self.loading(b).contiguous()
            for sl in _sample_chunks(Xb):
                A[sl].add_(big_mm(Xb[:, sl].T, Wb), alpha=w)
            with one_thread(dev):
                B.add_(self.gram(b), alpha=w)
        hals_rows(Ft, A.T.contiguous(), B, max_inner=self.inner_F)
        # 2. the loadings given F
        F = Ft.T.contiguous()
        with one_thread(dev):
            G = Ft @ Ft.T
        Mt = []
        for Xb in p.X:
            M = torch.empty((Xb.shape[0], r), dtype=dt, device=dev)
            chunks = _sample_chunks(Xb)
            for i, sl in enumerate(chunks):
                part = big_mm(Xb[:, sl], F[sl])
                if i == 0:
                    M.copy_(part)
                else:
                    M.add_(part)
            Mt.append(M.T.contiguous())  # r x features
        for b, mode in enumerate(self.layout.modes):
            if mode is None:
                hals_rows(self.Lt[b][0], Mt[b], G, max_inner=self.inner_W)
            else:
                with one_thread(dev):
                    self._fit_cp(b, Mt[b].view(r, mode[0], mode[1]), G)
        with one_thread(dev):
            return self._objective(Mt, G)

    def _fit_cp(self, b: int, M3: torch.Tensor, G: torch.Tensor) -> None:
        """Alternate exact HALS updates of ``C_b`` and ``S_b`` given ``F`` (``M3 = (X_b F)`` folded, r x C x P)."""
        Ct, St = self.Lt[b]
        first = None
        prev = torch.empty_like(Ct), torch.empty_like(St)
        for _ in range(self.inner_T):
            prev[0].copy_(Ct)
            prev[1].copy_(St)
            At = torch.bmm(M3, St[:, :, None])[:, :, 0]  # MTTKRP of C: sum_p M[r, c, p] S[p, r]
            _hals_rows_one(Ct, At, (St @ St.T) * G)
            At = torch.bmm(Ct[:, None, :], M3)[:, 0, :]  # MTTKRP of S: sum_c M[r, c, p] C[c, r]
            _hals_rows_one(St, At, (Ct @ Ct.T) * G)
            change = float(torch.linalg.vector_norm(prev[0].sub_(Ct))) ** 2 + \
                float(torch.linalg.vector_norm(prev[1].sub_(St))) ** 2
            if first is None:
                first = change
            elif change <= self.delta * self.delta * first:
                break
        _balance(Ct, St)

    def _objective(self, Mt: list[torch.Tensor], G: torch.Tensor) -> float:
        """``sum_b w_b (||X_b||^2 - 2 <W_b, X_b F> + <W_b^T W_b, F^T F>)`` in float64; keeps ``block_sq``."""
        Gd = G.double()
        sq = []
        for b, n2 in enumerate(self.problem.norms2):
            cross = float(torch.sum(self.loading(b).T.double() * Mt[b].double()))
            quad = float(torch.sum(self.gram(b).double() * Gd))
            sq.append(max(n2 - 2.0 * cross + quad, 0.0))
        self.block_sq = sq
        return float(sum(w * s for w, s in zip(self.problem.weights, sq) if w))

    def factors(self) -> tuple[torch.Tensor, list[list[torch.Tensor]]]:
        """``F`` (samples x r) and per block ``[W_b]`` or ``[C_b, S_b]``, contiguous."""
        return self.Ft.T.contiguous(), [[f.T.contiguous() for f in fs] for fs in self.Lt]


def _hals_rows_one(Ht: torch.Tensor, At: torch.Tensor, G: torch.Tensor) -> None:
    """One exact HALS sweep over the rows of ``Ht`` (the inner loop is :meth:`TensorState._fit_cp`'s)."""
    hals_rows(Ht, At, G, max_inner=1)


def _balance(Ct: torch.Tensor, St: torch.Tensor) -> None:
    """Scale each component so that ``||C[:, r]|| == ||S[:, r]||``; the product is unchanged."""
    nc = torch.linalg.vector_norm(Ct, dim=1)
    ns = torch.linalg.vector_norm(St, dim=1)
    ok = (nc > 0) & (ns > 0)
    s = torch.where(ok, torch.sqrt(ns / torch.where(ok, nc, torch.ones_like(nc))), torch.ones_like(nc))
    Ct.mul_(s[:, None])
    St.div_(s[:, None])


def solve(problem: Problem, layout: TensorLayout, F: torch.Tensor, factors: list[list[torch.Tensor]], *,
          max_iter: int, tol: float, callback=None, max_inner: int | None = None) -> SolverResult:
    """HALS until ``max_iter`` iterations or a relative objective change at most ``tol``.

    Returns a :class:`SolverResult` whose ``W[b]`` is ``[W_b]`` or ``[C_b, S_b]`` (a list per block)
    and whose ``block_sq`` holds each block's squared residual from the Gram matrices.
    ``callback(i, objective)`` is called after every iteration.
    """
    state = TensorState(problem, layout, F, factors, max_inner=max_inner)
    objective, it, done = iterate(state.step, max_iter, tol, callback)
    F, W = state.factors()
    return SolverResult(F, W, objective, it, done, block_sq=state.block_sq)


# ------------------------------------------------------------------ starting points
def random_factors(problem: Problem, layout: TensorLayout, rank: int, seed: int):
    """Every factor uniform in [0, 1) from ``seed`` (drawn with NumPy: the same on every device).

    ``F`` first, then each block in order (``W_b``, or ``C_b`` then ``S_b``).
    """
    rng = np.random.default_rng(seed)
    F = rng.random((problem.n_samples, rank), dtype=np.float32)
    out = []
    for m, mode in zip(problem.n_features, layout.modes):
        sizes = [m] if mode is None else list(mode)
        out.append([rng.random((k, rank), dtype=np.float32) for k in sizes])
    dev = problem.device
    return _dev(F, dev), [[_dev(a, dev) for a in fs] for fs in out]


def _dev(a: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(device)


def _nndsvd(U: torch.Tensor, S: torch.Tensor, V: torch.Tensor):
    """Non-negative parts of ``U diag(S) V^T`` (Boutsidis & Gallopoulos 2008): ``(Wst, F)``, zeros kept."""
    up, un, vp, vn = U.clamp(min=0), (-U).clamp(min=0), V.clamp(min=0), (-V).clamp(min=0)
    nup, nun = torch.linalg.vector_norm(up, dim=0), torch.linalg.vector_norm(un, dim=0)
    nvp, nvn = torch.linalg.vector_norm(vp, dim=0), torch.linalg.vector_norm(vn, dim=0)
    pos = nup * nvp >= nun * nvn
    a, na = torch.where(pos, up, un), torch.where(pos, nup, nun)
    c, nc = torch.where(pos, vp, vn), torch.where(pos, nvp, nvn)
    scale = torch.sqrt((S * na * nc).clamp(min=0))
    Wst = a * (scale / na.clamp_min(1e-30))
    F = c * (scale / nc.clamp_min(1e-30))
    return Wst, F


def _fold_rank1(W: torch.Tensor, mode: tuple[int, int]) -> list[torch.Tensor]:
    """Each column of ``W`` (C*P x r) folded to a C x P matrix and replaced by its best rank-one
    non-negative approximation ``c s^T`` (leading singular pair, taken in absolute value; exact for
    a non-negative rank-one column): the CP start closest to a matrix model's loadings."""
    Cn, Pn = mode
    r = W.shape[1]
    mats = W.T.reshape(r, Cn, Pn).double()
    U, Sv, Vh = torch.linalg.svd(mats, full_matrices=False)
    s = Sv[:, 0].clamp(min=0).sqrt()
    C = (U[:, :, 0].abs() * s[:, None]).T
    S = (Vh[:, 0, :].abs() * s[:, None]).T
    return [C.float().contiguous(), S.float().contiguous()]


def _unstack(problem: Problem, layout: TensorLayout, Wst: torch.Tensor, fill: float | None):
    """Stacked weighted loadings -> per block ``[W_b]`` or ``[C_b, S_b]`` (tensor blocks folded)."""
    out, start = [], 0
    for m, s, mode in zip(problem.n_features, sqrt_weights(problem), layout.modes):
        part = Wst[start:start + m]
        start += m
        W = part / s if s > 0 else torch.zeros_like(part)
        if mode is None:
            fs = [W.contiguous()]
        else:
            fs = _fold_rank1(W, mode)
        if fill is not None:
            for f in fs:
                f[f <= 0] = fill
        out.append(fs)
    return out


def svd_factors(problem: Problem, layout: TensorLayout, rank: int, seed: int):
    """NNDSVDa-style start: the NNDSVD of a randomized SVD of the stacked weighted matrix (as the
    matrix model's ``"nndsvda"``), each tensor block's loading columns folded to their best
    rank-one (channels x positions) approximation, zeros filled with a small positive value
    (the mean entry of the data, scaled to each factor)."""
    U, S, V = randomized_svd(problem, rank, seed=seed)
    with one_thread(U.device):
        Wst, F = _nndsvd(U, S, V)
        fill = float(Wst.mean()) if Wst.numel() else 1e-3
        F[F <= 0] = float(F.mean()) if F.numel() else 1e-3
        factors = _unstack(problem, layout, Wst, fill=None)
        for fs in factors:
            for f in fs:
                mean = float(f.mean())
                f[f <= 0] = mean if mean > 0 else fill
    return F.contiguous(), factors


def extend_factors(problem: Problem, layout: TensorLayout, F: torch.Tensor, factors: list[list[torch.Tensor]],
                   extra: int, *, seed: int):
    """Warm start: the factors plus ``extra`` new columns fitted to what they leave unexplained.

    The new columns are the NNDSVD of a randomized SVD (one power iteration, 4 passes over the
    data) of the residual ``X_w - V F^T`` (``V`` the weighted stacked loadings, Khatri-Rao products
    for tensor blocks), folded to rank one for tensor blocks; a tiny positive floor keeps HALS from
    locking a zero entry.
    """
    sw = sqrt_weights(problem)
    V = torch.cat([(fs[0] if mode is None else khatri_rao(fs[0], fs[1])) * s
                   for fs, mode, s in zip(factors, layout.modes, sw)], dim=0)
    g = torch.Generator().manual_seed(int(seed) + 7919)
    n = F.shape[0]
    k = min(extra + 5, n, V.shape[0])

    def rmul(Om):  # R @ Om
        return xw_mm(problem, Om) - V @ (F.T @ Om)

    def rtmul(Qm):  # R^T @ Qm
        return xwt_mm(problem, Qm) - F @ (V.T @ Qm)

    Om = torch.randn((n, k), generator=g).to(F.device)
    Q = torch.linalg.qr(rmul(Om), mode="reduced").Q
    Z = torch.linalg.qr(rtmul(Q), mode="reduced").Q
    Q = torch.linalg.qr(rmul(Z), mode="reduced").Q
    Bm = rtmul(Q).T  # k x n
    Ub, Sv, Vh = torch.linalg.svd(Bm.double(), full_matrices=False)
    U = (Q.double() @ Ub[:, :extra]).float()
    Sv, Vr = Sv[:extra].float(), Vh[:extra].T.float().contiguous()
    if U.shape[1] < extra:  # fewer directions than asked (tiny problems): pad with zeros
        pad = extra - U.shape[1]
        U = torch.cat([U, torch.zeros((U.shape[0], pad), device=U.device)], dim=1)
        Vr = torch.cat([Vr, torch.zeros((n, pad), device=U.device)], dim=1)
        Sv = torch.cat([Sv, torch.zeros(pad, device=U.device)])
    with one_thread(F.device):
        Wst, Fn = _nndsvd(U, Sv, Vr)
        floor = 1e-6 * max(float(F.max()), 1e-12)
        Fn.clamp_(min=floor)
        new = _unstack(problem, layout, Wst, fill=None)
        for fs in new:
            for f in fs:
                f.clamp_(min=math.sqrt(floor) if len(fs) == 2 else floor)
    F2 = torch.cat([F, Fn], dim=1).contiguous()
    out = [[torch.cat([a, b], dim=1).contiguous() for a, b in zip(fs, ns)] for fs, ns in zip(factors, new)]
    return F2, out
