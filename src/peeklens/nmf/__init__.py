"""Coupled non-negative factorization of activation blocks, and rank sweeps.

``factorize`` checks its input and fits one rank; ``sweep`` fits several, sharing the data on
the device, one randomized sketch and warm starts between ranks (see ``_fit.py``: a
:class:`~peeklens.nmf._fit.SweepState` passed explicitly to one fit per rank).  Each solver is a
public function with explicit arguments in its own module (``mu.solve``, ``hals.solve``,
``compressed.solve``), called by name; ``_problem.py`` holds what they share.

>>> from peeklens import nmf
>>> nmf.SOLVERS
('compressed', 'hals', 'mu')
>>> sorted(nmf.SOLVER_OPTIONS["hals"])
['max_inner']
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import replace

import numpy as np
import torch

from .._validation import check_keys, one_of, positive_ints
from ..activations import Activations
from ..errors import InputError
from ..results import Factorization, Sweep
from . import batched, compressed, distributed, hals, mu
from ._fit import (
    DEFAULT_EPS,
    DEFAULT_INIT,
    DEFAULT_MAX_ITER,
    DEFAULT_SOLVER,
    DEFAULT_TOL,
    INITS,
    SweepState,
    check_activations,
    check_rank,
    fit_ranks_batched,
    make_config,
    run_ranks,
)
from ._fit import fit_rank as _fit
from ._options import SOLVER_OPTIONS, SOLVERS
from ._problem import Problem, SolverResult, check_blocks, make_problem
from .tensor import factorize_tensor, sweep_tensor

__all__ = [
    "factorize",
    "sweep",
    "SOLVERS",
    "SOLVER_OPTIONS",
    "INITS",
    "DEFAULT_INIT",
    "DEFAULT_SOLVER",
    "Problem",
    "SolverResult",
    "make_problem",
    "mu",
    "hals",
    "compressed",
    "distributed",
    "batched",
]

#: The options of :func:`factorize` that :func:`sweep` passes on.
FACTORIZE_OPTIONS = (
    "solver",
    "max_iter",
    "tol",
    "seed",
    "device",
    "weights",
    "init",
    "eps",
    "blocks",
    "solver_options",
)


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
    distributed: bool = False,
    model: str = "matrix",
) -> Factorization:
    """Fit the paper's coupled non-negative factorization to every block of ``acts``.

    Minimizes ``sum_b w_b ||X_b - W_b F^T||_F^2`` over ``F >= 0`` (samples x
    rank, shared by all blocks) and ``W_b >= 0`` (features_b x rank): the
    paper's ``P_i`` for input channels and ``O_j`` for layers.

    **Signed blocks (semi-NMF).** A block marked signed (``Block.signed``, e.g. from
    ``Activations.from_arrays(..., signed=[names])``) may hold negative values; its loadings
    ``W_b`` are unconstrained while ``F`` stays non-negative (semi-NMF, Ding, Li & Jordan 2010).
    Every solver supports it: ``"mu"`` with Ding et al.'s exact updates (``W_b`` by least squares
    given ``F``, ``F`` by their multiplicative rule on the positive and negative parts of
    ``sum_b w_b X_b^T W_b`` and ``sum_b w_b W_b^T W_b``; non-negative blocks keep the paper's
    rule), ``"hals"`` and ``"compressed"`` with least-squares loadings for signed blocks and
    HALS rows for ``F``.  ``settings["signed"]`` lists the signed blocks.  Signed blocks are
    still refused when they hold NaN or Inf.

    Parameters
    ----------
    acts : Activations
        Non-negative (or signed, see above) blocks of shape (features x samples), e.g. from
        :func:`peeklens.capture`.
    rank : int
        Number of factors, at most ``min(samples, total features)``.
    solver : {"compressed", "hals", "mu"}, default "compressed"
        A name in :data:`SOLVERS`, dispatched explicitly:

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
    model : {"matrix", "tensor"}, default "matrix"
        ``"matrix"``: the paper's model, every block a (features x samples) matrix. ``"tensor"``: the
        tensor lens - every layer block of per-sample shape (C, H, W) a non-negative CP model
        (channels x positions x samples) sharing ``F`` with the other blocks; ``loadings[name]`` is then
        (channels x rank) and ``spatial[name]`` (H*W x rank). See :func:`peeklens.nmf.tensor.factorize_tensor`.
    solver_options : dict, optional
        Extra options of the solver. ``"compressed"`` takes ``oversample`` (20) and
        ``power_iter`` (2) of the sketch; ``refine`` (5), the most refinement rounds (each two
        passes over the data; they stop early when the exact objective changes by less than
        ``tol``, or when further rounds stop paying: the last one gained less than ``stop``,
        relative, default ``10 * tol``, or the shrinking gains of the last two promise less
        than that in all); ``fused`` (on for blocks on disk, off in memory): one pass per round
        instead of two (blocks on disk also take the sketch's first product with the checks and
        each power iteration in one read: the default reads them about 7 times in all,
        ``{"power_iter": 1}`` about 6, at an objective 0.01-0.2 % higher, see docs/scale.md);
        ``start_iter`` (20) and
        ``round_iter`` (20; 60 when a block is signed), the compressed iterations of the start
        and of each round; ``start_tol`` (``10 * tol``) and ``round_tol`` (``tol / 10``);
        ``exact_iter`` (0), plain HALS iterations at the end; ``extrapolate`` (True) and
        ``also_random``. ``"hals"`` takes ``max_inner`` (row sweeps per pass over the data;
        chosen from the sizes by default). ``"mu"`` takes none. :data:`SOLVER_OPTIONS` lists
        them; any other name is refused with the list of valid ones.
    distributed : bool, default False
        Factorize the union of the samples of every process of the initialized
        ``torch.distributed`` process group (e.g. under ``torchrun``), ``acts`` being this
        process's share (same blocks and features everywhere, in rank order).  Call it on every
        process with the same arguments.  ``F`` holds this process's rows; only small matrices
        travel between processes.  Equals the single-process fit of the concatenated samples
        (same seed and init) to float tolerance.  ``settings["distributed"]`` records the world
        size and rank; :func:`peeklens.save` gathers ``F`` (call it on every process; rank 0
        writes).  See :mod:`peeklens.nmf.distributed`.

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

    A signed block (semi-NMF): its loadings take both signs, ``F`` stays non-negative:

    >>> signed = pl.Activations.from_arrays({"input:0": rng.random((20, 50)), "tanh": rng.standard_normal((8, 50))})
    >>> signed["tanh"].signed = True
    >>> semi = pl.factorize(signed, rank=3, max_iter=50)
    >>> bool((semi.F >= 0).all()), bool((semi.loadings["tanh"] < 0).any()), semi.settings["signed"]
    (True, True, ['tanh'])
    """
    if one_of(model, "model", MODELS) == "tensor":
        _refuse_distributed_tensor(distributed)
        _check_tensor_options(solver=solver, eps=eps, solver_options=solver_options)
        return factorize_tensor(
            acts,
            rank,
            max_iter=max_iter,
            tol=tol,
            seed=seed,
            device=device,
            weights=weights,
            init=init,
            progress=progress,
            blocks=blocks,
        )
    acts = check_activations(acts, blocks)
    if distributed:
        cfg, comm = _connect(acts, [rank], weights, solver, max_iter, tol, seed, eps, init, progress, solver_options)
        rank = check_rank(rank, acts, comm.n_total)
    else:
        rank = check_rank(rank, acts)
        cfg, comm = make_config(solver, max_iter, tol, seed, eps, init, progress, solver_options), None
    state = SweepState(acts, weights, device, max_rank=rank, comm=comm)
    try:
        with comm.deferred_interrupts() if comm is not None else _nothing():
            return _fit(state, rank, cfg)
    finally:
        state.release()


def _check_batched(model: str, distributed: bool, warm_start: bool | None, kwargs: dict) -> dict:
    """``sweep``'s options for ``batched=True`` (solver ``"hals"`` unless given), or a clear error."""
    if model != "matrix":
        raise InputError(f"batched=True solves the matrix model only (got model={model!r}); use model='matrix'")
    if distributed:
        raise InputError("batched=True does not run distributed yet; use distributed=True with batched=False")
    if warm_start:
        raise InputError(
            "batched=True solves every rank at once, so no rank can start from a smaller one: drop warm_start=True, "
            "or use batched=False"
        )
    solver = kwargs.get("solver", "hals")
    if solver != "hals":
        raise InputError(
            f"batched=True runs exact HALS on every rank at once; got solver={solver!r}. Use solver='hals' "
            "(or leave solver out), or batched=False"
        )
    return {**kwargs, "solver": "hals"}


def _refuse_distributed_tensor(distributed: bool) -> None:
    if distributed:
        raise InputError(
            "model='tensor' does not run distributed (distributed=True); use model='matrix', or factorize the "
            "tensor model in one process"
        )


@contextlib.contextmanager
def _nothing():
    yield


def _connect(acts, ranks, weights, *config):
    """The checked config and the :class:`~peeklens.nmf.distributed.Comm` of a distributed fit.

    The local checks (options, blocks) run inside :func:`distributed.connect`, so that a refusal on
    one process is raised on every process instead of leaving the others waiting.
    """
    made: list = []

    def check(a):
        made.append(make_config(*config))
        check_blocks(a)

    solver, max_iter, tol, seed, eps, init, _progress, options = config
    summary = dict(
        ranks=list(ranks), solver=solver, max_iter=max_iter, tol=tol, seed=seed, eps=eps,
        init=init if isinstance(init, (str, type(None))) else "explicit", solver_options=dict(options or {}),
        weights=dict(weights or {}),
    )  # fmt: skip
    comm = distributed.connect(acts, summary, check=check)
    return made[0], comm


#: The models :func:`factorize` fits: the paper's matrices, or the tensor lens (conv layers as CP tensors).
MODELS = ("matrix", "tensor")


def _check_tensor_options(solver: str = DEFAULT_SOLVER, eps: float = DEFAULT_EPS, solver_options=None, **_) -> None:
    """The tensor model has one solver (coupled CP-HALS): refuse the matrix model's solver settings."""
    if solver != DEFAULT_SOLVER or solver_options or eps != DEFAULT_EPS:
        raise InputError(
            f"model='tensor' has one solver (coupled HALS) and takes no solver=, solver_options= or eps= "
            f"(got solver={solver!r}, solver_options={solver_options!r}, eps={eps!r}); drop them, or use "
            "model='matrix'"
        )


def sweep(
    acts: Activations,
    ranks: Iterable[int] = range(10, 51, 10),
    *,
    progress: bool = True,
    warm_start: bool | None = None,
    distributed: bool = False,
    model: str = "matrix",
    batched: bool = False,
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
    distributed : bool, default False
        Factorize the union of the samples of every process of the ``torch.distributed`` process
        group, as in :func:`factorize` (call it on every process).  Ctrl-C in one process stops
        every process at its next iteration; each keeps the finished ranks.
    batched : bool, default False
        Solve every rank at once with exact HALS (:mod:`peeklens.nmf.batched`): one pass over the
        data per half-iteration serves every rank and each row update is one batched kernel, so a
        GPU runs the whole sweep in about the kernel launches of its largest rank.  Each rank
        gets what ``solver="hals"`` gives it from its own start (no warm starts), to float
        tolerance; a rank that converges leaves the batch.  The solver is ``"hals"`` (the
        default here; others are refused).  On the CPU it does the same arithmetic as one rank
        at a time: use it on a GPU.  Ctrl-C keeps the ranks that had already converged.
    **factorize_kwargs
        :func:`factorize`'s options (``solver``, ``max_iter``, ``tol``, ``seed``, ``device``,
        ``weights``, ``init``, ``eps``, ``blocks``, ``solver_options``), checked before the first fit.

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
    check_keys(factorize_kwargs, FACTORIZE_OPTIONS, "sweep (passing them to factorize)")
    if batched:
        factorize_kwargs = _check_batched(model, distributed, warm_start, factorize_kwargs)
        warm_start = False
    if one_of(model, "model", MODELS) == "tensor":
        _refuse_distributed_tensor(distributed)
        _check_tensor_options(**factorize_kwargs)
        return sweep_tensor(
            acts, ranks, progress=progress, warm_start=True if warm_start is None else warm_start, **factorize_kwargs
        )
    kw = dict(factorize_kwargs)
    ranks = positive_ints(ranks, "ranks")
    acts = check_activations(acts, kw.pop("blocks", None))
    weights, device = kw.pop("weights", None), kw.pop("device", None)
    comm = None
    if distributed:
        names = ("solver", "max_iter", "tol", "seed", "eps", "init", "progress", "solver_options")
        defaults = make_config()
        config = [
            kw.get(n, getattr(defaults, "options" if n == "solver_options" else n)) for n in names
        ]  # fmt: skip
        cfg, comm = _connect(acts, ranks, weights, *config)
    for r in ranks:  # fail before the first fit, not after hours
        check_rank(r, acts, comm.n_total if comm is not None else None)
    if comm is None:
        cfg = make_config(**kw)
    if warm_start is None:
        warm_start = cfg.solver != "mu"
    state = SweepState(
        acts, weights, device, max_rank=max(ranks), warm_start=bool(warm_start) and cfg.init is None, comm=comm
    )
    guard = comm.deferred_interrupts() if comm is not None else _nothing()
    guard.__enter__()  # a distributed sweep turns Ctrl-C into a flag that every process sees
    try:
        if batched:
            fits, interrupted = fit_ranks_batched(state, ranks, replace(cfg, progress=progress or cfg.progress))
        else:
            fits, interrupted = run_ranks(
                ranks,
                lambda r: _fit(state, r, cfg),
                progress=progress and (comm is None or comm.rank == 0),
                between=comm.check_stop if comm is not None else None,  # every process stops together
            )
    finally:
        guard.__exit__(None, None, None)
        state.release()  # frees the device copy of the data and the sketch
    settings = {k: v for k, v in factorize_kwargs.items() if isinstance(v, (int, float, str, bool, type(None)))}
    settings["warm_start"] = bool(warm_start)
    settings["batched"] = bool(batched)
    if comm is not None:
        settings["distributed"] = comm.settings()
    return Sweep(fits, interrupted=interrupted, requested=ranks, meta={"settings": settings})
