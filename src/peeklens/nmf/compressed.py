"""Compressed HALS: iterate on a randomized sketch of the data, refined around the factors.

Following compressed NMF (Tepper & Sapiro 2016) with a randomized range finder (Halko, Martinsson
& Tropp 2011): the stacked weighted matrix ``X_w`` (total features x samples) is replaced by
``L B`` with ``L`` an orthonormal basis of its dominant range (``k = rank + oversample`` columns,
a few power iterations) and ``B = L^T X_w`` (k x samples).  HALS then runs on the small matrices::

    A^T = (V^T L) B,   C^T = (F^T B^T) L^T                     (instead of V^T X_w and F^T X_w^T)

so an iteration costs ``O((samples + features) (k + r) r)`` instead of ``O(samples features r)``.
The compressed iterations are accelerated by extrapolation (Ang & Gillis 2019): after each
accepted iteration both factors jump ahead along their last move by a factor ``beta`` that grows
while it helps; an iteration that ends above the last accepted objective is undone and ``beta``
shrinks, so the recorded objective never increases (beyond round-off): the next iteration is
then an ordinary HALS iteration from the accepted point, which is accepted (it cannot raise the
objective; a rise there is round-off, and rejecting it would repeat the same iteration for the
rest of the phase).

A fixed sketch has a blind spot: the best non-negative factors of ``X_w`` do not lie in its
dominant range, so HALS on the sketch converges to a minimum of the sketch's problem, some
tenths of a percent above the real one.  **Refinement rounds** remove it: each round makes one
exact pass (``X_w F``), gives the loadings one exact HALS update, records the exact objective,
and widens the sketch by the current loadings and ``X_w F`` (one more pass).  On the widened
basis the compressed gradients are exact at the current point, so a few rounds converge to a
minimum of the real objective at a fraction of the cost of exact HALS iterations (on the paper's
workload: below scikit-learn's 200-iteration objective at ranks 20 to 50, see benchmarks/).

The recorded objective mixes estimates (compressed iterations: ``||X_w - L L^T X_w||^2 + ||L L^T
X_w - V F^T||^2``) and exact values (one per round, at ``settings["exact_steps"]``); the last
entry is always exact, as are the reported errors.  A round whose compressed iterations lowered
the estimate but raised the exact objective (it happens near a minimum, by a few parts per
million) is undone: the fit goes back to the best exact point and stops, recording its objective
once more, and ``settings["went_back"]`` is ``True``.

Near an exact fit (objective below ``NEAR_EXACT`` = 1e-4 of ``||X_w||^2``, e.g. planted low-rank
data or signed blocks fitted by semi-NMF) the Gram-matrix formula ``||X_w||^2 - 2 <V, C> + <V^T V,
F^T F>`` cancels: its float32 products leave a round-off of ~1e-7 of ``||X_w||^2``, as large as the
objective's changes, and the steps' accept / reject and stop decisions become noise.  There the
compressed estimates are computed from the sketch's residuals (one more small product per
iteration) and each round's exact objective from the data's residual (one more pass per round).
Fits that stay above that level (every real activation matrix measured so far) are unchanged.
"""

from __future__ import annotations

import torch

from . import hals
from ._linalg import (
    SMALL_WORK,
    Sketch,
    clamp_unsigned,
    gram_solve,
    hals_rows,
    loadings_update,
    one_thread,
    range_sketch,
    row_slices,
    signed_slices,
    sqrt_weights,
    xw_both,
    xw_mm,
    xwt_mm,
)
from ._problem import (
    Problem,
    SolverResult,
    block_errors,
    block_sq_from_grams,
    converged,
    products,
    random_init,
    reduce_floats,
    reduce_sum,
    weighted_sum,
)

__all__ = ["solve", "sketch_size"]

DEFAULT_OVERSAMPLE = 20
DEFAULT_POWER_ITER = 2
DEFAULT_REFINE = 5
DEFAULT_EXACT_ITER = 0
DEFAULT_START_ITER = 20
DEFAULT_ROUND_ITER = 20
#: compressed iterations per round when a block is signed: semi-NMF converges more slowly
SIGNED_ROUND_ITER = 60
#: below this share of ||X_w||^2 the compressed objective is computed from residuals, not the Gram formula
NEAR_EXACT = 1e-4


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
    refine: int = DEFAULT_REFINE,
    exact_iter: int = DEFAULT_EXACT_ITER,
    seed: int = 0,
    extrapolate: bool = True,
    also_random: bool = False,
    start_iter: int = DEFAULT_START_ITER,
    round_iter: int | None = None,
    start_tol: float | None = None,
    round_tol: float | None = None,
    stop: float | None = None,
    fused: bool | None = None,
    info: dict | None = None,
) -> SolverResult:
    """Compressed HALS on a sketch, refined around the current factors, finished on the real data.

    1. **Start**: up to ``max_iter`` HALS iterations on ``sketch`` (from
       :func:`~peeklens.nmf._linalg.range_sketch`, at least ``rank`` columns; may be shared
       by several ranks, e.g. across a sweep; otherwise ``rank + oversample`` columns and
       ``power_iter`` power iterations from ``seed``).  ``also_random=True`` runs this phase a
       second time from the paper's random start (from ``seed``) and keeps the start that ends
       lower (``info["start_kept"]``: ``"init"`` or ``"random"``).
    2. **Refinement rounds** (at most ``refine``): one pass over the data computes ``X_w F``, the
       loadings take one exact HALS update from it and the exact objective is recorded; the
       round stops the fit when that objective changed by less than ``tol`` (relative) since the
       previous round.  Otherwise the sketch is widened by the current loadings and ``X_w F``
       (one more pass, ``2 rank`` columns) and the compressed iterations go on there: on that
       basis the compressed gradient of ``F`` is exact at the current point, so the rounds
       converge to a minimum of the real objective, not of the sketch's.  A round that ends
       above the best exact objective so far is undone and the rounds stop
       (``info["went_back"]``).  The rounds also stop when further rounds stop paying
       (:func:`_not_paying`): the last one lowered the exact objective by less than ``stop``
       (relative; default ``10 * tol``), or the gains of the last rounds shrink so fast that all
       further rounds together would gain less.  ``fused=True`` makes each round ONE pass over the
       data instead of two: the widening products are read in the same pass as the exact product,
       so the sketch is widened by the loadings and the previous round's ``X_w F`` (one round
       late; converges more slowly per round).  The default (``None``) fuses the rounds for blocks
       on disk (``problem.on_disk``), where reads dominate: on ResNet-50's 21 GiB of full-resolution
       activations, 7.2 reads instead of 9.2 and 244 s instead of 285 s, 0.08 % higher
       (docs/scale.md); blocks in memory keep two passes per round.  ``info["fused"]`` records it.
    3. ``exact_iter`` ordinary HALS iterations on the real data (default 0: the rounds already
       end on an exact update).

    When the sketch would not be much smaller than the data, plain HALS runs instead.
    ``info`` (a dict) receives what was done: ``compressed_iter``, ``refinements``,
    ``exact_iter``, ``sketch_k``.  ``extrapolate=False`` turns the extrapolation of the
    compressed iterations off.
    """
    info = {} if info is None else info
    r = F.shape[1]
    k = sketch_size(problem, r, oversample)
    if sketch is None and not worth_compressing(problem, k):
        res = hals.solve(problem, F, W, max_iter=max_iter, tol=tol, callback=callback)
        info.update(compressed_iter=0, refinements=0, exact_iter=res.n_iter, sketch_k=0)
        return res
    if sketch is None:
        sketch = range_sketch(problem, k, power_iter=power_iter, seed=seed)
    L0, B0 = sketch.L, sketch.B
    slices = row_slices(problem)
    signed = signed_slices(problem)  # semi-NMF: these columns of Vt by least squares, never clamped
    sw = sqrt_weights(problem)
    # V = [sqrt(w_b) W_b], transposed: (r x total features)
    Vt = _stack_t(W, sw)
    Ft = F.T.contiguous()
    objective: list[float] = []

    def record(obj: float) -> None:
        objective.append(obj)
        if callback is not None:
            callback(len(objective), obj)

    s_iter = max(1, min(max_iter, int(start_iter)))
    if round_iter is None:
        round_iter = SIGNED_ROUND_ITER if problem.any_signed else DEFAULT_ROUND_ITER
    r_iter = max(1, min(max_iter, int(round_iter)))
    stop = 10 * tol if stop is None else float(stop)
    s_tol = 10 * tol if start_tol is None else start_tol
    r_tol = (tol / 10 if tol > 0 else 0.0) if round_tol is None else round_tol
    fused = problem.on_disk if fused is None else bool(fused)  # one read per round for blocks on disk
    info["fused"] = fused
    first = _phase(problem, [(L0, B0)], Ft, Vt, max_iter=s_iter, tol=s_tol, extrapolate=extrapolate, signed=signed)
    kept = "init"
    if also_random:  # a second start, the paper's random one, on the sketch; keep the better
        F2, W2 = random_init(problem, r, seed)
        Ft2, Vt2 = F2.T.contiguous(), _stack_t(W2, sw)
        second = _phase(
            problem, [(L0, B0)], Ft2, Vt2, max_iter=s_iter, tol=s_tol, extrapolate=extrapolate, signed=signed
        )
        if second[-1] < first[-1]:
            Ft, Vt, first, kept = Ft2, Vt2, second, "random"
    for obj in first:
        record(obj)
    info["start_kept"] = kept

    # refinement rounds, ONE pass each: (X_w F)^T for the exact loadings update and objective, and in
    # the same read X_w^T Y for the widened sketch, Y = [the loadings, the last round's X_w F]
    exact: list[float] = []
    exact_steps: list[int] = []  # which entries of the objective are exact (1-based iterations)
    rounds, n_rounds = 0, max(int(refine), 1)
    best = None  # (exact objective, Ft, Vt, Ct, G) of the lowest exact point so far
    prev_Ct = None
    for rounds in range(1, n_rounds + 1):
        last = rounds == n_rounds
        if fused:
            Y = None if last else (Vt if prev_Ct is None else torch.cat([Vt, prev_Ct], dim=0)).T.contiguous()
            Ct, G, P = _round_products(problem, Ft, Y)
        else:
            Ct, G = _exact_products(problem, Ft)
        with one_thread(problem.device, L0.numel()):
            loadings_update(Vt, Ct, G, signed, max_inner=1)
            obj = _objective(problem.weighted_norm2(), Vt, Ct, G)
        if obj < NEAR_EXACT * problem.weighted_norm2():  # near an exact fit: the residual itself (a pass)
            obj = weighted_sum(problem, block_errors(problem, Ft.T, _unstack(Vt, slices, sw, W)))
        exact.append(obj)
        record(exact[-1])
        exact_steps.append(len(objective))
        if best is not None and exact[-1] > best[0]:
            # the compressed iterations of the last round raised the real objective (their estimate
            # fell): go back to the best exact point and stop there
            _, Ft, Vt, Ct, G = best
            exact.append(best[0])
            record(best[0])
            exact_steps.append(len(objective))
            info["went_back"] = True
            break
        if last or converged(exact, tol) or _not_paying(exact, stop):
            break
        best = (exact[-1], Ft.clone(), Vt.clone(), Ct, G)
        if fused:
            with one_thread(problem.device, L0.numel()):
                basis = [(L0, B0)]
                widened = _widen(L0, B0, Y, P)
                if widened is not None:
                    basis.append(widened)
                rest = _exact_part(basis, Ft, Ct, G)
                if rest is not None:
                    basis.append(rest)
        else:  # the widened basis [L0, Q] is kept in two parts: no copy of the (features x k) basis
            with one_thread(problem.device, L0.numel()):
                Q = _orth_against(L0, torch.cat([Vt, Ct], dim=0).T)
            basis = [(L0, B0), (Q, xwt_mm(problem, Q).T.contiguous())]
        _phase(
            problem, basis, Ft, Vt, max_iter=r_iter, tol=r_tol, extrapolate=extrapolate, record=record, signed=signed
        )
        prev_Ct = Ct
    info.update(
        compressed_iter=len(objective) - len(exact), refinements=rounds, sketch_k=sketch.k, exact_steps=exact_steps
    )
    # back to per-block loadings; blocks of weight 0 keep their start until the exact iteration below
    W = _unstack(Vt, slices, sw, W)
    F = Ft.T.contiguous()
    done = len(exact) >= 2 and converged(exact, tol)
    if any(w == 0 for w in problem.weights):  # they are not in the stacked matrix: fit them given F
        exact_iter = max(int(exact_iter), 1)
    if int(exact_iter) <= 0:
        info["exact_iter"] = 0
        # every weight is positive here: (X_b F)^T = Ct_b / sqrt(w_b), exact for the final factors
        XF = [Ct[:, sl].T / s for sl, s in zip(slices, sw)]
        return SolverResult(F, W, objective, len(objective), done, block_sq=block_sq_from_grams(problem, W, XF, G))

    done_steps = len(objective)

    def shifted(i: int, obj: float) -> None:
        if callback is not None:
            callback(done_steps + i, obj)

    res = hals.solve(problem, F, W, max_iter=int(exact_iter), tol=tol, callback=shifted)
    info["exact_iter"] = res.n_iter
    return SolverResult(
        res.F, res.W, objective + res.objective, done_steps + res.n_iter, res.converged, block_sq=res.block_sq
    )


def _round_products(problem: Problem, Ft: torch.Tensor, Y: torch.Tensor | None):
    """``((X_w F)^T, F^T F, X_w^T Y)`` from one pass over the data (``X_w F`` and ``F^T F`` summed
    over the processes when distributed; ``X_w^T Y`` holds this process's samples).  ``Y=None``: the
    first product only."""
    if Y is None:
        Ct, G = _exact_products(problem, Ft)
        return Ct, G, None
    Ct, P = xw_both(problem, Ft, Y)
    with one_thread(problem.device):
        G = reduce_sum(problem, Ft @ Ft.T)
    return Ct, G, P


def _exact_products(problem: Problem, Ft: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``((X_w F)^T, F^T F)``: one pass over the data (summed over processes when distributed)."""
    if problem.comm is None:
        Ct = xw_mm(problem, Ft.T.contiguous()).T.contiguous()
        with one_thread(problem.device):
            return Ct, Ft @ Ft.T
    XF, G = products(problem, Ft.T.contiguous(), Ft)
    Ct = torch.cat([x.T * s for x, s in zip(XF, sqrt_weights(problem))], dim=1).contiguous()
    return Ct, G


#: elements of each float64 band of :func:`_dot` (8 MiB temporaries: larger ones are fresh
#: mappings every call, and took 3.5 times longer here)
DOT_BAND = 1 << 20


def _dot(a: torch.Tensor, b: torch.Tensor, small: int = SMALL_WORK, band: int = DOT_BAND) -> float:
    """``<a, b>`` summed in float64.  Up to ``small`` elements: float32 products, one float64 sum;
    bigger matrices a band of ``band`` contiguous elements at a time, converted to float64 (no
    temporary of their size; 85 ms for two 10 x 5.67 M matrices, where float32 products summed in
    float64 a band of columns at a time took 216 ms)."""
    if a.numel() <= small or a.dim() != 2:
        return float(torch.sum(a * b, dtype=torch.float64))
    a, b = a.contiguous().view(-1), b.contiguous().view(-1)
    total = 0.0
    for j in range(0, a.numel(), band):
        total += float(torch.dot(a[j : j + band].double(), b[j : j + band].double()))
    return total


def _unstack(Vt: torch.Tensor, slices: list[slice], sw: list[float], W: list[torch.Tensor]) -> list[torch.Tensor]:
    """Per-block loadings ``W_b`` (features_b x r) from the stacked ``V^T``; blocks of weight 0 keep ``W``'s."""
    return [(Vt[:, sl].T / s).contiguous() if s > 0 else w for sl, s, w in zip(slices, sw, W)]


def _stack_t(W: list[torch.Tensor], sw: list[float]) -> torch.Tensor:
    """``V^T = [sqrt(w_b) W_b]^T`` (r x total features), contiguous."""
    return torch.cat([w.T * s for w, s in zip(W, sw)], dim=1).contiguous()


def _orth_against(L: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis of the part of ``Y``'s columns orthogonal to ``L``'s (twice, for accuracy)."""
    for _ in range(2):
        Y = Y - L @ (L.T @ Y)
        Y = torch.linalg.qr(Y, mode="reduced").Q
    return Y.contiguous()


#: rows (features) of each float64 band of :func:`_widen` and :func:`_exact_part`
WIDEN_BAND = 1 << 16


def _bands(n: int):
    """Slices of :data:`WIDEN_BAND` rows covering ``range(n)``."""
    return (slice(j, min(j + WIDEN_BAND, n)) for j in range(0, n, WIDEN_BAND))


def _widen(L: torch.Tensor, B: torch.Tensor, Y: torch.Tensor, P: torch.Tensor):
    """``(Q, Q^T X_w)``: an orthonormal basis ``Q`` of the part of ``Y``'s columns (total features x p)
    orthogonal to the sketch's ``L``, and its products with the data from ``P = X_w^T Y`` (read in
    the same pass as the round's exact product) and ``B = L^T X_w``: no pass of its own.

    ``Y_perp = Y - L L^T Y = U S W^T`` (columns of ``Y`` scaled to unit norm), so ``Q = U = Y_perp W
    S^-1`` and ``Q^T X_w = S^-1 W^T (P^T - (Y^T L) B)``.  ``W`` and ``S`` come from the float64 Gram
    matrix ``Y_perp^T Y_perp`` (p x p), summed a band of features at a time, so that no float64 copy
    of a (features x k) matrix is made (with 5.67 M features such copies held 4 GiB more than the
    two-pass rounds).  Directions with ``S`` below 1e-3 of the largest are dropped (there the
    subtraction would lose the accuracy of float32 products; the Gram matrix then keeps ``Q``
    orthonormal to about 1e-10).  ``None`` when nothing is left.
    """
    M, p = Y.shape
    scale = torch.linalg.vector_norm(Y, dim=0).double().clamp_min(1e-30)
    YL = torch.zeros((p, L.shape[1]), dtype=torch.float64, device=Y.device)
    for sl in _bands(M):
        YL += (Y[sl].double() / scale).T @ L[sl].double()

    def perp(sl):  # rows sl of Y_perp, float64
        return Y[sl].double() / scale - L[sl].double() @ YL.T

    K = torch.zeros((p, p), dtype=torch.float64, device=Y.device)
    for sl in _bands(M):
        Yp = perp(sl)
        K += Yp.T @ Yp
    evals, W = torch.linalg.eigh(K)
    S = evals.clamp_min(0).sqrt()
    keep = S > 1e-3 * S.max().clamp_min(1e-300)
    if not bool(keep.any()):
        return None
    T = W[:, keep] / S[keep]  # p x q: Q = Y_perp T, orthonormal to ~1e-10 (float64 Gram), far below float32's
    Q = torch.empty((M, T.shape[1]), dtype=L.dtype, device=Y.device)
    for sl in _bands(M):
        Q[sl] = perp(sl) @ T
    proj = (P.double() / scale).T - YL @ B.double()  # p x samples: Y_perp^T X_w
    return Q, (T.T @ proj).to(B.dtype).contiguous()


def _exact_part(basis, Ft: torch.Tensor, Ct: torch.Tensor, G: torch.Tensor):
    """``(U, Z)``: the part of the round's exact ``X_w F`` outside the basis, as one more basis part.

    ``U`` is an orthonormal basis of ``E = (I - sum L_i L_i^T) X_w F`` and ``Z = U^T X_w F (F^T F)^+ F^T``
    stands in for ``U^T X_w`` (unknown without another pass) by its projection on ``F``'s row space:
    exact for products with ``F`` itself, so the compressed loadings update starts from the exact
    ``X_w F``, as in a two-pass round.  ``None`` when nothing is outside.

    All in float64, a band of features at a time, with no (features x r) float64 matrix kept:
    ``E`` is projected twice against the basis; its directions come from its Gram matrix (those with
    singular values below 1e-6 of ``||X_w F||`` are dropped), orthonormalized once more by a
    second Gram matrix (Cholesky QR2), and ``U^T X_w F`` is taken as ``U^T E`` (equal, since ``U``
    is orthogonal to the basis, and free of ``X_w F``'s large components along it).
    """
    M, r = Ct.shape[1], Ct.shape[0]
    Ls = [L for L, _ in basis]
    dev = Ct.device
    f64 = torch.float64

    def projected(sl, coefs):  # rows sl of C - sum_i L_i c_i, once per list of coefficients
        E = Ct[:, sl].T.double()
        for cs in coefs:
            for L, c in zip(Ls, cs):
                E -= L[sl].double() @ c
        return E

    coefs: list[list[torch.Tensor]] = []
    for _ in range(2):  # E = (I - sum L_i L_i^T)^2 C, the second pass against the first's round-off
        cs = [torch.zeros((L.shape[1], r), dtype=f64, device=dev) for L in Ls]
        for sl in _bands(M):
            E = projected(sl, coefs)
            for c, L in zip(cs, Ls):
                c += L[sl].double().T @ E
        coefs.append(cs)
    K = torch.zeros((r, r), dtype=f64, device=dev)
    for sl in _bands(M):
        E = projected(sl, coefs)
        K += E.T @ E
    evals, W = torch.linalg.eigh(K)
    S = evals.clamp_min(0).sqrt()
    keep = S > 1e-6 * float(torch.linalg.vector_norm(Ct.double()))
    if not bool(keep.any()):
        return None
    T = W[:, keep] / S[keep]  # U = E T, orthonormal up to the Gram matrix's round-off ...
    K2 = torch.zeros((T.shape[1], T.shape[1]), dtype=f64, device=dev)
    for sl in _bands(M):
        EU = projected(sl, coefs) @ T
        K2 += EU.T @ EU
    T = torch.linalg.solve_triangular(torch.linalg.cholesky(K2, upper=True), T, upper=True, left=False)
    U = torch.empty((M, T.shape[1]), dtype=Ct.dtype, device=dev)  # ... and once more: U = E T R^-1
    EtU = torch.zeros((r, T.shape[1]), dtype=f64, device=dev)  # (X_w F)^T U = E^T U
    for sl in _bands(M):
        E = projected(sl, coefs)
        Ub = E @ T
        EtU += E.T @ Ub
        U[sl] = Ub
    coef = gram_solve(G, EtU.to(G.dtype)).double()  # G^+ (X_w F)^T U  (r x p)
    Z = coef.T @ Ft.double()  # p x samples
    return U.contiguous(), Z.to(Ct.dtype).contiguous()


def _not_paying(exact: list[float], stop: float) -> bool:
    """Whether another round would not pay: the last round lowered the exact objective by less than
    ``stop`` (relative), or the rounds' gains shrink so fast that all further rounds together
    (a geometric series) would gain less than ``stop``."""
    if stop <= 0 or len(exact) < 2:
        return False
    gain = (exact[-2] - exact[-1]) / max(abs(exact[-2]), 1e-300)
    if gain < stop:
        return True
    if len(exact) < 3:
        return False
    before = (exact[-3] - exact[-2]) / max(abs(exact[-3]), 1e-300)
    q = gain / before if before > 0 else 1.0
    return q < 1 and gain * q / (1 - q) < stop


def _objective(total2: float, Vt: torch.Tensor, Ct: torch.Tensor, G: torch.Tensor) -> float:
    """``||X_w||^2 - 2 <V, C> + <V^T V, G>`` with float64 sums of float32 products."""
    return max(total2 - 2.0 * _dot(Vt, Ct) + _dot(Vt @ Vt.T, G), 0.0)


def _sketch_residual(problem: Problem, basis, Ft: torch.Tensor, Vt: torch.Tensor, G: torch.Tensor, outside: float):
    """The compressed objective ``||X_w - sum L_i B_i||^2 + ||sum L_i B_i - V F^T||^2`` from its residuals.

    ``outside + sum_i ||B_i - (V^T L_i)^T F^T||^2 + <P^T P, F^T F>`` with ``P = V - sum L_i L_i^T V``
    (the part of the loadings outside the basis): the same value as :func:`_objective`'s Gram
    formula, but its round-off is relative to the residual, not to ``||X_w||^2`` (about 1e-7 of it
    in float32 products), which is what decides steps near an exact fit.  ``outside`` is
    ``||X_w||^2 - sum ||B_i||^2`` (a constant of the phase).  Costs about one more product of the
    size of a compressed iteration's.
    """
    res2 = 0.0
    P = Vt.clone()
    for L, B in basis:
        VL = Vt @ L  # r x k_i
        res2 += float(torch.sum(torch.addmm(B, VL.T, Ft, alpha=-1).square_(), dtype=torch.float64))
        P.sub_(VL @ L.T)
    res2 = reduce_floats(problem, [res2])[0]
    return max(outside + res2 + _dot(P @ P.T, G), 0.0)


def _phase(problem, basis, Ft, Vt, *, max_iter, tol, extrapolate, record=None, signed=()):
    """Compressed iterations on ``X_w ~ sum_i L_i B_i`` (``basis``: pairs ``(L_i, B_i)`` whose
    ``L_i`` together are orthonormal), in place on ``Ft`` and ``Vt``.

    Returns the objective estimate after every iteration.  ``record(obj)`` (optional) is called
    after every iteration.  ``signed``: the column slices of signed blocks in ``Vt`` (least squares,
    never clamped).
    """
    r, n, M = Ft.shape[0], problem.n_samples, Vt.shape[1]
    k = sum(B.shape[0] for _, B in basis)
    comm = problem.comm
    reduce = comm.sum_floats if comm is not None else None
    inner_F = _inner(n, k, r)
    inner_V = _inner(M, k, r)

    def project_v():  # V^T L_i for every part
        return [Vt @ L for L, _ in basis]

    total2 = problem.weighted_norm2()
    objective: list[float] = []
    # extrapolation (Ang & Gillis 2019): after an accepted step, jump ahead along the last move by
    # beta; if the next step ends higher than the last accepted point, go back there, shrink beta
    beta, beta_max = (0.5, 1.0) if extrapolate else (0.0, 0.0)
    Fs, Vs = Ft.clone(), Vt.clone()
    # the moves, in buffers reused by every step: fresh (r x features) temporaries each step cost
    # more than the step's arithmetic when the features number millions (each a new mapping to fault in)
    dF, dV = (torch.empty_like(Ft), torch.empty_like(Vt)) if extrapolate else (None, None)
    plain = False
    outside = None
    # (r x features) buffers for C^T and for the row sweeps' scaled rows, reused by every step
    Ct, work = torch.empty_like(Vt), torch.empty_like(Vt)
    # the products (r x k x samples) use every thread; hals_rows runs its row updates on one
    VL = project_v()
    for _step in range(max_iter):
        At = sum(vl @ B for vl, (_, B) in zip(VL, basis))  # r x n  ~ V^T X_w
        hals_rows(Ft, At, Vt @ Vt.T, max_inner=inner_F, reduce=reduce)
        if comm is None:
            G = Ft @ Ft.T
            FB = [Ft @ B.T for _, B in basis]
        else:  # F^T F and F^T B_i^T are sums over the samples: one all-reduce of r x (r + k)
            packed = reduce_sum(problem, torch.cat([Ft @ Ft.T, *(Ft @ B.T for _, B in basis)], dim=1))
            G, FB = packed[:, :r], list(torch.split(packed[:, r:], [B.shape[0] for _, B in basis], dim=1))
        torch.mm(FB[0], basis[0][0].T, out=Ct)  # C^T = sum_i (F^T B_i^T) L_i^T  ~ F^T X_w^T
        for fb, (L, _) in zip(FB[1:], basis[1:]):
            Ct.addmm_(fb, L.T)
        loadings_update(Vt, Ct, G, list(signed), max_inner=inner_V, work=work)
        obj = _objective(total2, Vt, Ct, G)
        if obj < NEAR_EXACT * total2:  # the formula's round-off is no longer small next to obj
            if outside is None:  # ||X_w||^2 - sum ||B_i||^2, once per phase
                outside = total2 - reduce_floats(problem, [sum(_dot(B, B) for _, B in basis)])[0]
            obj = _sketch_residual(problem, basis, Ft, Vt, G, outside)
        if extrapolate and objective and obj > objective[-1] and not plain:
            Ft.copy_(Fs)
            Vt.copy_(Vs)
            VL = project_v()
            beta_max, beta = beta, beta / 1.5
            objective.append(objective[-1])  # still at the last accepted point
            if record is not None:
                record(objective[-1])
            plain = True  # the next step starts from the accepted point itself, without a jump
            continue
        plain = False
        objective.append(obj)
        if record is not None:
            record(obj)
        if converged(objective, tol):
            Fs.copy_(Ft)
            Vs.copy_(Vt)
            break
        if extrapolate:  # beta grows after an accepted step, then the factors jump ahead by it
            beta, beta_max = min(beta_max, 1.05 * beta), min(1.0, 1.01 * beta_max)
            torch.sub(Ft, Fs, out=dF)
            torch.sub(Vt, Vs, out=dV)
            Fs.copy_(Ft)
            Vs.copy_(Vt)
            Ft.add_(dF, alpha=beta).clamp_(min=0)
            clamp_unsigned(Vt.add_(dV, alpha=beta), list(signed))
        VL = project_v()
    if extrapolate:  # end on the last accepted point, not on a jump
        Ft.copy_(Fs)
        Vt.copy_(Vs)
    return objective


def _inner(N: int, k: int, r: int) -> int:
    """Row sweeps per compressed iteration: the small products cost about ``(N + k) k r``."""
    products = (N + k) * k * r
    sweeps = N * r * (r + 1)
    return int(max(1, min(1 + 0.5 * products / max(sweeps, 1), 5)))
