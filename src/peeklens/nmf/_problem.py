"""What every solver shares: the problem on a device, initialization, exact errors.

Solvers live in their own modules (``mu.py``, ...), each a public ``solve`` with explicit
arguments that ``_fit.run_solver`` calls by name; they share the form::

    solve(problem: Problem, F: Tensor, W: list[Tensor], *, max_iter: int, tol: float,
          callback, <the solver's own options>) -> SolverResult

``F`` is (samples x rank) and ``W[b]`` is (features_b x rank), both float32 on
``problem.device``; the solver may update them in place.  ``callback(i,
objective)`` is called after each iteration and may raise to stop the fit.
"""

from __future__ import annotations

import math
import mmap
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from ..activations import Activations
from ..errors import DeviceError, InputError, NonNegativityError
from ._stream import BAND_BYTES, is_mapped, prefetch_bands, register, streamed_mm

__all__ = [
    "Problem",
    "SolverResult",
    "make_problem",
    "random_init",
    "explicit_init",
    "block_errors",
    "block_sq_from_grams",
    "objective_from_grams",
    "check_blocks",
    "refuse",
    "scan",
    "is_signed",
    "finite_min_max",
    "chunked_norm2",
    "reduce_sum",
    "reduce_floats",
    "products",
    "count_pass",
    "is_memory_mapped",
]


@dataclass
class Problem:
    """The blocks of one coupled factorization, as tensors on one device.

    ``X[b]`` is (features_b x samples) float32; ``weights[b]`` the block weight
    in the objective ``sum_b weights[b] * ||X_b - W_b F^T||^2``; ``norms2[b]``
    is ``||X_b||^2`` in float64.
    """

    names: list[str]
    X: list[torch.Tensor]
    weights: list[float]
    norms2: list[float]
    device: torch.device
    #: ``signed[b]``: block ``b``'s loadings are unconstrained (semi-NMF, Ding, Li & Jordan 2010);
    #: empty means no block is signed.  ``F`` stays non-negative in every case.
    signed: list[bool] = field(default_factory=list)
    #: the processes of a distributed fit (:class:`peeklens.nmf.distributed.Comm`): ``X`` holds this
    #: process's samples only and :func:`reduce_sum` adds sample-side partial results over processes
    comm: object | None = None
    #: passes over the data so far, in units of "every block read once" (see :func:`count_pass`)
    passes: float = 0.0
    #: ``sum(X_b)`` per block (unweighted; summed over processes) when the first pass computed it
    sums: list[float] | None = None
    #: some block is memory-mapped (``capture(storage=)``): reads cost disk time, so the solvers
    #: fuse products into fewer reads where they can (see :func:`~peeklens.nmf._linalg.range_sketch`)
    on_disk: bool = False
    #: ``(k, seed, X_w Omega)``: the range finder's first product, taken by the checks' read (blocks on
    #: disk, :func:`make_problem`'s ``first_range``); :func:`~peeklens.nmf._linalg.range_sketch` takes it
    first_range: tuple[int, int, torch.Tensor] | None = None

    def __post_init__(self) -> None:
        if not self.signed:
            self.signed = [False] * len(self.X)

    @property
    def any_signed(self) -> bool:
        """Whether some block has unconstrained (signed) loadings."""
        return any(self.signed)

    @property
    def n_samples(self) -> int:
        """Samples of the whole problem (over every process of a distributed fit)."""
        return int(self.comm.n_total) if self.comm is not None else self.n_local

    @property
    def n_local(self) -> int:
        """Samples held here (all of them unless the fit is distributed)."""
        return int(self.X[0].shape[1])

    @property
    def n_features(self) -> list[int]:
        return [int(x.shape[0]) for x in self.X]

    def weighted_norm2(self) -> float:
        """``sum_b w_b ||X_b||^2``: the objective of the all-zero model."""
        return float(sum(w * n for w, n in zip(self.weights, self.norms2)))


@dataclass
class SolverResult:
    F: torch.Tensor
    W: list[torch.Tensor]
    objective: list[float]
    n_iter: int
    converged: bool
    #: ``||X_b - W_b F^T||^2`` per block when the solver knows it from its Gram matrices (else None)
    block_sq: list[float] | None = None


Solver = Callable[..., SolverResult]


def big_mm(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """``A @ B`` for a big ``A`` and a skinny ``B``, fast whatever the memory layout of ``A``.

    Blocks are often transposed views (``X_b`` is a (features x samples) view of a samples-major
    buffer, and ``X_b.T`` the reverse).  MKL's GEMM is several times slower when the big operand
    is a transposed view and the other is skinny (0.22 s against 0.03 s for a 2544 x 10000 block
    and rank 10 here), so such products are computed as ``(B^T A^T)^T`` with ``A^T`` contiguous.
    A memory-mapped ``A`` larger than a band is read a band at a time (:mod:`._stream`).
    """
    if is_mapped(A) and A.numel() * A.element_size() > BAND_BYTES:
        return streamed_mm(A, B)
    if A.is_contiguous() or not A.T.is_contiguous():
        return A @ B
    return (B.T @ A.T).T


def resolve_device(device) -> torch.device:
    """``None`` -> CPU; a string or torch.device otherwise, checked for availability."""
    if device is None:
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            f"device={device!r} was requested but CUDA is not available in this PyTorch "
            f"({torch.__version__}); use device='cpu' or run where a GPU is visible"
        )
    return dev


def is_signed(block) -> bool:
    """Whether a block is marked signed (its loadings unconstrained: semi-NMF)."""
    return bool(getattr(block, "signed", False))


def check_blocks(acts: Activations) -> None:
    """Refuse NaN, Inf and (except in signed blocks) negative values before any work, naming the block."""
    for name, b in acts.blocks.items():
        data = b.data
        if data.size == 0:
            refuse(name, None, is_signed(b), empty=tuple(data.shape))
        lo, _hi = finite_min_max(data)
        refuse(name, lo, is_signed(b))


def refuse(name: str, lo: float | None, signed: bool, empty: tuple | None = None) -> None:
    """The clear error for block ``name`` given its minimum (``None``: a NaN or Inf), if it needs one."""
    if empty is not None:
        raise InputError(f"block {name!r} is empty (shape {empty}); capture at least one sample")
    if lo is None:
        raise InputError(
            f"block {name!r} contains NaN or Inf values; check the model and the data "
            "(e.g. torch.isfinite on the inputs) before factorizing"
        )
    if lo < 0 and not signed:
        raise NonNegativityError(
            f"block {name!r} has negative values (min {lo:.4g}); a non-negative factorization "
            "cannot fit it. Capture with nonneg='shift', 'split' or 'abs', or undo the input "
            "normalization with input_transform="
        )


def scan(t: torch.Tensor, elements: int = 1 << 22, omega: torch.Tensor | None = None):
    """``(min, ||t||^2, sum)`` of a 2-D tensor in ONE read, a band of rows along its contiguous axis at a
    time (memory maps stream); ``min`` is ``None`` when ``t`` holds a NaN or Inf.

    The checks of a fit (NaN, Inf, negative values), the block norms and NNDSVDa's mean all come from
    this one pass.  Norms and sums are float32 along the contiguous axis, added in float64 (as
    :func:`chunked_norm2`).  With ``omega`` (samples x k) the same read also gives ``t @ omega``
    (``t`` a features x samples block: the first product of the range finder), returned fourth.
    """
    product = None
    if omega is not None:
        product = torch.zeros((omega.shape[1], t.shape[0]), dtype=torch.float32)  # (t @ omega)^T
    by_samples = False
    if not t.is_contiguous() and t.T.is_contiguous():
        t, by_samples = t.T, True
    if is_mapped(t):  # a file: large bands, the next one read ahead
        elements = max(elements, BAND_BYTES // t.element_size())
    rows = max(1, elements // max(1, t.shape[1]))
    lo, hi, n2, total = math.inf, -math.inf, 0.0, 0.0
    for i, band in prefetch_bands((i, t[i : i + rows]) for i in range(0, t.shape[0], rows)):
        band = band.float()
        blo, bhi = (float(v) for v in torch.aminmax(band))
        if not (math.isfinite(blo) and math.isfinite(bhi)):
            return (None, math.nan, math.nan) + ((None,) if omega is not None else ())
        lo, hi = min(lo, blo), max(hi, bhi)
        n2 += float(torch.linalg.vector_norm(band, dim=1).double().square().sum())
        total += float(band.sum(dim=1).double().sum())
        if product is None:
            continue
        if by_samples:  # band: samples i.. (samples x features)
            product.addmm_(omega[i : i + band.shape[0]].T, band)
        else:  # band: features i.. (features x samples)
            product[:, i : i + band.shape[0]] = omega.T @ band.T
    if omega is not None:
        return lo, n2, total, product.T
    return lo, n2, total


def finite_min_max(data: np.ndarray, chunk: int = 1 << 24):
    """(min, max) of an array, or (None, None) if it has a non-finite value; chunked for memory maps."""
    if not data.flags.c_contiguous and data.T.flags.c_contiguous:
        data = data.T  # a (features x samples) view of a samples-major buffer: same values
    if data.flags.c_contiguous:
        flat = data.reshape(-1)  # a view, even of a memory map: nothing is loaded at once
    else:  # any other layout: one row band at a time, never a full copy
        rows = max(1, chunk // max(1, data.shape[-1]))
        lo, hi = math.inf, -math.inf
        for start in range(0, data.shape[0], rows):
            part = data[start : start + rows]
            plo, phi = float(part.min()), float(part.max())
            if not (math.isfinite(plo) and math.isfinite(phi)):
                return None, None
            lo, hi = min(lo, plo), max(hi, phi)
        return lo, hi
    lo, hi = math.inf, -math.inf
    for start in range(0, flat.size, chunk):
        part = flat[start : start + chunk]
        plo, phi = float(part.min()), float(part.max())
        if not (math.isfinite(plo) and math.isfinite(phi)):
            return None, None
        lo, hi = min(lo, plo), max(hi, phi)
    return lo, hi


def make_problem(
    acts: Activations,
    weights: Mapping[str, float] | None,
    device,
    comm=None,
    check: bool = False,
    first_range: tuple[int, int] | None = None,
) -> Problem:
    """Move the blocks to ``device`` as float32 tensors (no copy on CPU), reading each once.

    That one read (:func:`scan`, before the move) gives the block norms and sums and, with
    ``check=True``, refuses NaN, Inf and negative values (as :func:`check_blocks`) naming the block.
    With ``comm`` (a distributed fit), ``acts`` holds this process's samples and the block norms
    and sums are added over the processes.

    ``first_range=(k, seed)``: when some block is on disk (memory-mapped), the same read also takes
    the range finder's first product ``X_w Omega`` (``Omega`` the Gaussian test matrix of ``k``
    columns from ``seed``, :func:`~peeklens.nmf._linalg.sample_gaussian`), kept in
    ``problem.first_range`` for :func:`~peeklens.nmf._linalg.range_sketch`: one read fewer.  Blocks in
    memory ignore it (their reads are cheap, and their sketch stays bit for bit as before).
    """
    dev = resolve_device(device)
    weights = dict(weights or {})
    unknown = set(weights) - set(acts.names)
    if unknown:
        raise InputError(f"weights= names unknown blocks {sorted(unknown)}; blocks are {acts.names}")
    ws = []
    for n in acts.names:
        w = float(weights.get(n, 1.0))
        if not (math.isfinite(w) and w >= 0):
            raise InputError(f"weight of block {n!r} must be a finite number >= 0, got {w}")
        ws.append(w)
    if not any(ws):
        raise InputError("every block has weight 0; give at least one block a positive weight")
    X, norms2, sums = [], [], []
    datas = [np.asarray(acts[n].data, dtype=np.float32) for n in acts.names]  # memory maps stay maps
    mapped_blocks = [is_memory_mapped(d) for d in datas]
    on_disk = any(mapped_blocks)
    omega = _first_omega(acts, comm, first_range) if on_disk and first_range is not None else None
    products = []
    for n, data, w, mapped in zip(acts.names, datas, ws, mapped_blocks):
        if check and data.size == 0:
            refuse(n, None, is_signed(acts[n]), empty=tuple(data.shape))
        with warnings.catch_warnings():  # read-only memory maps: the solvers never write to X
            warnings.filterwarnings("ignore", message=".*not writable.*")
            t = torch.from_numpy(data)  # any strides; blocks are often (features x samples) views
        if mapped:  # reads of it (this one too) stream a band at a time, for as long as it lives
            register(t, [t])
        if omega is None:
            lo, n2, total = scan(t)
        else:
            lo, n2, total, prod = scan(t, omega=omega)
            products.append(prod if prod is None or w == 1.0 else prod.mul_(math.sqrt(w)))
        if check:
            refuse(n, lo, is_signed(acts[n]))
        try:
            t = t.to(dev)
        except torch.OutOfMemoryError as e:  # pragma: no cover - needs a GPU
            raise DeviceError(
                f"block {n!r} ({data.nbytes / 2**20:.0f} MiB) does not fit on {dev}: capture fewer samples "
                "(max_samples=), pool the layer (pool=), or factorize on the CPU"
            ) from e
        X.append(t)
        norms2.append(n2)
        sums.append(total)
    if comm is not None:  # one all-reduce: the norms, the sums and how many processes read from disk
        both = comm.sum_floats([*norms2, *sums, float(on_disk)])
        norms2, sums = both[: len(X)], both[len(X) : 2 * len(X)]
        # every process takes the same path (the collectives must match): the disk's only if all read from disk
        on_disk = both[-1] > comm.world_size - 0.5
    signed = [is_signed(acts[n]) for n in acts.names]
    # one pass: the norms, sums and (with check) the checks
    problem = Problem(
        list(acts.names), X, ws, norms2, dev, signed=signed, comm=comm, passes=1.0, sums=sums, on_disk=on_disk
    )
    if on_disk and omega is not None and all(p is not None for p in products):  # (NaN: refused, or by connect())
        Y = reduce_sum(problem, torch.cat(products, dim=0).to(dev))
        problem.first_range = (int(omega.shape[1]), int(first_range[1]), Y)
    return problem


def _first_omega(acts: Activations, comm, first_range: tuple[int, int]) -> torch.Tensor:
    """This process's rows of the range finder's Gaussian test matrix (on the CPU, where the read is)."""
    from ._linalg import gaussian  # the one definition of the test matrix

    k, seed = int(first_range[0]), int(first_range[1])
    n = int(comm.n_total) if comm is not None else acts.n_samples
    k = min(k, n, sum(acts[name].data.shape[0] for name in acts.names))
    return gaussian((n, k), seed, torch.device("cpu"), comm.rows if comm is not None else None)


def is_memory_mapped(data) -> bool:
    """Whether an array's memory is a memory-mapped file (a ``np.memmap`` or a view of one).

    >>> import numpy as np
    >>> is_memory_mapped(np.zeros((2, 3)).T)
    False
    """
    seen = 0
    while data is not None and seen < 64:  # views of views: follow .base to the owner
        if isinstance(data, (np.memmap, mmap.mmap)):
            return True
        data = getattr(data, "base", None)
        seen += 1
    return False


def count_pass(problem: Problem, blocks=None) -> None:
    """Count one read of ``blocks`` (indices; default all) in ``problem.passes``, as a share of the data.

    Every function that reads the blocks calls it, so that ``settings["passes"]`` says how many
    times a fit read its data: the cost that matters for blocks on disk (``storage=``).
    """
    total = sum(problem.n_features)
    read = total if blocks is None else sum(problem.n_features[i] for i in blocks)
    problem.passes += read / max(total, 1)


def reduce_sum(problem: Problem, t: torch.Tensor) -> torch.Tensor:
    """``t`` summed over the processes of a distributed fit, in place (unchanged otherwise)."""
    if problem.comm is not None:
        problem.comm.sum_(t)
    return t


def reduce_floats(problem: Problem, values: list[float]) -> list[float]:
    """Numbers summed over the processes of a distributed fit (unchanged otherwise)."""
    return problem.comm.sum_floats(values) if problem.comm is not None else list(values)


def products(
    problem: Problem, F: torch.Tensor, Ft: torch.Tensor | None = None
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """``([X_b F for every block], F^T F)``: the products of one pass over the data.

    ``Ft`` (optional), a contiguous ``F^T``, computes the Gram matrix as ``Ft @ Ft^T``.

    In a distributed fit both are sums over the processes' samples, reduced together in one
    all-reduce of ``(total features + rank) x rank`` numbers.
    """
    r = F.shape[1]
    M = sum(problem.n_features)
    gram = F.T @ F if Ft is None else Ft @ Ft.T
    count_pass(problem)
    if problem.comm is None:
        return [big_mm(Xb, F) for Xb in problem.X], gram
    buf = torch.empty((M + r, r), dtype=F.dtype, device=F.device)
    buf[:r] = gram
    start = r
    for Xb in problem.X:
        m = Xb.shape[0]
        buf[start : start + m] = big_mm(Xb, F)
        start += m
    reduce_sum(problem, buf)
    out, start = [], r
    for Xb in problem.X:
        m = Xb.shape[0]
        out.append(buf[start : start + m])
        start += m
    return out, buf[:r]


def chunked_norm2(t: torch.Tensor, elements: int = 1 << 22) -> float:
    """``||t||^2`` in float64, a band of rows at a time along the contiguous axis (memory maps stream)."""
    if not t.is_contiguous() and t.T.is_contiguous():
        t = t.T
    rows = max(1, elements // max(1, t.shape[1]))
    return float(sum(_norm2(t[i : i + rows]) for i in range(0, t.shape[0], rows)))


def _norm2(t: torch.Tensor) -> float:
    """``||t||^2``: float32 norms along the contiguous axis, their squares added in float64.

    About 20x faster than a float64 reduction of the whole tensor and within ~1e-7 of it (each
    float32 norm covers one row of the memory layout).
    """
    return float(torch.linalg.vector_norm(t.float(), dim=contiguous_axis(t)).double().square().sum())


def contiguous_axis(t: torch.Tensor) -> int:
    """The axis along which ``t``'s elements are adjacent in memory: 0 for a transposed 2-D view, else -1.

    Reductions along it (one float32 partial result per row of the memory layout) are fast and,
    added in float64 afterwards, within ~1e-7 of a float64 reduction of the whole tensor.
    """
    return 0 if (t.dim() == 2 and t.stride(0) == 1 and t.stride(1) != 1) else -1


def random_init(problem: Problem, rank: int, seed: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The paper's initialization: every factor uniform in [0, 1), from ``seed``.

    Drawn with NumPy on the CPU (F first, then each block in order) so that
    the starting point is the same on every device.
    """
    rng = np.random.default_rng(seed)
    F = draw_rows(rng, problem, rank)
    W = [rng.random((m, rank), dtype=np.float32) for m in problem.n_features]
    return _to(F, problem.device), [_to(w, problem.device) for w in W]


def draw_rows(rng: np.random.Generator, problem: Problem, cols: int, chunk: int = 1 << 20) -> np.ndarray:
    """This process's rows of ``rng.random((samples, cols), float32)`` drawn for the whole problem.

    In a distributed fit every process draws the same numbers for all samples (in chunks, keeping
    only its rows), so the start equals the single-process one and ``rng`` ends in the same state.
    """
    comm = problem.comm
    if comm is None:
        return rng.random((problem.n_samples, cols), dtype=np.float32)
    out = np.empty((comm.n_local, cols), dtype=np.float32)
    lo, hi = comm.offset, comm.offset + comm.n_local
    step = max(1, chunk // max(cols, 1))
    for start in range(0, comm.n_total, step):
        stop = min(start + step, comm.n_total)
        part = rng.random((stop - start, cols), dtype=np.float32)
        a, b = max(start, lo), min(stop, hi)
        if a < b:
            out[a - lo : b - lo] = part[a - start : b - start]
    return out


def explicit_init(problem: Problem, rank: int, init: Mapping[str, np.ndarray]):
    """Starting factors given by the user: ``{"F": (samples x rank), name: (features x rank), ...}``.

    In a distributed fit ``F`` may be given for all samples (each process keeps its rows) or for
    this process's samples only.
    """
    missing = [k for k in ["F", *problem.names] if k not in init]
    if missing:
        raise InputError(f"init= is missing {missing}; give 'F' and one matrix per block name {problem.names}")
    extra = set(init) - {"F", *problem.names}
    if extra:
        raise InputError(f"init= has unknown keys {sorted(extra)}; expected 'F' and {problem.names}")
    expect = {"F": (problem.n_samples, rank), **{n: (m, rank) for n, m in zip(problem.names, problem.n_features)}}
    signed = {"F": False, **dict(zip(problem.names, problem.signed))}
    comm = problem.comm
    if comm is not None and np.shape(init["F"]) == (comm.n_total, rank):
        init = {**init, "F": np.asarray(init["F"])[comm.rows]}
        expect["F"] = (comm.n_local, rank)
    elif comm is not None:
        expect["F"] = (comm.n_local, rank)
    out = {}
    for k, shape in expect.items():
        a = np.asarray(init[k] if not isinstance(init[k], torch.Tensor) else init[k].detach().cpu().numpy())
        if a.shape != shape:
            raise InputError(f"init[{k!r}] has shape {a.shape}, expected {shape}")
        if not np.all(np.isfinite(a)):
            raise InputError(f"init[{k!r}] must be finite")
        if not signed[k] and a.min() < 0:
            raise InputError(f"init[{k!r}] must be finite and non-negative (min {float(a.min()):.4g})")
        out[k] = _to(np.array(a, dtype=np.float32), problem.device)
    return out["F"], [out[n] for n in problem.names]


def _to(a: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(device)


def block_sq_from_grams(
    problem: Problem, W: list[torch.Tensor], XF: list[torch.Tensor], FtF: torch.Tensor
) -> list[float]:
    """``||X_b - W_b F^T||^2`` for every block (unweighted) from small matrices only.

    Uses ``||X_b||^2 - 2 <W_b, X_b F> + <W_b^T W_b, F^T F>`` with ``XF[b] = X_b F`` (features_b x
    rank, any layout) already computed by the solver, so it costs no pass over the data.
    """
    out = []
    FtFd = FtF.double()
    for n2, Wb, XFb in zip(problem.norms2, W, XF):
        cross = float(torch.sum(Wb.double() * XFb.double()))
        quad = float(torch.sum((Wb.T @ Wb).double() * FtFd))
        out.append(max(n2 - 2.0 * cross + quad, 0.0))
    return out


def objective_from_grams(problem: Problem, W: list[torch.Tensor], XF: list[torch.Tensor], FtF: torch.Tensor) -> float:
    """``sum_b w_b ||X_b - W_b F^T||^2`` from small matrices only (see :func:`block_sq_from_grams`)."""
    return weighted_sum(problem, block_sq_from_grams(problem, W, XF, FtF))


def weighted_sum(problem: Problem, block_sq: list[float]) -> float:
    """``sum_b w_b block_sq[b]``."""
    return float(sum(w * sq for w, sq in zip(problem.weights, block_sq) if w))


def block_errors(
    problem: Problem, F: torch.Tensor, W: list[torch.Tensor], cols: int = 8192, known: list[float] | None = None
) -> list[float]:
    """Squared residual ``||X_b - W_b F^T||^2`` per block.

    ``known`` (from a solver's Gram matrices, ``||X_b||^2 - 2 <W_b, X_b F> + <W_b^T W_b, F^T F>``)
    is used where it is trustworthy: at least 1 % of ``||X_b||^2``, so that the cancellation in
    that formula costs at most ~1e-4 of relative accuracy.  Other blocks are computed exactly, in
    column chunks with float64 sums (one pass over the block).
    """
    out: list[float] = []
    passes = []  # blocks computed by a pass (summed over processes in a distributed fit)
    for i, (Xb, Wb) in enumerate(zip(problem.X, W)):
        if known is not None and known[i] is not None and known[i] >= GRAM_TRUST * problem.norms2[i]:
            out.append(float(known[i]))
            continue
        passes.append(i)
        s = 0.0
        step = max(1, min(cols, (1 << 22) // max(1, Xb.shape[0])))  # bounded memory for tall blocks
        for j, band in prefetch_bands((j, Xb[:, j : j + step]) for j in range(0, Xb.shape[1], step)):
            R = band - Wb @ F[j : j + step].T
            s += _norm2(R)
        out.append(s)
    if passes:
        count_pass(problem, passes)
    if passes and problem.comm is not None:
        for i, v in zip(passes, reduce_floats(problem, [out[i] for i in passes])):
            out[i] = v
    return out


#: The smallest ``error / ||X_b||^2`` for which a Gram-matrix error is used instead of a pass.
GRAM_TRUST = 1e-2


def converged(objective: list[float], tol: float) -> bool:
    """Relative change of the objective below ``tol`` over the last iteration."""
    if tol <= 0 or len(objective) < 2:
        return False
    prev, cur = objective[-2], objective[-1]
    return abs(prev - cur) <= tol * max(abs(prev), 1e-30)


def iterate(step: Callable[[], float], max_iter: int, tol: float, callback=None) -> tuple[list[float], int, bool]:
    """Call ``step()`` (one iteration, returning the objective) until :func:`converged` or ``max_iter``:
    ``(objective per iteration, iterations run, converged)``; ``callback(i, objective)`` after each."""
    objective: list[float] = []
    it = 0
    for it in range(1, max_iter + 1):
        objective.append(step())
        if callback is not None:
            callback(it, objective[-1])
        if converged(objective, tol):
            return objective, it, True
    return objective, it, False
