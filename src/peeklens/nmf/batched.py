"""Several ranks of a sweep solved at once: exact HALS on every rank, batched.

A rank's HALS iteration (:mod:`peeklens.nmf.hals`) is two products with the data and a few
hundred small row updates.  On a GPU the data's products take microseconds and the run is bound
by how many kernels are launched, one rank after another.  Here the ranks of a sweep are solved
together:

- their factors are stacked and padded to the largest rank, ``(ranks x r_max x N)``;
- one product with the data serves every rank (the ranks' factors side by side, unpadded): one
  pass over the data per half-iteration for the whole sweep, which also helps blocks on disk;
- each row update of the sweeps is one batched kernel (``baddbmm``) for every rank, so a sweep
  launches as many kernels as one rank's does.

Each rank follows the iterations :func:`peeklens.nmf.hals.solve` makes from the same start (the
same row sweeps, the same rule for repeating them, the same stopping rule): the factors agree
with one rank at a time to float tolerance.  A rank that converges leaves the batch with its
factors; the others go on.  Padded rows are zero, with zero Gram rows and columns, so they never
move and never touch the real rows.

On the CPU the batch does the same arithmetic as one rank at a time (and a little more for the
padding): use it on a GPU.

>>> import numpy as np, peeklens as pl
>>> acts = pl.Activations.from_arrays({"a": np.random.default_rng(0).random((40, 60), dtype=np.float32)})
>>> s = pl.sweep(acts, [2, 4, 6], batched=True, max_iter=50, progress=False)
>>> s[4].settings["solver"], s[4].settings["batched"]["ranks"]
('hals', [2, 4, 6])
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from ._linalg import gram_solve, row_block, row_slices, signed_slices
from ._problem import Problem, SolverResult, big_mm, converged, count_pass, weighted_sum
from .hals import _inner_budget

__all__ = ["solve_ranks", "hals_rows_batched", "BatchResult"]


@dataclass
class BatchResult:
    """What :func:`solve_ranks` returns: one result per start (``None`` where Ctrl-C stopped it
    first), the seconds from the batch's start until each start's rank left it, and whether
    Ctrl-C stopped the batch."""

    results: list[SolverResult | None]
    seconds: list[float | None] = field(default_factory=list)
    interrupted: bool = False


def solve_ranks(
    problem: Problem,
    starts: Sequence[tuple[torch.Tensor, list[torch.Tensor]]],
    *,
    max_iter: int,
    tol: float,
    max_inner: int | None = None,
    callback: Callable[[int, dict[int, float]], None] | None = None,
) -> BatchResult:
    """HALS on every start ``(F, W)`` at once (one rank each, any mix of ranks).

    Returns a :class:`BatchResult`: one :class:`~peeklens.nmf._problem.SolverResult` per start,
    in order, each as :func:`peeklens.nmf.hals.solve` would give it from that start.  Ctrl-C
    (``KeyboardInterrupt``) stops the batch: the ranks that had converged keep their results, the
    others are ``None`` and ``interrupted`` is ``True``.  ``callback(iteration, {index: objective})``
    runs after every iteration with the objectives of the ranks still in the batch.
    """
    if problem.comm is not None:
        raise NotImplementedError("batched ranks do not run distributed")
    ranks = [int(F.shape[1]) for F, _ in starts]
    n, M = problem.n_samples, sum(problem.n_features)
    inner_F = [max_inner or _inner_budget(problem, r, n) for r in ranks]
    inner_W = [max_inner or _inner_budget(problem, r, M) for r in ranks]
    batch = _Batch.stack(starts)
    objective: list[list[float]] = [[] for _ in starts]
    out = BatchResult([None] * len(starts), [None] * len(starts))
    t0 = time.perf_counter()
    slices = row_slices(problem)
    signed = signed_slices(problem)
    try:
        for it in range(1, max_iter + 1):
            live = batch.index
            _update_F(problem, batch, slices, [inner_F[i] for i in live])
            Ct, G = _products(problem, batch, slices)
            hals_rows_batched(batch.Wt, Ct, G, [inner_W[i] for i in live], ranks=batch.ranks)
            for j, r in enumerate(batch.ranks):  # semi-NMF: signed blocks by least squares
                for sl in signed:
                    batch.Wt[j, :r, sl] = gram_solve(G[j, :r, :r], Ct[j, :r, sl])
            block_sq = _block_sq(problem, batch, slices, Ct, G)
            done = []
            for j, i in enumerate(live):
                objective[i].append(weighted_sum(problem, block_sq[j]))
                if converged(objective[i], tol) or it == max_iter:
                    done.append(j)
            if callback is not None:
                callback(it, {i: objective[i][-1] for i in live})
            for j in done:
                i = live[j]
                F, W = batch.factors(j, slices)
                ok = converged(objective[i], tol)
                out.results[i] = SolverResult(F, W, objective[i], len(objective[i]), ok, block_sq=block_sq[j])
                out.seconds[i] = _elapsed(t0, F.device)
            if done:
                batch = batch.without(done)
            if not batch.index:
                break
    except KeyboardInterrupt:
        out.interrupted = True
    return out


def _elapsed(t0: float, device: torch.device) -> float:
    if device.type == "cuda":  # pragma: no cover - needs a GPU
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


@dataclass
class _Batch:
    """The ranks still in the batch: ``index`` (their place in the caller's list), ``ranks`` and the
    transposed factors ``Ft`` (R x r_max x samples) and ``Wt`` (R x r_max x total features), padded
    with zero rows."""

    index: list[int]
    ranks: list[int]
    Ft: torch.Tensor
    Wt: torch.Tensor

    @classmethod
    def stack(cls, starts) -> _Batch:
        ranks = [int(F.shape[1]) for F, _ in starts]
        F0 = starts[0][0]
        r_max, n = max(ranks), F0.shape[0]
        M = sum(w.shape[0] for w in starts[0][1])
        Ft = torch.zeros((len(starts), r_max, n), dtype=F0.dtype, device=F0.device)
        Wt = torch.zeros((len(starts), r_max, M), dtype=F0.dtype, device=F0.device)
        for j, ((F, W), r) in enumerate(zip(starts, ranks)):
            Ft[j, :r] = F.T
            Wt[j, :r] = torch.cat([w.T for w in W], dim=1)
        return cls(list(range(len(starts))), ranks, Ft, Wt)

    def without(self, gone: list[int]) -> _Batch:
        """The batch without the entries ``gone`` (positions), padded to its new largest rank."""
        keep = [j for j in range(len(self.index)) if j not in set(gone)]
        if not keep:
            return _Batch([], [], self.Ft[:0], self.Wt[:0])
        ranks = [self.ranks[j] for j in keep]
        at = torch.tensor(keep, device=self.Ft.device)
        r_max = max(ranks)
        Ft = self.Ft.index_select(0, at)[:, :r_max].contiguous()
        Wt = self.Wt.index_select(0, at)[:, :r_max].contiguous()
        return _Batch([self.index[j] for j in keep], ranks, Ft, Wt)

    def factors(self, j: int, slices: list[slice]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        r = self.ranks[j]
        F = self.Ft[j, :r].T.contiguous()
        W = [self.Wt[j, :r, sl].T.contiguous() for sl in slices]
        return F, W

    def side_by_side(self, Xt: torch.Tensor) -> torch.Tensor:
        """The ranks' rows of ``Xt`` (R x r_max x N) as the columns of one (N x sum of ranks) matrix."""
        return torch.cat([Xt[j, :r] for j, r in enumerate(self.ranks)], dim=0).T.contiguous()

    def padded(self, cols: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``cols`` (N x sum of ranks, as :meth:`side_by_side`) back into ``out`` (R x r_max x N)."""
        start = 0
        for j, r in enumerate(self.ranks):
            out[j, :r] = cols[:, start : start + r].T
            start += r
        return out


def _update_F(problem: Problem, batch: _Batch, slices: list[slice], inner: list[int]) -> None:
    """``F`` given ``W`` for every rank: ``A = sum_b w_b X_b^T W_b`` in one pass for all ranks."""
    R, r_max, n = batch.Ft.shape
    W = batch.side_by_side(batch.Wt)  # total features x sum of ranks
    A = None
    B = torch.zeros((R, r_max, r_max), dtype=W.dtype, device=W.device)
    count_pass(problem, [i for i, w in enumerate(problem.weights) if w != 0])
    for sl, w, Xb in zip(slices, problem.weights, problem.X):
        if w == 0:
            continue
        part = big_mm(Xb.T, W[sl].contiguous())  # samples x sum of ranks
        A = (part if w == 1.0 else part * w) if A is None else A.add_(part, alpha=w)
        Wb = batch.Wt[:, :, sl]
        B.baddbmm_(Wb, Wb.transpose(1, 2), alpha=w)
    At = batch.padded(A, torch.zeros_like(batch.Ft))
    hals_rows_batched(batch.Ft, At, B, inner, ranks=batch.ranks)


def _products(problem: Problem, batch: _Batch, slices: list[slice]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(C^T, G)``: every rank's ``(X_w F)^T`` (unweighted, R x r_max x features) and ``F^T F``, one pass."""
    F = batch.side_by_side(batch.Ft)  # samples x sum of ranks
    Ct = torch.zeros_like(batch.Wt)
    count_pass(problem)
    cols = torch.empty((Ct.shape[2], F.shape[1]), dtype=F.dtype, device=F.device)
    for sl, Xb in zip(slices, problem.X):
        cols[sl] = big_mm(Xb, F)
    batch.padded(cols, Ct)
    G = torch.bmm(batch.Ft, batch.Ft.transpose(1, 2))
    return Ct, G


def _block_sq(problem: Problem, batch: _Batch, slices, Ct: torch.Tensor, G: torch.Tensor) -> list[list[float]]:
    """Every rank's ``||X_b - W_b F^T||^2`` per block from the Gram matrices (as
    :func:`~peeklens.nmf._problem.block_sq_from_grams`): ``R`` lists of one value per block."""
    Gd = G.double()
    per_block = []
    for n2, sl in zip(problem.norms2, slices):
        Wb = batch.Wt[:, :, sl]
        cross = torch.sum(Wb.double() * Ct[:, :, sl].double(), dim=(1, 2))
        quad = torch.sum(torch.bmm(Wb, Wb.transpose(1, 2)).double() * Gd, dim=(1, 2))
        per_block.append((n2 - 2.0 * cross + quad).clamp_min(0.0).tolist())
    return [list(v) for v in zip(*per_block)]


def hals_rows_batched(
    Ht: torch.Tensor,
    At: torch.Tensor,
    G: torch.Tensor,
    max_inner: Sequence[int],
    *,
    ranks: Sequence[int],
    delta: float = 0.1,
) -> list[int]:
    """:func:`~peeklens.nmf._linalg.hals_rows` on a batch, in place: ``Ht``, ``At`` (R x r_max x N),
    ``G`` (R x r_max x r_max); entry ``j`` has ``ranks[j]`` real rows (the rest are zero padding).

    Each entry repeats its sweeps up to ``max_inner[j]`` times while they still move its rows by more
    than ``delta`` times its first sweep, as :func:`hals_rows` does for one; entries that stop
    leave the sweeps that follow.  Returns the sweeps each entry made.
    """
    R, r_max, _ = Ht.shape
    diag = torch.diagonal(G, dim1=1, dim2=2)
    d = diag.clamp_min(torch.finfo(G.dtype).tiny)
    G0 = G.clone()
    torch.diagonal(G0, dim1=1, dim2=2).zero_()
    Gs = G0 / d[:, :, None]
    # a real row whose partner is all zero (G[k, k] == 0) keeps its value, as in hals_rows; padded
    # rows need nothing: their At, G rows and columns are zero, so their update is 0 again
    dead = (diag <= 0).tolist()
    keep = [any(dead[j][k] and k < ranks[j] for j in range(R)) for k in range(r_max)]
    alive = ~(diag <= 0) if any(keep) else None
    whole = At / d[:, :, None] if row_block(r_max, Ht.shape[2]) == r_max else None
    going, first, made = list(range(R)), [None] * R, [0] * R
    for s in range(1, max(max_inner) + 1):
        if not going:
            break
        if len(going) == R:
            parts = (Ht, At, G0, Gs, d, alive, whole)
        else:
            at = torch.tensor(going, device=Ht.device)
            parts = tuple(t.index_select(0, at) if t is not None else None for t in (Ht, At, G0, Gs, d, alive, whole))
        H = parts[0]
        last = [s >= max_inner[j] for j in going]
        moved = None if all(last) else H.clone()
        _sweep_batched(H, *parts[1:], keep)
        change = (torch.linalg.vector_norm(moved.sub_(H), dim=(1, 2)) ** 2).tolist() if moved is not None else None
        if len(going) != R:
            Ht.index_copy_(0, at, H)
        still = []
        for pos, j in enumerate(going):
            made[j] = s
            if last[pos]:
                continue
            if first[j] is None:
                first[j] = change[pos]
            elif change[pos] <= delta * delta * first[j]:
                continue
            still.append(j)
        going = still
    return made


def _sweep_batched(H, A, G0, Gs, d, alive, whole, keep) -> None:
    """One sweep over the rows of every entry, in blocks of :func:`row_block` rows (as ``_linalg._sweep``):
    the rows outside a block in one batched product, the rows inside one after another."""
    r_max = H.shape[1]
    size = row_block(r_max, H.shape[2])
    for a in range(0, r_max, size):
        b = min(a + size, r_max)
        Hb = H[:, a:b]
        if b - a == r_max:
            base = whole
        else:  # (A - G0[block, outside] @ H[outside]) / d
            base = torch.baddbmm(A[:, a:b], G0[:, a:b], H, alpha=-1)
            base.baddbmm_(G0[:, a:b, a:b], Hb)
            base.div_(d[:, a:b, None])
        for k in range(a, b):
            new = torch.baddbmm(base[:, k - a : k - a + 1], Gs[:, k : k + 1, a:b], Hb, alpha=-1).clamp_(min=0)
            if keep[k]:
                new = torch.where(alive[:, k, None, None], new, H[:, k : k + 1])
            H[:, k : k + 1] = new
