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

from ._problem import Problem, big_mm, count_pass, reduce_floats, reduce_sum
from ._stream import BAND_BYTES, MADV_COLD, MADV_WILLNEED, advise, is_mapped, prefetch_bands

__all__ = [
    "Sketch",
    "one_thread",
    "SMALL_WORK",
    "row_slices",
    "xw_mm",
    "xwt_mm",
    "xw_both",
    "xw_mm_reduced",
    "sample_gaussian",
    "orth_samples",
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
    count_pass(problem)
    for sl, s, Xb in zip(row_slices(problem), sqrt_weights(problem), problem.X):
        part = big_mm(Xb, B)
        out[sl] = part if s == 1.0 else part * s
    return out


def xw_both(problem: Problem, Ft: torch.Tensor, Y: torch.Tensor, elements: int = 1 << 22):
    """``((X_w F)^T, X_w^T Y)`` in ONE read of the data: ``Ft`` (r x samples, contiguous), ``Y``
    (total features x p).

    Each block is read a band at a time along its contiguous axis (a band of samples for the
    samples-major blocks that ``capture(storage=)`` writes), and both products take their share
    of the band while it is in memory: for blocks on disk this costs one pass, not two.  In a
    distributed fit ``(X_w F)^T`` is summed over the processes (``X_w^T Y`` holds this process's rows).
    """
    M, r, p = sum(problem.n_features), Ft.shape[0], Y.shape[1]
    Ct = torch.empty((r, M), dtype=Ft.dtype, device=Ft.device)
    P = torch.zeros((problem.n_local, p), dtype=Ft.dtype, device=Ft.device)
    F = None
    count_pass(problem)
    for sl, s, Xb in zip(row_slices(problem), sqrt_weights(problem), problem.X):
        Yb = Y[sl].contiguous()
        m, n = Xb.shape
        if is_mapped(Xb):  # a file: large bands, the next one read ahead
            elements = max(elements, BAND_BYTES // Xb.element_size())
        if not Xb.is_contiguous() and Xb.T.is_contiguous():  # samples-major: bands of samples
            acc = torch.zeros((r, m), dtype=Ft.dtype, device=Ft.device)
            step = max(1, elements // max(m, 1))
            for j, band in prefetch_bands((j, Xb.T[j : j + step]) for j in range(0, n, step)):
                # band: (samples x features), contiguous
                acc.addmm_(Ft[:, j : j + step], band)
                if s != 0.0:
                    P[j : j + step].addmm_(band, Yb, alpha=s)
        else:  # features-major (or any other layout): bands of features
            F = Ft.T.contiguous() if F is None else F
            acc = torch.empty((r, m), dtype=Ft.dtype, device=Ft.device)
            step = max(1, elements // max(n, 1))
            for i, band in prefetch_bands((i, Xb[i : i + step]) for i in range(0, m, step)):
                acc[:, i : i + step] = big_mm(band, F).T
                if s != 0.0:
                    P.add_(big_mm(band.T, Yb[i : i + step]), alpha=s)
        Ct[:, sl] = acc if s == 1.0 else acc * s
    return reduce_sum(problem, Ct), P


def xwt_mm(problem: Problem, Q: torch.Tensor) -> torch.Tensor:
    """``X_w^T @ Q`` for ``Q`` (total features x k): (samples x k)."""
    out = None
    count_pass(problem, [i for i, w in enumerate(problem.weights) if w != 0])
    for sl, s, Xb in zip(row_slices(problem), sqrt_weights(problem), problem.X):
        if s == 0.0:
            continue
        part = big_mm(Xb.T, Q[sl].contiguous())
        if out is None:
            out = part if s == 1.0 else part * s
        else:
            out.add_(part, alpha=s)
    return out


#: elements of data (summed over the blocks) that one band of :func:`xw_xwt_mm` reads twice
GRAM_BAND_ELEMENTS = 1 << 28


def xw_xwt_mm(problem: Problem, Q: torch.Tensor, elements: int = GRAM_BAND_ELEMENTS) -> torch.Tensor:
    """``X_w X_w^T Q`` for ``Q`` (total features x k) in ONE read of the data (summed over processes).

    One power iteration of the range finder: ``span(X_w X_w^T Q) = span(X_w orth(X_w^T Q))``, so the
    orthonormalization between the two products that :func:`range_sketch` used to do (one pass each)
    changes only the rounding (``Q`` is orthonormal, so each iteration squares the spread of the
    singular values once: far from float32's limits for the few iterations the solvers make).

    The samples are taken a band at a time: the band's ``Z = X_w[:, band]^T Q`` needs every block,
    then each block's band is read again for ``Y_b += X_b[:, band] Z`` while it is still in memory
    (for memory-mapped blocks, the page cache: a band holds at most ``elements`` values, 1 GiB).
    """
    M, k = sum(problem.n_features), Q.shape[1]
    n = problem.n_local
    step = max(1, min(n, elements // max(M, 1)))
    slices, sw = row_slices(problem), sqrt_weights(problem)
    parts = [(sl, s, Xb, Q[sl].contiguous()) for sl, s, Xb in zip(slices, sw, problem.X) if s != 0.0]
    Y = torch.zeros((M, k), dtype=Q.dtype, device=Q.device)
    count_pass(problem, [i for i, w in enumerate(problem.weights) if w != 0])
    starts = list(range(0, n, step))
    for b, j in enumerate(starts):
        Z = None
        for _sl, s, Xb, Qb in parts:
            band = Xb[:, j : j + step]
            if b + 1 < len(starts):  # read the next band ahead (blocks on disk)
                advise(Xb[:, starts[b + 1] : starts[b + 1] + step], MADV_WILLNEED)
            part = big_mm(band.T, Qb)
            Z = part.mul_(s) if Z is None else Z.add_(part, alpha=s)
        for sl, s, Xb, _Qb in parts:
            band = Xb[:, j : j + step]
            Y[sl].add_(big_mm(band, Z), alpha=s)
            advise(band, MADV_COLD)
    return reduce_sum(problem, Y)


def gaussian(shape: tuple[int, int], seed: int, device: torch.device, rows: slice | None = None) -> torch.Tensor:
    """Standard normal test matrix drawn on the CPU, so that it is the same on every device.

    ``rows``: keep only these rows (a distributed fit draws the matrix for all samples on every
    process and keeps its own, so that the sketch equals the single-process one).
    """
    g = torch.Generator().manual_seed(int(seed))
    out = torch.randn(shape, generator=g, dtype=torch.float32)
    if rows is not None:
        out = out[rows].contiguous()
    return out.to(device)


def sample_gaussian(problem: Problem, cols: int, seed: int) -> torch.Tensor:
    """A (samples x cols) Gaussian test matrix from ``seed``: this process's rows of it."""
    comm = problem.comm
    rows = comm.rows if comm is not None else None
    return gaussian((problem.n_samples, cols), seed, problem.device, rows)


def orth_samples(problem: Problem, Y: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis of the columns of a (samples x k) matrix; over processes when distributed."""
    if problem.comm is not None:
        with one_thread(Y.device):
            return problem.comm.orth(Y)
    return _orth(Y)


def xw_mm_reduced(problem: Problem, B: torch.Tensor) -> torch.Tensor:
    """``X_w @ B`` for a sample-side ``B`` (samples x k), summed over the processes of a distributed fit."""
    return reduce_sum(problem, xw_mm(problem, B))


def _orth(Y: torch.Tensor) -> torch.Tensor:
    with one_thread(Y.device, Y.numel()):
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

    Costs ``2 * power_iter + 2`` passes over the data in memory, each a product with ``k`` columns:
    ``X_w Omega`` (``Omega`` Gaussian, samples x k), each power iteration ``X_w orth(X_w^T Q)``, and
    ``B = L^T X_w``.  For blocks on disk (``problem.on_disk``) a power iteration is ONE read,
    ``X_w X_w^T Q`` (:func:`xw_xwt_mm`), so the sketch costs ``power_iter + 2`` reads: the same
    subspace, but without the orthonormalization in between the squared spread of the singular
    values costs float32 accuracy in directions ``sigma_1 / sigma_j`` above ~10^3 (the activations
    measured here stay below 60 at the sketch's width), a price worth a read of a file, not of
    memory.
    """
    M, n = sum(problem.n_features), problem.n_samples
    k = int(min(k, M, n))
    first, problem.first_range = problem.first_range, None
    if first is not None and first[:2] == (k, int(seed)):  # X_w Omega came with the checks' read
        Y = first[2]
    else:
        Y = xw_mm_reduced(problem, sample_gaussian(problem, k, seed))
    Q = _orth(Y)
    for _ in range(power_iter):
        if problem.on_disk:
            Q = _orth(xw_xwt_mm(problem, Q))
        else:
            Q = _orth(xw_mm_reduced(problem, orth_samples(problem, xwt_mm(problem, Q))))
    B = xwt_mm(problem, Q).T.contiguous()  # k x samples (this process's, when distributed)
    total = problem.weighted_norm2()
    tail2 = max(total - reduce_floats(problem, [float(torch.sum(B.double() ** 2))])[0], 0.0)
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
        if problem.comm is not None:  # B's columns are spread over the processes
            Ub, S, V = problem.comm.gram_svd(sketch.B, rank)
            U = (sketch.L.double() @ Ub).float()
            return U, S.float(), V.float().contiguous()
        Ub, S, Vt = torch.linalg.svd(sketch.B.double(), full_matrices=False)
        U = (sketch.L.double() @ Ub[:, :rank]).float()
    return U, S[:rank].float(), Vt[:rank].T.float().contiguous()


def hals_rows(
    Ht: torch.Tensor,
    At: torch.Tensor,
    G: torch.Tensor,
    *,
    max_inner: int = 1,
    delta: float = 0.1,
    reduce=None,
    work: torch.Tensor | None = None,
) -> int:
    """Hierarchical ALS on the rows of ``Ht`` (r x N), in place.

    Minimizes ``0.5 tr(Ht^T G Ht) - <At, Ht>`` over ``Ht >= 0`` (e.g. ``Ht = F^T``, ``At = V^T X_w``,
    ``G = V^T V``) one row at a time, each row given the others: the exact minimizer is
    ``max(0, (At[k] - sum_{j != k} G[k, j] Ht[j]) / G[k, k])``.  Only the small ``G`` and the
    ``r x N`` matrices are touched.  Repeats the sweep over rows up to ``max_inner`` times while
    it still moves the rows by more than ``delta`` times the first sweep (Gillis & Glineur 2012).
    Returns the number of sweeps made.  ``reduce`` (optional, ``[float] -> [float]``) sums the
    squared move over processes when ``Ht``'s columns are spread over them (a distributed ``F``),
    so that every process makes the same number of sweeps.  ``work`` (optional, contiguous, ``At``'s
    shape and dtype, contents ignored) holds the scaled rows of ``At``: a caller that sweeps big matrices again
    and again passes the same buffer (a fresh one of 227 MB, 10 x 5.67 M loadings, is a new mapping
    whose pages the kernel faults in and zeroes every time).
    """
    # a big matrix (ResNet-50's loadings at full resolution: 10 x 5.67 M) keeps every thread: 3 sweeps
    # took 0.61 s on two threads against 1.12 s on one (and 1.08 s a band of columns at a time)
    with one_thread(Ht.device, Ht.numel()):
        return _hals_rows(Ht, At, G, max_inner, delta, reduce, work)


#: matrices above this many elements are not "small": their row updates and QRs keep every thread
SMALL_WORK = 1 << 22


@contextlib.contextmanager
def one_thread(device: torch.device, elements: int = 0):
    """Run small-matrix work (row updates, Gram matrices, sketched products) on one CPU thread.

    It touches matrices of a few thousand entries per operation; spreading each over threads
    gains little and, when another process holds a core, every operation waits for a descheduled
    thread (measured here: a rank-50 row sweep took 0.6 ms on one thread and up to 0.5 s on two
    under load).  Passes over the data keep every thread, and so does work on a matrix of more
    than :data:`SMALL_WORK` ``elements`` (the loadings of millions of features: ResNet-50's
    Bottleneck outputs at full resolution), which is not small.
    """
    n = torch.get_num_threads()
    if device.type != "cpu" or n == 1 or elements > SMALL_WORK:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


#: rows updated one after another inside a block of :func:`hals_rows`' sweep
ROW_BLOCK = 8
#: up to this rank a sweep is one block (no product for the rows outside it), whatever the size
ONE_BLOCK_RANK = 16
#: ... and above it while the rows fit in a core's cache (elements: 1.2 MB of float32)
ONE_BLOCK_ELEMENTS = 300_000


def row_block(r: int, n: int) -> int:
    """Rows per block of a sweep over ``r`` rows of ``n`` entries: all of them when ``r`` is at most
    :data:`ONE_BLOCK_RANK` or the rows fit in a core's cache (:data:`ONE_BLOCK_ELEMENTS`), else
    :data:`ROW_BLOCK`.

    Measured here (one thread, ms per sweep, blocks of 8 / one block): rank 10, 10,000 columns 0.48 /
    0.32; rank 28, 10,000: 1.81 / 1.58; rank 32, 10,000: 2.09 / 3.15 (out of cache); rank 50,
    2,544: 1.50 / 1.18; rank 50, 10,000: 3.87 / 7.8; rank 10, 5.67 M (two threads): 289 / 232.
    """
    return r if r <= ONE_BLOCK_RANK or r * n <= ONE_BLOCK_ELEMENTS else min(r, ROW_BLOCK)


def _hals_rows(Ht, At, G, max_inner, delta, reduce=None, work=None) -> int:
    diag = torch.diagonal(G)
    # a row whose partner is all zero (G[k, k] == 0) has no information: keep it as it is, so that
    # the pair can recover later (setting it to 0 would lock both at zero for good)
    ok = (diag > 0).tolist()
    d = diag.clamp_min(torch.finfo(G.dtype).tiny)
    G0 = G.clone().fill_diagonal_(0)
    Gs = G0 / d[:, None]
    r = Ht.shape[0]
    if work is None:  # the scaled rows of At: one contiguous buffer for every sweep
        work = torch.empty(At.shape, dtype=At.dtype, device=At.device)
    # with one block there is nothing outside it: At / d is the same for every sweep, scale it once
    whole = torch.div(At, d[:, None], out=work) if row_block(r, Ht.shape[1]) == r else None
    first = None
    sweeps = 0
    # one buffer for the rows before a sweep, reused: fresh (rows x samples) temporaries every sweep
    # cost more than the sweep itself at rank 50 (each is a new mapping the kernel has to fault in)
    moved = torch.empty_like(Ht) if max_inner > 1 else None
    for sweeps in range(1, max_inner + 1):
        last = sweeps == max_inner
        if moved is not None and not last:
            moved.copy_(Ht)
        _sweep(Ht, At, G0, Gs, d, ok, r, whole, work)
        if moved is not None and not last:
            change = float(torch.linalg.vector_norm(moved.sub_(Ht))) ** 2
            if reduce is not None:
                change = reduce([change])[0]
            if first is None:
                first = change
            elif change <= delta * delta * first:
                break
    return sweeps


def _sweep(Ht, At, G0, Gs, d, ok, r, whole, work) -> None:
    """One sweep over the rows, in blocks of :func:`row_block` rows.

    ``G0`` is ``G`` with a zero diagonal, ``d`` its diagonal and ``Gs = G0 / d`` (row-scaled);
    ``whole`` is ``At / d``, needed (and given) only when all rows fit in one block; otherwise each
    block's scaled rows are written into its rows of ``work`` (``At``'s shape).
    The same sequential row updates as row-by-row HALS, arranged so that most of the work is one
    matrix product per block: the contribution of the rows outside the block (earlier blocks
    already updated, later ones not yet) is computed at once, scaled by ``1 / d`` while the block
    is in cache, and only the few rows inside the block are updated one after another.  The row
    views come from one ``unbind`` per block (indexing row by row cost about a third of a
    rank-50 sweep).
    """
    size = row_block(r, Ht.shape[1])
    for a in range(0, r, size):
        b = min(a + size, r)
        Hb = Ht[a:b]
        if b - a == r:  # one block: nothing outside it
            base = whole
        else:  # (At - G0[block, outside] @ Ht[outside]) / d
            base = torch.addmm(At[a:b], G0[a:b], Ht, alpha=-1, out=work[a:b])
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
    Vt: torch.Tensor,
    Ct: torch.Tensor,
    G: torch.Tensor,
    signed: list[slice],
    *,
    max_inner: int = 1,
    work: torch.Tensor | None = None,
) -> None:
    """The loadings given ``F``, in place on the stacked ``Vt`` (r x total features).

    Columns of non-negative blocks: HALS (:func:`hals_rows`, with its ``work`` buffer); columns in
    ``signed`` (slices of signed blocks): the exact unconstrained least squares :func:`gram_solve`,
    never clamped.
    """
    hals_rows(Vt, Ct, G, max_inner=max_inner, work=work)
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
    XF = {i: big_mm(Xb, F) for i, (Xb, sg) in enumerate(zip(problem.X, problem.signed)) if sg}
    count_pass(problem, list(XF))
    if problem.comm is not None:  # one all-reduce of F^T F and the signed blocks' X_b F
        packed = reduce_sum(problem, torch.cat([FtF, *XF.values()], dim=0))
        FtF, start = packed[: F.shape[1]], F.shape[1]
        for i in XF:
            XF[i], start = packed[start : start + XF[i].shape[0]], start + XF[i].shape[0]
    return [gram_solve(FtF, XF[i].T).T.contiguous() if sg else Wb for i, (Wb, sg) in enumerate(zip(W, problem.signed))]
