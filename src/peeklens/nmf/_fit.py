"""One fit of one rank, in small steps: the checked settings, the state a sweep shares between
ranks, the sketch, the starting factors, the solver call (explicit dispatch) and the result.

:func:`peeklens.factorize` fits one rank with a fresh :class:`SweepState`; :func:`peeklens.sweep`
passes one state to every rank, so that the data moves to the device once, one sketch serves
every rank and each rank can start from the previous one's factors.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from .._validation import finite_float, non_negative_int, one_of, positive_int
from .._version import __version__
from ..activations import Activations
from ..errors import DeviceError, InputError, PeeklensError
from ..results import Factorization, Sweep
from . import batched, compressed, hals, mu
from ._init import extend_factors, nndsvda_init
from ._linalg import Sketch, fit_signed_loadings, range_sketch
from ._options import check_solver, check_solver_options
from ._problem import Problem, SolverResult, block_errors, explicit_init, make_problem, random_init

__all__ = [
    "INITS",
    "DEFAULT_INIT",
    "DEFAULT_SOLVER",
    "DEFAULT_MAX_ITER",
    "DEFAULT_TOL",
    "DEFAULT_EPS",
    "FitConfig",
    "SweepState",
    "make_config",
    "check_activations",
    "check_rank",
    "fit_rank",
    "fit_ranks_batched",
    "fit_settings",
    "ensure_sketch",
    "starting_factors",
    "run_solver",
    "to_factorization",
]

#: Initializations by name: ``f(problem, rank, seed) -> (F, [W_b])``.
INITS: dict[str, Callable] = {"random": random_init, "nndsvda": nndsvda_init}

#: The init used when ``init=None``, per solver.
DEFAULT_INIT: dict[str, str] = {"mu": "random", "hals": "nndsvda", "compressed": "nndsvda"}

DEFAULT_SOLVER = "compressed"
DEFAULT_MAX_ITER = 200
DEFAULT_TOL = 1e-4
DEFAULT_EPS = 1e-9


@dataclass(frozen=True)
class FitConfig:
    """The checked settings of a fit, the same for every rank of a sweep."""

    solver: str = DEFAULT_SOLVER
    max_iter: int = DEFAULT_MAX_ITER
    tol: float = DEFAULT_TOL
    seed: int = 0
    eps: float = DEFAULT_EPS
    init: str | Mapping[str, np.ndarray] | None = None
    progress: bool = False
    options: Mapping[str, object] = field(default_factory=dict)

    @property
    def init_name(self) -> str | None:
        """The named init that runs when no warm start applies (``None`` for explicit factors)."""
        if self.init is None:
            return DEFAULT_INIT[self.solver]
        return self.init if isinstance(self.init, str) else None

    @property
    def wants_sketch(self) -> bool:
        """Whether this fit uses a randomized sketch of the data (the compressed solver, NNDSVDa)."""
        return self.solver == "compressed" or self.init_name == "nndsvda"


def make_config(
    solver: str = DEFAULT_SOLVER,
    max_iter: int = DEFAULT_MAX_ITER,
    tol: float = DEFAULT_TOL,
    seed: int = 0,
    eps: float = DEFAULT_EPS,
    init: str | Mapping[str, np.ndarray] | None = None,
    progress: bool = False,
    solver_options: Mapping[str, object] | None = None,
) -> FitConfig:
    """Check :func:`peeklens.factorize`'s options (before any work) and collect them."""
    solver = check_solver(solver)
    max_iter = positive_int(max_iter, "max_iter")
    tol = finite_float(tol, "tol", minimum=0)
    seed = non_negative_int(seed, "seed")
    eps = finite_float(eps, "eps", minimum=0)
    if isinstance(init, str):
        init = one_of(init, "init", INITS)
    elif init is not None and not isinstance(init, Mapping):
        raise InputError(f"init must be 'random', 'nndsvda', a dict of factors or None, got {type(init).__name__}")
    options = check_solver_options(solver, solver_options)
    return FitConfig(solver, max_iter, tol, seed, eps, init, bool(progress), options)


def check_activations(acts: object, blocks=None) -> Activations:
    """``acts`` (only ``blocks`` of it, when given) if it is an :class:`~peeklens.Activations`."""
    if not isinstance(acts, Activations):
        raise InputError(
            f"factorize expects peeklens.Activations (from pl.capture or Activations.from_arrays), "
            f"got {type(acts).__name__}"
        )
    return acts.select(blocks) if blocks is not None else acts


def check_rank(rank: object, acts: Activations, n_samples: int | None = None) -> int:
    """``rank`` if it is a positive integer no larger than the data's smaller side.

    ``n_samples``: the samples of the whole problem when ``acts`` holds one process's share.
    """
    rank = positive_int(rank, "rank")
    n = acts.n_samples if n_samples is None else int(n_samples)
    limit = min(n, acts.n_features)
    if rank > limit:
        raise InputError(
            f"rank {rank} is larger than the smallest dimension of the data "
            f"({n} samples x {acts.n_features} features); use a rank <= {limit}"
        )
    return rank


@dataclass
class SweepState:
    """What the ranks of one sweep share: the data on the device, the sketch, the fitted factors.

    ``problem`` is built (and the blocks checked) on first use; ``fits`` keeps every rank's
    factors when ``warm_start`` is on; ``max_rank`` sizes the sketch for the largest rank.
    ``comm`` (a :class:`~peeklens.nmf.distributed.Comm`) makes the fit distributed: ``acts`` is
    this process's share of the samples, already checked by
    :func:`~peeklens.nmf.distributed.connect`.
    """

    acts: Activations
    weights: Mapping[str, float] | None = None
    device: str | torch.device | None = None
    max_rank: int = 1
    warm_start: bool = False
    problem: Problem | None = None
    sketch: Sketch | None = None
    fits: dict[int, tuple[torch.Tensor, list[torch.Tensor]]] = field(default_factory=dict)
    comm: object | None = None

    def get_problem(self, first_range: tuple[int, int] | None = None) -> Problem:
        """The blocks on the device (checked and moved once).

        ``first_range=(k, seed)``: the sketch this sweep will build; for blocks on disk the checks'
        read also takes its first product (:func:`~peeklens.nmf._problem.make_problem`).
        """
        if self.problem is None:
            # one read of every block: the checks (NaN, Inf, negative values), the norms and the sums;
            # connect() checked a distributed fit's blocks on every process (one more read)
            self.problem = make_problem(
                self.acts, self.weights, self.device, comm=self.comm, check=self.comm is None, first_range=first_range
            )
            if self.comm is not None:
                self.problem.passes += 1.0
        return self.problem

    def release(self) -> None:
        """Drop the device copy of the data, the sketch and the kept factors."""
        self.problem, self.sketch = None, None
        self.fits.clear()


def sketch_columns(state: SweepState, cfg: FitConfig, rank: int) -> int:
    """Columns of the sketch for this fit: wide enough for the sweep's largest rank."""
    oversample = int(cfg.options.get("oversample", compressed.DEFAULT_OVERSAMPLE))
    return compressed.sketch_size(state.problem, max(rank, state.max_rank), oversample)


def sketch_request(state: SweepState, cfg: FitConfig, rank: int) -> tuple[int, int] | None:
    """``(k, seed)`` of the sketch :func:`ensure_sketch` will build for this fit, if it builds one."""
    return (sketch_columns(state, cfg, rank), int(cfg.seed)) if cfg.wants_sketch else None


def ensure_sketch(state: SweepState, cfg: FitConfig, rank: int) -> Sketch | None:
    """A randomized range sketch wide enough for the state's largest rank (built once per sweep).

    ``None`` when the compressed solver finds the data too small to compress (it runs plain HALS
    and NNDSVDa draws its own SVD).
    """
    problem = state.get_problem()
    power_iter = int(cfg.options.get("power_iter", compressed.DEFAULT_POWER_ITER))
    k = sketch_columns(state, cfg, rank)
    have = state.sketch
    if (
        have is not None
        and have.k >= min(k, sum(problem.n_features), problem.n_samples)
        and have.seed == cfg.seed
        and have.power_iter == power_iter
    ):
        return have
    if cfg.solver == "compressed" and not compressed.worth_compressing(problem, k):
        return have
    state.sketch = range_sketch(problem, k, power_iter=power_iter, seed=cfg.seed)
    return state.sketch


def starting_factors(state: SweepState, cfg: FitConfig, rank: int) -> tuple[torch.Tensor, list[torch.Tensor], str]:
    """``(F, W, description)``: a warm start from the largest smaller rank of the sweep, the named
    init, or the explicit factors of ``cfg.init``."""
    problem = state.get_problem()
    below = [r for r in state.fits if r < rank] if (state.warm_start and cfg.init is None) else []
    if below:
        warm_from = max(below)
        F0, W0 = state.fits[warm_from]
        F, W = extend_factors(
            problem, F0.clone(), [w.clone() for w in W0], rank - warm_from, seed=cfg.seed, sketch=state.sketch
        )
        return F, W, f"warm start from rank {warm_from}"
    name = cfg.init_name
    if name == "random":
        F, W = random_init(problem, rank, cfg.seed)
    elif name == "nndsvda":
        F, W = nndsvda_init(problem, rank, cfg.seed, sketch=state.sketch)
    else:
        F, W = explicit_init(problem, rank, cfg.init)
        name = "explicit"
    return F, W, name


def run_solver(
    problem: Problem,
    F: torch.Tensor,
    W: list[torch.Tensor],
    cfg: FitConfig,
    options: Mapping,
    *,
    sketch: Sketch | None,
    callback,
    info: dict,
) -> SolverResult:
    """Call ``cfg.solver`` with its arguments (explicit dispatch, as scikit-learn's ``_nmf``)."""
    if cfg.solver == "mu":
        return mu.solve(problem, F, W, max_iter=cfg.max_iter, tol=cfg.tol, eps=cfg.eps, callback=callback)
    if cfg.solver == "hals":
        return hals.solve(problem, F, W, max_iter=cfg.max_iter, tol=cfg.tol, callback=callback, **options)
    if cfg.solver == "compressed":
        return compressed.solve(
            problem,
            F,
            W,
            max_iter=cfg.max_iter,
            tol=cfg.tol,
            callback=callback,
            sketch=sketch,
            seed=cfg.seed,
            info=info,
            **options,
        )
    raise AssertionError(f"unhandled solver {cfg.solver!r}")  # make_config checked the name


def _progress(cfg: FitConfig, rank: int, comm=None):
    show = cfg.progress and (comm is None or comm.rank == 0)
    bar = tqdm(total=cfg.max_iter, desc=f"rank {rank}", leave=False, disable=not show)

    def callback(i: int, obj: float) -> None:
        bar.update(1)
        if i % 10 == 0:
            bar.set_postfix(objective=f"{obj:.4g}", refresh=False)
        if comm is not None:  # every process stops together when one was interrupted
            comm.check_stop()

    return bar, callback


def fit_rank(state: SweepState, rank: int, cfg: FitConfig) -> Factorization:
    """Fit one rank: sketch, starting factors, solver, result (``rank`` already checked)."""
    fresh = state.problem is None
    problem = state.get_problem(sketch_request(state, cfg, rank) if fresh else None)
    passes = {"checks": problem.passes if fresh else 0.0}  # the checks and norms, once per sweep
    mark = problem.passes
    comm = problem.comm
    sent = (comm.bytes_reduced, comm.calls) if comm is not None else None
    t0 = time.perf_counter()
    sketch = ensure_sketch(state, cfg, rank) if cfg.wants_sketch else state.sketch
    passes["sketch"], mark = problem.passes - mark, problem.passes
    F, W, init_desc = starting_factors(state, cfg, rank)
    W = fit_signed_loadings(problem, F, W)  # semi-NMF: signed loadings first, as in Ding et al.
    passes["init"], mark = problem.passes - mark, problem.passes
    options = dict(cfg.options)
    if cfg.solver == "compressed" and cfg.init is None and not init_desc.startswith("warm"):
        options.setdefault("also_random", True)  # two cheap starts on the sketch; keeps the better
    info: dict = {}
    bar, callback = _progress(cfg, rank, problem.comm)
    try:
        res = run_solver(problem, F, W, cfg, options, sketch=sketch, callback=callback, info=info)
    except torch.OutOfMemoryError as e:  # raised by the CUDA allocator (a RuntimeError subclass)
        raise out_of_memory(problem, f"rank {rank}") from e
    finally:
        bar.close()
    passes["solver"] = problem.passes - mark
    if problem.device.type == "cuda":  # pragma: no cover - needs a GPU
        torch.cuda.synchronize(problem.device)
    seconds = time.perf_counter() - t0
    if state.warm_start:
        state.fits[rank] = (res.F, res.W)
    settings = fit_settings(cfg, problem, rank, init_desc, options, info)
    if comm is not None:  # F holds this process's rows; pl.save gathers them
        settings["distributed"] = {
            **comm.settings(),
            "bytes_reduced": comm.bytes_reduced - sent[0],  # this fit's all-reduces (per process)
            "all_reduces": comm.calls - sent[1],
        }
    return factorization_with_passes(state, problem, res, seconds, settings, passes)


def factorization_with_passes(
    state: SweepState, problem: Problem, res: SolverResult, seconds: float, settings: dict, passes: dict
) -> Factorization:
    """:func:`to_factorization`, with ``settings["passes"]``: ``passes`` so far, the final errors'
    reads (``"errors"``) and the ``"total"``."""
    settings["passes"] = passes
    mark = problem.passes
    fit = to_factorization(state.acts, problem, res, seconds, settings)
    passes["errors"] = problem.passes - mark
    passes["total"] = sum(passes.values())
    for key, value in passes.items():  # shares of a pass (blocks read alone) stay readable
        passes[key] = round(value, 6)
    return fit


def out_of_memory(problem: Problem, what: str) -> DeviceError:
    """The error for the CUDA allocator's out-of-memory while fitting ``what`` (e.g. ``"rank 30"``)."""
    return DeviceError(
        f"out of memory on {problem.device} while factorizing {sum(problem.n_features)} features x "
        f"{problem.n_samples} samples at {what}: use a smaller rank, fewer blocks (blocks=[...]), "
        "fewer samples (acts.subset or capture(max_samples=)), pooled layers (capture(pool=2)), "
        "or device='cpu'"
    )


def fit_ranks_batched(state: SweepState, ranks: list[int], cfg: FitConfig) -> tuple[dict[int, Factorization], bool]:
    """Fit every rank at once with batched HALS (:mod:`peeklens.nmf.batched`): ``(fits, interrupted)``.

    Each rank starts from ``cfg``'s init (no warm starts: the ranks run together); one sketch
    serves every rank's NNDSVDa.  A fit's ``seconds`` run from the batch's start (the shared
    checks, sketch and inits included) until its rank left the batch;
    ``settings["batched"]`` records the batch's ranks and its whole time, and
    ``settings["passes"]`` the batch's reads of the data, shared by its ranks.  Ctrl-C keeps the
    ranks that had converged, with the warning of an interrupted sweep.
    """
    fresh = state.problem is None
    problem = state.get_problem(sketch_request(state, cfg, max(ranks)) if fresh else None)
    passes = {"checks": problem.passes if fresh else 0.0}
    mark = problem.passes
    t0 = time.perf_counter()
    if cfg.wants_sketch:
        ensure_sketch(state, cfg, max(ranks))
    passes["sketch"], mark = problem.passes - mark, problem.passes
    starts, inits = [], []
    for r in ranks:
        F, W, init_desc = starting_factors(state, cfg, r)
        starts.append((F, fit_signed_loadings(problem, F, W)))
        inits.append(init_desc)
    passes["init"], mark = problem.passes - mark, problem.passes
    bar = tqdm(total=cfg.max_iter, desc=f"ranks {ranks[0]}-{ranks[-1]} at once", leave=False, disable=not cfg.progress)

    def callback(i: int, objectives: dict[int, float]) -> None:
        bar.update(1)
        if i % 10 == 0:
            bar.set_postfix(ranks_left=len(objectives), refresh=False)

    try:
        out = batched.solve_ranks(
            problem, starts, max_iter=cfg.max_iter, tol=cfg.tol, callback=callback, **dict(cfg.options)
        )
    except torch.OutOfMemoryError as e:
        raise out_of_memory(problem, f"ranks {ranks} at once (batched=True; try batched=False)") from e
    finally:
        bar.close()
    passes["solver"] = problem.passes - mark
    whole = time.perf_counter() - t0
    fits = {}
    for r, init_desc, res, seconds in zip(ranks, inits, out.results, out.seconds):
        if res is None:
            continue
        settings = fit_settings(cfg, problem, r, init_desc, cfg.options, {})
        settings["batched"] = {"ranks": list(ranks), "seconds": whole}
        fits[r] = factorization_with_passes(state, problem, res, seconds, settings, dict(passes))
    if out.interrupted:
        warn_interrupted(fits, ranks)
    return fits, out.interrupted


def fit_settings(cfg: FitConfig, problem: Problem, rank: int, init_desc: str, options: Mapping, info: dict) -> dict:
    """What a fit records of how it was made (``Factorization.settings``), before its passes."""
    settings = dict(
        solver=cfg.solver,
        rank=rank,
        max_iter=cfg.max_iter,
        tol=cfg.tol,
        seed=cfg.seed,
        eps=cfg.eps,
        device=str(problem.device),
        weights=dict(zip(problem.names, problem.weights)),
        init=init_desc,
        peeklens=__version__,
        torch=torch.__version__,
    )
    if problem.any_signed:
        settings["signed"] = [n for n, s in zip(problem.names, problem.signed) if s]
    settings.update({k: v for k, v in options.items() if isinstance(v, (int, float, str, bool))})
    settings.update(info)
    return settings


def to_factorization(
    acts: Activations,
    problem: Problem,
    res: SolverResult,
    seconds: float,
    settings: dict,
    *,
    W: list[torch.Tensor] | None = None,
    spatial: dict[str, np.ndarray] | None = None,
) -> Factorization:
    """The solver's factors as a :class:`~peeklens.Factorization`, with exact per-block errors.

    ``W``: each block's (features x rank) model loadings when ``res.W`` holds something else (the tensor
    lens keeps its channel factors there, ``spatial`` its position factors, and ``W`` their Khatri-Rao
    products).
    """
    model_W = res.W if W is None else W
    sq = block_errors(problem, res.F, model_W, known=res.block_sq)
    errors = {n: (math.sqrt(s / n2) if n2 > 0 else 0.0) for n, s, n2 in zip(problem.names, sq, problem.norms2)}
    total_entries = sum(problem.n_features) * problem.n_samples
    rmse = math.sqrt(sum(sq) / total_entries)
    stored = res.W if W is None else [fs[0] for fs in res.W]
    return Factorization(
        F=res.F.detach().cpu().numpy(),
        loadings={n: Wb.detach().cpu().numpy() for n, Wb in zip(problem.names, stored)},
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
        spatial=spatial,
        sample_info=acts.sample_info,
    )


def warn_interrupted(fits: Mapping, ranks: list[int]) -> None:
    """The warning of a sweep stopped by Ctrl-C, at the line that called the sweep (helper, then
    ``run_ranks`` or ``fit_ranks_batched``, then ``sweep``)."""
    warnings.warn(
        f"sweep interrupted: keeping the {len(fits)} finished rank(s) {sorted(fits)} of {ranks}", stacklevel=4
    )


def run_ranks(
    ranks: list[int],
    fit_one: Callable[[int], Factorization],
    *,
    progress: bool,
    desc: str = "ranks",
    between: Callable[[], None] | None = None,
) -> tuple[dict[int, Factorization], bool]:
    """Fit every rank in order under one progress bar: ``(fits, interrupted)``.

    What every sweep shares: Ctrl-C keeps the finished ranks (``interrupted=True``, with a warning);
    a :class:`~peeklens.PeeklensError` or ``MemoryError`` at a later rank (out of memory at a high
    rank, say) carries them in its ``.partial`` Sweep.  ``between`` runs after each rank (a
    distributed sweep checks there that no process was interrupted).
    """
    fits: dict[int, Factorization] = {}
    bar = tqdm(ranks, desc=desc, disable=not progress)
    try:
        for r in bar:
            bar.set_postfix(rank=r)
            fits[r] = fit_one(r)
            if between is not None:
                between()
    except KeyboardInterrupt:
        warn_interrupted(fits, ranks)
        return fits, True
    except (PeeklensError, MemoryError) as e:
        e.partial = Sweep(fits, interrupted=True, requested=list(ranks))  # type: ignore[attr-defined]
        if fits:
            e.args = (
                f"{e.args[0] if e.args else e} [the {len(fits)} finished rank(s) {sorted(fits)} are "
                "kept in this error's .partial Sweep]",
            ) + tuple(e.args[1:])
        raise
    finally:
        bar.close()
    return fits, False
