"""The tensor lens: coupled non-negative matrix-tensor factorization.

The paper flattens a convolutional layer into a (channels*positions x samples) matrix, so one
factor's loadings mix *which channels* with *where in the image*.  Here every block keeps its
shape: an input channel stays a (pixels x samples) matrix ``D_i ~ P_i F^T``; a layer whose
per-sample shape is (C, H, W) becomes a third-order tensor (channels x positions x samples) with a
non-negative CP (PARAFAC) model ``[[C_j, S_j, F]]`` whose sample factor ``F`` is the same ``F``
shared by every block; dense layers stay matrices.  The objective::

    sum_i w_i ||D_i - P_i F^T||^2 + sum_j w_j ||A_j - [[C_j, S_j, F]]||^2,   all factors >= 0

is the matrix model's with ``O_j`` restricted to Khatri-Rao products ``C_j (.) S_j``, so errors,
RMSE and objective are directly comparable with :func:`peeklens.factorize` at the same rank.  The
solver is HALS (:mod:`peeklens.nmf.tensor_hals`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from .._validation import check_keys, finite_float, one_of, positive_int, positive_ints
from .._version import __version__
from ..activations import Activations
from ..errors import DeviceError, InputError
from ..results import Factorization, Sweep
from ._fit import check_rank, run_ranks, to_factorization
from ._problem import Problem, make_problem
from .tensor_hals import TensorLayout, extend_factors, khatri_rao, random_factors, solve, svd_factors

__all__ = [
    "factorize_tensor",
    "sweep_tensor",
    "tensor_layout",
    "tensor_loadings",
    "tensor_spatial_maps",
    "DEFAULT_MAX_ITER",
    "DEFAULT_TOL",
]

DEFAULT_MAX_ITER = 200
DEFAULT_TOL = 1e-4
INITS = ("nndsvda", "random")


def tensor_layout(acts: Activations, tensor_blocks: Iterable[str] | None = None) -> TensorLayout:
    """Which blocks are modelled as tensors.

    By default every *layer* block whose per-sample shape is (C, H, W); input channels and dense
    layers stay matrices.  ``tensor_blocks`` names them explicitly instead; each must have a
    per-sample shape (C, H, W).

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> acts = pl.Activations.from_arrays({"input:0": np.ones((4, 3)), "conv": np.ones((12, 3))},
    ...                                   shapes={"input:0": (2, 2), "conv": (3, 2, 2)})
    >>> tensor_layout(acts).modes
    (None, (3, 4))
    """
    if tensor_blocks is None:
        names = {n for n, b in acts.items() if b.kind == "layer" and len(b.shape) == 3}
    else:
        if isinstance(tensor_blocks, str):
            tensor_blocks = [tensor_blocks]
        names = set(tensor_blocks)
        unknown = sorted(names - set(acts.names))
        if unknown:
            raise InputError(f"tensor_blocks names unknown blocks {unknown}; blocks are {acts.names}")
        for n in sorted(names):
            shape = acts[n].shape
            if len(shape) != 3:
                raise InputError(
                    f"block {n!r} has per-sample shape {shape}, not (channels, height, width); only "
                    "convolutional blocks can be tensors. Leave it out of tensor_blocks= (it is then "
                    "factorized as a matrix), or capture the layer before it is flattened"
                )
    modes = []
    for n in acts.names:
        if n in names:
            c, h, w = acts[n].shape
            modes.append((int(c), int(h) * int(w)))
        else:
            modes.append(None)
    return TensorLayout(tuple(modes))


def _check_options(max_iter, tol) -> None:
    positive_int(max_iter, "max_iter")
    finite_float(tol, "tol", minimum=0.0)


@dataclass
class _TensorSweep:
    """What the ranks of one tensor sweep share: the data on the device and, for warm starts, each rank's
    factors. :func:`factorize_tensor` makes a fresh one; :func:`sweep_tensor` passes one to every rank."""

    acts: Activations
    weights: Mapping[str, float] | None
    device: str | torch.device | None
    warm_start: bool = False
    problem: Problem | None = None
    fits: dict = field(default_factory=dict)

    def get_problem(self) -> Problem:
        if self.problem is None:
            # one read of the data: the checks (NaN, Inf, negatives) come with the norms and sums
            self.problem = make_problem(self.acts, self.weights, self.device, check=True)
        return self.problem

    def warm_from(self, rank: int) -> int | None:
        below = [r for r in self.fits if r < rank] if self.warm_start else []
        return max(below) if below else None


def _explicit(problem: Problem, layout: TensorLayout, rank: int, init: Mapping, spatial_key: str = "spatial"):
    """``init = {"F": ..., name: W or C, "spatial": {name: S}}`` -> device factors, checked."""

    def arr(x, what, shape):
        a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        if a.shape != shape:
            raise InputError(f"init{what} has shape {a.shape}, expected {shape}")
        if not np.all(np.isfinite(a)) or a.min() < 0:
            raise InputError(f"init{what} must be finite and non-negative")
        return torch.from_numpy(np.array(a, dtype=np.float32)).to(problem.device)

    allowed = {"F", spatial_key, *problem.names}
    extra = sorted(set(init) - allowed)
    if extra:
        raise InputError(f"init= has unknown keys {extra}; expected 'F', {problem.names} and {spatial_key!r}")
    missing = [k for k in ["F", *problem.names] if k not in init]
    spatial = dict(init.get(spatial_key) or {})
    missing += [
        f"{spatial_key}[{n!r}]" for n, m in zip(problem.names, layout.modes) if m is not None and n not in spatial
    ]
    if missing:
        raise InputError(
            f"init= is missing {missing}; give 'F', one loading per block and, for tensor blocks, "
            f"init[{spatial_key!r}][name] (positions x rank), e.g. a previous fit's .F, .loadings, "
            ".spatial"
        )
    F = arr(init["F"], "['F']", (problem.n_samples, rank))
    factors = []
    for n, m, mode in zip(problem.names, problem.n_features, layout.modes):
        if mode is None:
            factors.append([arr(init[n], f"[{n!r}]", (m, rank))])
        else:
            factors.append(
                [
                    arr(init[n], f"[{n!r}]", (mode[0], rank)),
                    arr(spatial[n], f"[{spatial_key!r}][{n!r}]", (mode[1], rank)),
                ]
            )
    return F, factors


def factorize_tensor(
    acts: Activations,
    rank: int,
    *,
    max_iter: int = DEFAULT_MAX_ITER,
    tol: float = DEFAULT_TOL,
    seed: int = 0,
    device: str | torch.device | None = None,
    weights: Mapping[str, float] | None = None,
    init: str | Mapping | None = None,
    progress: bool = False,
    tensor_blocks: Iterable[str] | None = None,
    blocks: Iterable[str] | None = None,
    max_inner: int | None = None,
) -> Factorization:
    """Fit the coupled non-negative matrix-tensor model (the tensor lens) to every block of ``acts``.

    Minimizes ``sum_b w_b ||X_b - model_b||_F^2`` over non-negative factors, where ``model_b`` is
    ``W_b F^T`` for a matrix block (input channels, dense layers) and the CP model
    ``[[C_b, S_b, F]]`` (channels x positions x samples) for a tensor block (layers of per-sample
    shape (C, H, W)); the sample factor ``F`` (samples x rank) is shared by all blocks.

    Parameters
    ----------
    acts : Activations
        Non-negative (features x samples) blocks, e.g. from :func:`peeklens.capture`; blocks may be
        memory maps (they are read in sample chunks).
    rank : int
        Number of factors (CP components), at most ``min(samples, total features)``.
    max_iter : int, default 200
        Maximum number of iterations (each two passes over the data).
    tol : float, default 1e-4
        Stop when the relative change of the objective over one iteration is at most ``tol`` (the
        matrix model's rule); 0 runs all ``max_iter`` iterations.
    seed : int, default 0
        Seed of the initialization; on one device the same seed gives identical results.
    device : str or torch.device, optional
        ``"cpu"`` (default) or ``"cuda"``; float32 throughout, objective sums in float64.
    weights : dict of str to float, optional
        Per-block weights ``w_b`` (default 1, as in the matrix model).
    init : {"nndsvda", "random"} or dict, optional
        ``"nndsvda"`` (default): the matrix model's NNDSVDa start with each tensor block's loading
        columns folded to their best rank-one (channels x positions) approximation; ``"random"``:
        every factor uniform in [0, 1) from ``seed``; or explicit factors
        ``{"F": (samples x rank), name: (features x rank) or (channels x rank), "spatial":
        {name: (positions x rank)}}`` -- a previous fit's ``F``, ``loadings`` and ``spatial``.
    progress : bool, default False
        A progress bar over iterations.
    tensor_blocks : list of str, optional
        The blocks to model as tensors (each of per-sample shape (C, H, W)); default: every layer
        block of per-sample shape (C, H, W).  ``[]`` gives the matrix model (solved by the same
        HALS).
    blocks : list of str, optional
        Factorize only these blocks (as :func:`peeklens.factorize`'s ``blocks=``).
    max_inner : int, optional
        Inner HALS sweeps per pass over the data (default: chosen from the sizes, at most 10).

    Returns
    -------
    Factorization
        ``loadings[name]`` is (channels x rank) for tensor blocks and (features x rank) for matrix
        blocks; ``spatial[name]`` is (positions x rank) for tensor blocks (positions = H*W in row
        order; fold with :func:`tensor_spatial_maps`).  ``errors``, ``rmse`` and ``objective`` are defined
        as for the matrix model.  ``settings["model"] == "tensor"``, ``settings["tensor_blocks"]``
        names the tensor blocks and ``settings["n_params"]`` counts the model's numbers.

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> from peeklens.nmf.tensor import factorize_tensor
    >>> rng = np.random.default_rng(0)
    >>> acts = pl.Activations.from_arrays(
    ...     {"input:0": rng.random((16, 40)), "conv": rng.random((3 * 2 * 2, 40))},
    ...     shapes={"input:0": (4, 4), "conv": (3, 2, 2)})
    >>> fit = factorize_tensor(acts, 2, max_iter=30)
    >>> fit.loadings["conv"].shape, fit.spatial["conv"].shape, fit.settings["model"]
    ((3, 2), (4, 2), 'tensor')
    >>> bool(np.all(np.diff(fit.objective) <= 1e-6 * fit.objective[:-1]))
    True
    """
    if not isinstance(acts, Activations):
        raise InputError(
            "factorize_tensor expects peeklens.Activations (from pl.capture or Activations.from_arrays), "
            f"got {type(acts).__name__}"
        )
    if blocks is not None:
        acts = acts.select(blocks)
    state = _TensorSweep(acts, weights, device)
    return _fit_tensor(
        state,
        rank,
        max_iter=max_iter,
        tol=tol,
        seed=seed,
        init=init,
        progress=progress,
        tensor_blocks=tensor_blocks,
        max_inner=max_inner,
    )


def _fit_tensor(state: _TensorSweep, rank, *, max_iter, tol, seed, init, progress, tensor_blocks, max_inner):
    """One rank of the tensor model on the sweep's shared data (and, for warm starts, its earlier ranks)."""
    acts = state.acts
    if not isinstance(acts, Activations):
        raise InputError(f"factorize_tensor expects peeklens.Activations, got {type(acts).__name__}")
    rank = check_rank(rank, acts)
    _check_options(max_iter, tol)
    if max_inner is not None:
        positive_int(max_inner, "max_inner")
    if isinstance(init, str):
        one_of(init, "init", INITS)
    if init is not None and not isinstance(init, (str, Mapping)):
        raise InputError(f"init must be 'nndsvda', 'random' or a dict of factors, got {type(init).__name__}")
    layout = tensor_layout(acts, tensor_blocks)
    signed = [n for n, b in acts.items() if getattr(b, "signed", False)]
    if signed:
        raise InputError(
            f"block(s) {signed} are marked signed (semi-NMF loadings); the tensor model is non-negative in every "
            "factor. Use the matrix model for signed blocks, or capture them with nonneg='shift', 'split' or 'abs'"
        )
    problem = state.get_problem()
    t0 = time.perf_counter()
    warm_from = state.warm_from(rank) if init is None else None
    try:
        if warm_from is not None:
            F0, W0 = state.fits[warm_from]
            F, factors = extend_factors(
                problem, layout, F0.clone(), [[f.clone() for f in fs] for fs in W0], rank - warm_from, seed=seed
            )
            init_desc = f"warm start from rank {warm_from}"
        elif init is None or init == "nndsvda":
            F, factors = svd_factors(problem, layout, rank, seed)
            init_desc = "nndsvda"
        elif init == "random":
            F, factors = random_factors(problem, layout, rank, seed)
            init_desc = "random"
        else:
            F, factors = _explicit(problem, layout, rank, init)
            init_desc = "explicit"

        bar = tqdm(total=max_iter, desc=f"tensor rank {rank}", leave=False, disable=not progress)

        def callback(i: int, obj: float) -> None:
            bar.update(1)
            if i % 10 == 0:
                bar.set_postfix(objective=f"{obj:.4g}", refresh=False)

        try:
            res = solve(
                problem,
                layout,
                F,
                factors,
                max_iter=int(max_iter),
                tol=float(tol),
                callback=callback,
                max_inner=max_inner,
            )
        finally:
            bar.close()
    except torch.OutOfMemoryError as e:  # pragma: no cover - needs a GPU
        raise DeviceError(
            f"out of memory on {problem.device} while fitting the tensor model at rank {rank}: use a smaller "
            "rank, fewer samples (acts.subset), pooled layers (capture(pool=2)), or device='cpu'"
        ) from e
    if problem.device.type == "cuda":  # pragma: no cover - needs a GPU
        torch.cuda.synchronize(problem.device)
    seconds = time.perf_counter() - t0
    if state.warm_start:
        state.fits[rank] = (res.F, res.W)
    settings = dict(
        model="tensor",
        solver="hals",
        rank=rank,
        max_iter=int(max_iter),
        tol=float(tol),
        seed=int(seed),
        device=str(problem.device),
        weights=dict(zip(problem.names, problem.weights)),
        init=init_desc,
        tensor_blocks=[n for n, m in zip(problem.names, layout.modes) if m is not None],
        n_params=layout.n_params(problem, rank),
        peeklens=__version__,
        torch=torch.__version__,
    )
    if max_inner is not None:
        settings["max_inner"] = int(max_inner)
    return _result(acts, problem, layout, res, seconds, settings)


def _result(acts, problem: Problem, layout: TensorLayout, res, seconds: float, settings: dict) -> Factorization:
    W = [fs[0] if m is None else khatri_rao(fs[0], fs[1]) for fs, m in zip(res.W, layout.modes)]
    spatial = {n: fs[1].detach().cpu().numpy() for n, fs, m in zip(problem.names, res.W, layout.modes) if m is not None}
    return to_factorization(acts, problem, res, seconds, settings, W=W, spatial=spatial)


def sweep_tensor(
    acts: Activations,
    ranks: Iterable[int] = range(10, 51, 10),
    *,
    progress: bool = True,
    warm_start: bool = True,
    **factorize_kwargs,
) -> Sweep:
    """:func:`factorize_tensor` at every rank in ``ranks``, the data moved to the device once.

    Parameters
    ----------
    acts : Activations
        The blocks to factorize.
    ranks : iterable of int, default 10, 20, 30, 40, 50 (the paper's)
        Ranks to fit, in the order given.
    progress : bool, default True
        A progress bar over ranks.
    warm_start : bool, default True
        Start each rank from the largest smaller rank already fitted plus new columns fitted to
        its residual (only when ``init`` is not given); ``settings["init"]`` records it.
    **factorize_kwargs
        Passed to :func:`factorize_tensor` (``max_iter``, ``tol``, ``seed``, ``device``, ...).

    Returns
    -------
    Sweep
        Maps rank to Factorization; the finished ranks are kept if interrupted (Ctrl-C).

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> from peeklens.nmf.tensor import sweep_tensor
    >>> acts = pl.Activations.from_arrays({"conv": np.random.default_rng(0).random((2 * 3 * 3, 30))},
    ...                                   shapes={"conv": (2, 3, 3)})
    >>> s = sweep_tensor(acts, [1, 2], max_iter=20, progress=False)
    >>> s.ranks, s[2].settings["init"]
    ([1, 2], 'warm start from rank 1')
    """
    ranks = list(ranks) if not isinstance(ranks, (int, np.integer)) else [ranks]
    ranks = positive_ints(ranks, "ranks")
    if not isinstance(acts, Activations):
        raise InputError(f"sweep_tensor expects peeklens.Activations, got {type(acts).__name__}")
    kw = dict(factorize_kwargs)
    check_keys(kw, _TENSOR_OPTIONS, "sweep_tensor (passing them to factorize_tensor)")
    blocks = kw.pop("blocks", None)
    checked = acts.select(blocks) if blocks is not None else acts
    for r in ranks:  # fail before the first fit
        check_rank(r, checked)
    _check_options(kw.get("max_iter", DEFAULT_MAX_ITER), kw.get("tol", DEFAULT_TOL))
    tensor_layout(checked, kw.get("tensor_blocks"))
    state = _TensorSweep(
        checked, kw.pop("weights", None), kw.pop("device", None), warm_start=bool(warm_start) and kw.get("init") is None
    )
    options = {
        "max_iter": DEFAULT_MAX_ITER,
        "tol": DEFAULT_TOL,
        "seed": 0,
        "init": None,
        "progress": False,
        "tensor_blocks": None,
        "max_inner": None,
        **kw,
    }
    fits, interrupted = run_ranks(
        ranks, lambda r: _fit_tensor(state, r, **options), progress=progress, desc="tensor ranks"
    )
    settings = {k: v for k, v in factorize_kwargs.items() if isinstance(v, (int, float, str, bool, type(None)))}
    settings.update(model="tensor", warm_start=bool(warm_start))
    return Sweep(fits, interrupted=interrupted, requested=ranks, meta={"settings": settings})


#: What :func:`sweep_tensor` passes on to :func:`factorize_tensor`.
_TENSOR_OPTIONS = (
    "max_iter",
    "tol",
    "seed",
    "device",
    "weights",
    "init",
    "progress",
    "tensor_blocks",
    "blocks",
    "max_inner",
)


# ------------------------------------------------------------------ NumPy views
def tensor_loadings(fit: Factorization, name: str) -> np.ndarray:
    """Block ``name``'s loadings as the matrix model has them (features x rank).

    For a tensor block the Khatri-Rao product of ``loadings[name]`` (channels x rank) and
    ``spatial[name]`` (positions x rank), row ``c * positions + p``; so the block's model is
    ``tensor_loadings(fit, name) @ fit.F.T``.  For a matrix block ``loadings[name]``.

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> acts = pl.Activations.from_arrays({"conv": np.random.default_rng(0).random((8, 20))},
    ...                                   shapes={"conv": (2, 2, 2)})
    >>> fit = factorize_tensor(acts, 2, max_iter=5)
    >>> tensor_loadings(fit, "conv").shape
    (8, 2)
    """
    C = np.asarray(fit.loadings[name])
    spatial = getattr(fit, "spatial", None) or {}
    if name not in spatial:
        return C
    S = np.asarray(spatial[name])
    return (C[:, None, :] * S[None, :, :]).reshape(C.shape[0] * S.shape[0], C.shape[1])


def tensor_spatial_maps(fit: Factorization, name: str) -> np.ndarray:
    """The spatial factor of tensor block ``name`` folded to maps: (rank x H x W).

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> acts = pl.Activations.from_arrays({"conv": np.random.default_rng(0).random((12, 20))},
    ...                                   shapes={"conv": (3, 2, 2)})
    >>> tensor_spatial_maps(factorize_tensor(acts, 2, max_iter=5), "conv").shape
    (2, 2, 2)
    """
    spatial = getattr(fit, "spatial", None) or {}
    if name not in spatial:
        raise InputError(f"block {name!r} has no spatial factor; tensor blocks of this fit: {sorted(spatial)}")
    shape = fit.blocks[name]["shape"]
    S = np.asarray(spatial[name])
    return S.T.reshape(S.shape[1], int(shape[1]), int(shape[2]))
