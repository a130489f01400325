"""Coupled non-negative factorization of activation blocks, and rank sweeps.

``factorize`` validates the input, moves the blocks to a device, builds the
starting factors and hands them to a solver from :data:`SOLVERS`; each solver
is a small module with a ``solve`` function (see ``_problem.py`` for its
contract).  ``sweep`` calls ``factorize`` once per rank.
"""

from __future__ import annotations

import inspect
import math
import time
import warnings
from typing import Callable, Iterable, Mapping

import numpy as np
import torch
from tqdm.auto import tqdm

from .._version import __version__
from ..activations import Activations
from ..errors import DeviceError, InputError, PeeklensError
from ..results import Factorization, Sweep
from . import compressed, hals, mu
from ._init import extend_factors, nndsvda_init
from ._linalg import range_sketch
from ._problem import (
    Problem,
    SolverResult,
    block_errors,
    check_blocks,
    explicit_init,
    make_problem,
    random_init,
)

__all__ = ["factorize", "sweep", "SOLVERS", "INITS", "register_solver", "Problem", "SolverResult"]

#: Solvers by name. ``"mu"`` is the paper's algorithm; ``"hals"`` hierarchical ALS;
#: ``"compressed"`` HALS on a randomized sketch of the data, finished on the real data.
SOLVERS: dict[str, Callable[..., SolverResult]] = {
    "mu": mu.solve,
    "hals": hals.solve,
    "compressed": compressed.solve,
}


def _nndsvda(problem: Problem, rank: int, seed: int):
    return nndsvda_init(problem, rank, seed, sketch=problem.extra.get("sketch"))


#: Initializations by name: ``f(problem, rank, seed) -> (F, [W_b])``.
INITS: dict[str, Callable] = {"random": random_init, "nndsvda": _nndsvda}

#: The init used when ``init=None``, per solver (others: ``"random"``).
DEFAULT_INIT: dict[str, str] = {"mu": "random", "hals": "nndsvda", "compressed": "nndsvda"}

DEFAULT_SOLVER = "compressed"
DEFAULT_MAX_ITER = 200
DEFAULT_TOL = 1e-4
DEFAULT_EPS = 1e-9


def register_solver(name: str, solve: Callable[..., SolverResult]) -> None:
    """Make ``solve`` available as ``factorize(..., solver=name)``."""
    SOLVERS[name] = solve


def _check_rank(rank, acts: Activations) -> int:
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)):
        raise InputError(f"rank must be a positive integer, got {rank!r}")
    rank = int(rank)
    limit = min(acts.n_samples, acts.n_features)
    if rank < 1:
        raise InputError(f"rank must be a positive integer, got {rank}")
    if rank > limit:
        raise InputError(
            f"rank {rank} is larger than the smallest dimension of the data "
            f"({acts.n_samples} samples x {acts.n_features} features); use a rank <= {limit}"
        )
    return rank


def factorize(
    acts: Activations,
    rank: int,
    *,
    solver: str = DEFAULT_SOLVER,
    max_iter: int = DEFAULT_MAX_ITER,
    tol: float = DEFAULT_TOL,
    seed: int = 0,
    device: str | torch.device | None = None,
    weights: Mapping[str, float] | None = None,
    init: str | Mapping[str, np.ndarray] | None = None,
    eps: float = DEFAULT_EPS,
    progress: bool = False,
    blocks: Iterable[str] | None = None,
    solver_options: Mapping[str, object] | None = None,
    _context: dict | None = None,
) -> Factorization:
    """Fit the paper's coupled non-negative factorization to every block of ``acts``.

    Minimizes ``sum_b w_b ||X_b - W_b F^T||_F^2`` over ``F >= 0`` (samples x
    rank, shared by all blocks) and ``W_b >= 0`` (features_b x rank): the
    paper's ``P_i`` for input channels and ``O_j`` for layers.

    Parameters
    ----------
    acts : Activations
        Non-negative blocks of shape (features x samples), e.g. from :func:`peeklens.capture`.
    rank : int
        Number of factors, at most ``min(samples, total features)``.
    solver : {"compressed", "hals", "mu"}, default "compressed"
        A name in :data:`SOLVERS`:

        - ``"compressed"`` (default; the fastest to a given objective in benchmarks/bench_solvers.py): HALS on a
          randomized sketch of the data (Halko et al. 2011; compressed NMF as in Tepper & Sapiro
          2016) with ``rank + 20`` columns, then up to 5 refinement rounds: each makes an exact
          pass over the data, updates the loadings exactly, records the exact objective, and
          widens the sketch by the current factors so that the next compressed iterations follow
          the real objective, not the sketch's. The final objective and the reported errors are
          those of the real data. With the default init it starts from NNDSVDa and from the
          paper's random start on the sketch and keeps the lower (``settings["start_kept"]``):
          a poor local minimum is less likely. Falls back to plain HALS when the sketch would
          not be much smaller than the data.
        - ``"hals"``: hierarchical alternating least squares (Cichocki & Phan 2009), the family
          of scikit-learn's ``cd`` solver; never increases the objective.
        - ``"mu"``: the paper's multiplicative updates, exactly (with ``init="random"``).
    max_iter : int, default 200
        Maximum number of iterations (for ``"compressed"``: a cap on each of its compressed
        phases, see ``solver_options``).
    tol : float, default 1e-4
        Stop when the relative change of the objective over one iteration is below ``tol``; 0 runs
        all ``max_iter`` iterations. The objective is computed from small Gram matrices, without
        forming the residual.
    seed : int, default 0
        Seed of the random initialization and of the random sketches; on the CPU the same seed
        gives identical results.
    device : str or torch.device, optional
        Where to compute (``"cpu"``, ``"cuda"``); the default is the CPU. Every solver runs on
        CUDA.
    weights : dict of str to float, optional
        Per-block weights ``w_b`` (default 1 for every block, as in the paper).
    init : "random", "nndsvda", dict, or None
        ``"random"`` (the paper's: all factors uniform in [0, 1) from ``seed``); ``"nndsvda"``
        (NNDSVD of a randomized SVD of the stacked weighted matrix, zeros filled with its mean);
        or explicit starting factors ``{"F": (samples x rank), name: (features x rank) for every
        block}``. ``None`` picks the solver's default (:data:`DEFAULT_INIT`): ``"random"`` for
        ``"mu"``, ``"nndsvda"`` for the others.
    eps : float, default 1e-9
        Added to every denominator of the multiplicative updates (``"mu"`` only).
    progress : bool, default False
        Show a progress bar over iterations.
    blocks : list of str, optional
        Factorize only these blocks.
    solver_options : dict, optional
        Extra options of the solver. ``"compressed"`` takes ``oversample`` (20) and
        ``power_iter`` (2) of the sketch; ``refine`` (5), the most refinement rounds (each two
        passes over the data; they stop early when the exact objective changes by less than
        ``tol``); ``start_iter`` (20) and ``round_iter`` (20), the compressed iterations of the
        start and of each round; ``start_tol`` (``10 * tol``) and ``round_tol`` (``tol / 10``);
        ``exact_iter`` (0), plain HALS iterations at the end; ``extrapolate`` (True) and
        ``also_random``. ``"hals"`` takes ``max_inner`` (row sweeps per pass over the data;
        chosen from the sizes by default).

    Returns
    -------
    Factorization
        ``settings`` records the solver, the init and, for ``"compressed"``, what ran
        (``compressed_iter``, ``refinements``, ``exact_iter``) and which entries of ``objective``
        are exact (``exact_steps``, 1-based; the others are the sketch's estimates). The last
        entry of ``objective`` is always exact; ``went_back`` is set when the last round raised
        the exact objective and the fit returned to the best exact point.

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> rng = np.random.default_rng(0)
    >>> acts = pl.Activations.from_arrays({"input:0": rng.random((20, 50)), "relu": rng.random((8, 50))})
    >>> fit = pl.factorize(acts, rank=3, max_iter=50)
    >>> fit.F.shape, fit.loadings["relu"].shape
    ((50, 3), (8, 3))
    >>> bool(fit.objective[-1] <= fit.objective[0])
    True

    The paper's algorithm, and HALS from the paper's random start:

    >>> paper = pl.factorize(acts, rank=3, solver="mu", max_iter=50)
    >>> paper.settings["init"]
    'random'
    >>> fast = pl.factorize(acts, rank=3, solver="hals", init="random", max_iter=50)
    >>> bool(fast.objective[-1] <= paper.objective[-1])
    True
    """
    if not isinstance(acts, Activations):
        raise InputError(
            f"factorize expects peeklens.Activations (from pl.capture or Activations.from_arrays), "
            f"got {type(acts).__name__}"
        )
    if blocks is not None:
        acts = acts.select(blocks)
    rank = _check_rank(rank, acts)
    if solver not in SOLVERS:
        raise InputError(f"unknown solver {solver!r}; choose one of {sorted(SOLVERS)}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise InputError(f"max_iter must be a positive integer, got {max_iter!r}")
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol >= 0):
        raise InputError(f"tol must be a finite number >= 0, got {tol!r}")
    options = dict(solver_options or {})
    solve = SOLVERS[solver]
    accepted = inspect.signature(solve).parameters
    unknown = sorted(k for k in options if k not in accepted or k in _RESERVED)
    if unknown:
        allowed = sorted(k for k in accepted if k not in _RESERVED and accepted[k].kind == inspect.Parameter.KEYWORD_ONLY)
        raise InputError(f"solver {solver!r} has no option(s) {unknown}; its options are {allowed}")

    ctx = _context if _context is not None else {}
    problem = ctx.get("problem")
    if problem is None:
        check_blocks(acts)
        problem = make_problem(acts, weights, device)
        if _context is not None:
            ctx["problem"] = problem
    t0 = time.perf_counter()
    wants_sketch = solver == "compressed" or init == "nndsvda" or (init is None and DEFAULT_INIT.get(solver) == "nndsvda")
    if wants_sketch and "sketch" not in options:
        _ensure_sketch(problem, max(rank, ctx.get("max_rank", rank)), seed, options, solver)
    warm_from = None
    if init is None and ctx.get("warm_start") and ctx.get("fits"):
        below = [r for r in ctx["fits"] if r < rank]
        if below:
            warm_from = max(below)
    if warm_from is not None:
        F0, W0 = ctx["fits"][warm_from]
        F, W = extend_factors(problem, F0.clone(), [w.clone() for w in W0], rank - warm_from, seed=seed,
                              sketch=problem.extra.get("sketch"))
        init_desc = f"warm start from rank {warm_from}"
    elif init is None or isinstance(init, str):
        name = init or DEFAULT_INIT.get(solver, "random")
        if name not in INITS:
            raise InputError(f"unknown init {name!r}; choose one of {sorted(INITS)} or pass a dict of factors")
        F, W = INITS[name](problem, rank, seed)
        init_desc = name
    else:
        F, W = explicit_init(problem, rank, init)
        init_desc = "explicit"

    bar = tqdm(total=max_iter, desc=f"rank {rank}", leave=False, disable=not progress)

    def callback(i: int, obj: float) -> None:
        bar.update(1)
        if i % 10 == 0:
            bar.set_postfix(objective=f"{obj:.4g}", refresh=False)

    if solver == "compressed" and init is None and warm_from is None:
        options.setdefault("also_random", True)  # two cheap starts on the sketch; keeps the better
    info: dict = {}
    if "seed" in accepted:
        options["seed"] = int(seed)
    if "info" in accepted:
        options["info"] = info
    if "sketch" in accepted and "sketch" not in options and problem.extra.get("sketch") is not None:
        options["sketch"] = problem.extra["sketch"]
    try:
        res = solve(problem, F, W, max_iter=int(max_iter), tol=float(tol), eps=float(eps), callback=callback,
                    **options)
    except torch.OutOfMemoryError as e:  # raised by the CUDA allocator (a RuntimeError subclass)
        raise DeviceError(
            f"out of memory on {problem.device} while factorizing {sum(problem.n_features)} features x "
            f"{problem.n_samples} samples at rank {rank}: use a smaller rank, fewer blocks (blocks=[...]), "
            "fewer samples (acts.subset or capture(max_samples=)), pooled layers (capture(pool=2)), "
            "or device='cpu'"
        ) from e
    finally:
        bar.close()
    if problem.device.type == "cuda":  # pragma: no cover - needs a GPU
        torch.cuda.synchronize(problem.device)
    seconds = time.perf_counter() - t0
    if _context is not None and ctx.get("warm_start"):
        ctx.setdefault("fits", {})[rank] = (res.F, res.W)
    settings = dict(
        solver=solver, rank=rank, max_iter=int(max_iter), tol=float(tol), seed=int(seed), eps=float(eps),
        device=str(problem.device), weights=dict(zip(problem.names, problem.weights)), init=init_desc,
        peeklens=__version__, torch=torch.__version__,
    )
    settings.update({k: v for k, v in options.items() if isinstance(v, (int, float, str, bool))  and k != "seed"})
    settings.update(info)
    return _result(acts, problem, res, rank, seconds, settings)


_RESERVED = {"problem", "F", "W", "max_iter", "tol", "eps", "callback", "seed", "info"}


def _ensure_sketch(problem: Problem, rank: int, seed: int, options: dict, solver: str) -> None:
    """Put a randomized range sketch wide enough for ``rank`` in ``problem.extra`` (shared by a sweep)."""
    oversample = int(options.get("oversample", compressed.DEFAULT_OVERSAMPLE))
    power_iter = int(options.get("power_iter", compressed.DEFAULT_POWER_ITER))
    k = compressed.sketch_size(problem, rank, oversample)
    have = problem.extra.get("sketch")
    if have is not None and have.k >= min(k, sum(problem.n_features), problem.n_samples) and have.seed == seed \
            and have.power_iter == power_iter:
        return
    if solver == "compressed" and not compressed.worth_compressing(problem, k):
        return  # too small to compress: plain HALS, and nndsvda draws its own SVD
    problem.extra["sketch"] = range_sketch(problem, k, power_iter=power_iter, seed=seed)


def _result(acts: Activations, problem: Problem, res: SolverResult, rank: int, seconds: float, settings: dict):
    sq = block_errors(problem, res.F, res.W, known=res.block_sq)
    errors = {
        n: (math.sqrt(s / n2) if n2 > 0 else 0.0) for n, s, n2 in zip(problem.names, sq, problem.norms2)
    }
    total_entries = sum(problem.n_features) * problem.n_samples
    rmse = math.sqrt(sum(sq) / total_entries)
    F = res.F.detach().cpu().numpy()
    loadings = {n: Wb.detach().cpu().numpy() for n, Wb in zip(problem.names, res.W)}
    return Factorization(
        F=F,
        loadings=loadings,
        errors=errors,
        rmse=rmse,
        objective=np.asarray(res.objective, dtype=np.float64),
        n_iter=int(res.n_iter),
        converged=bool(res.converged),
        seconds=float(seconds),
        settings=settings,
        blocks=acts.info(),
        labels=acts.labels,
        inputs={n: acts[n].data for n in acts.input_names} or None,
    )


def sweep(
    acts: Activations,
    ranks: Iterable[int] = range(10, 51, 10),
    *,
    progress: bool = True,
    warm_start: bool | None = None,
    **factorize_kwargs,
) -> Sweep:
    """Factorize ``acts`` at every rank in ``ranks``.

    The data is moved to the device once for the whole sweep and, for the ``"compressed"`` solver
    and the ``"nndsvda"`` init, one randomized sketch wide enough for the largest rank is shared
    by every rank.

    Parameters
    ----------
    acts : Activations
        The blocks to factorize.
    ranks : iterable of int, default 10, 20, 30, 40, 50 (the paper's)
        Ranks to fit, in the order given.
    progress : bool, default True
        A progress bar over ranks.
    warm_start : bool, optional
        Start each rank from the largest smaller rank already fitted: its factors plus new
        columns from an NNDSVDa of what it leaves unexplained (the residual). Only when ``init``
        is not given. Default: on for the fast solvers (``"compressed"``, ``"hals"``), where it
        reaches a given objective sooner; off for ``"mu"``, which stays the paper's algorithm
        (every rank from the paper's random start). ``settings["init"]`` records it.
    **factorize_kwargs
        Passed to :func:`factorize` (``solver``, ``max_iter``, ``tol``, ``seed``, ``device``, ...).

    Returns
    -------
    Sweep
        Maps rank to Factorization.  If interrupted (Ctrl-C / KeyboardInterrupt), the ranks already
        finished are returned with ``interrupted=True`` and a warning, instead of being lost.

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> acts = pl.Activations.from_arrays({"a": np.random.default_rng(0).random((30, 40))})
    >>> s = pl.sweep(acts, ranks=[2, 4], max_iter=30, progress=False)
    >>> s.ranks
    [2, 4]
    >>> bool(s[4].rmse <= s[2].rmse * 1.05)
    True
    >>> s[4].settings["init"]
    'warm start from rank 2'
    >>> pl.sweep(acts, ranks=[2, 4], solver="mu", max_iter=30, progress=False)[4].settings["init"]
    'random'
    """
    ranks = list(ranks) if not isinstance(ranks, (int, np.integer)) else [ranks]
    bad = [r for r in ranks if isinstance(r, bool) or not isinstance(r, (int, np.integer))]
    if bad:
        raise InputError(f"ranks must be positive integers, got {bad!r} in {ranks!r}")
    ranks = [int(r) for r in ranks]
    if not ranks:
        raise InputError("ranks is empty; give at least one rank, e.g. ranks=range(10, 51, 10)")
    if len(set(ranks)) != len(ranks):
        raise InputError(f"ranks has duplicates: {ranks}")
    blocks = factorize_kwargs.get("blocks")
    checked = acts.select(blocks) if blocks is not None else acts
    for r in ranks:  # fail before the first fit, not after hours
        _check_rank(r, checked)
    solver = factorize_kwargs.get("solver", DEFAULT_SOLVER)
    if warm_start is None:
        warm_start = solver != "mu"
    context = {"warm_start": bool(warm_start) and factorize_kwargs.get("init") is None, "max_rank": max(ranks)}
    fits: dict[int, Factorization] = {}
    interrupted = False
    bar = tqdm(ranks, desc="ranks", disable=not progress)
    try:
        for r in bar:
            bar.set_postfix(rank=r)
            fits[r] = factorize(acts, r, _context=context, **factorize_kwargs)
    except KeyboardInterrupt:
        interrupted = True
        warnings.warn(
            f"sweep interrupted: keeping the {len(fits)} finished rank(s) {sorted(fits)} of {ranks}",
            stacklevel=2,
        )
    except (PeeklensError, MemoryError) as e:  # e.g. out of memory at a high rank: keep what finished
        e.partial = Sweep(fits, interrupted=True, requested=ranks)  # type: ignore[attr-defined]
        if fits:
            e.args = (f"{e.args[0] if e.args else e} [the {len(fits)} finished rank(s) {sorted(fits)} are "
                      "kept in this error's .partial Sweep]",) + tuple(e.args[1:])
        raise
    finally:
        bar.close()
        context.clear()  # frees the device copy of the data and the sketch
    settings = {k: v for k, v in factorize_kwargs.items() if isinstance(v, (int, float, str, bool, type(None)))}
    settings["warm_start"] = bool(warm_start)
    return Sweep(fits, interrupted=interrupted, requested=ranks, meta={"settings": settings})
