"""Factorize samples spread over several processes with ``torch.distributed`` (``distributed=True``).

Every process holds its own shard of the samples: :class:`~peeklens.Activations` with the same
blocks and features everywhere, different samples (e.g. each captured from its part of a
``torch.utils.data.DistributedSampler(dataset, shuffle=False)`` split, or ``acts.subset`` of a
contiguous range).  The union, in rank order, is factorized: ``F`` (samples x rank) stays
partitioned by rows, the loadings ``W_b`` are replicated, and only small matrices travel:

- the Gram matrix ``F^T F`` (rank x rank) and the products ``X_b F`` (features x rank), summed
  over processes (one all-reduce per data pass);
- for the sketch of the ``"compressed"`` solver and NNDSVDa: ``X_w Omega`` and the power
  iterations' products (features x k), the k x k Gram matrices of the sample-side factors
  (orthonormalized by Cholesky QR in float64) and ``F^T B^T`` (rank x k) per compressed iteration;
- block norms, the data mean, column norms of NNDSVD's sample-side vectors; one stop flag per
  iteration (see below).

Every random draw over the samples (``F``'s random start, the sketch's Gaussian ``Omega``) is made
for all samples on every process and cut to the local rows, so a distributed fit equals the
single-process fit of the concatenated data (same seed, same init) to float tolerance.  The
replicated small-matrix work must give the same bits on every process: the same PyTorch build and
thread count everywhere (true under ``torchrun`` on identical nodes).

**Interrupts.** While a distributed fit runs, Ctrl-C (SIGINT) in one process only raises a flag;
every all-reduce carries it as one extra number, so all processes learn of it at the same
collective, and they stop together at the end of the next iteration (a sweep keeps its finished
ranks on every process), with no extra communication.  A second Ctrl-C raises at once.

>>> from peeklens.nmf import distributed
>>> distributed.is_distributed(None)
False
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..errors import InputError, PeeklensError

__all__ = [
    "DistributedError",
    "Comm",
    "connect",
    "gather_fit",
    "gather_for_save",
    "is_distributed",
    "save",
    "spectrum_values",
    "shard",
    "init_from_env",
    "broadcast_module",
]


class DistributedError(PeeklensError, RuntimeError):
    """``distributed=True`` without a usable ``torch.distributed`` process group, or processes that disagree."""


def _require_group() -> None:
    import torch.distributed as dist

    if not dist.is_available():
        raise DistributedError(
            "distributed=True needs torch.distributed, which this PyTorch build does not provide "
            f"({torch.__version__}); use distributed=False"
        )
    if not dist.is_initialized():
        raise DistributedError(
            "distributed=True needs an initialized torch.distributed process group, and none is: call "
            "torch.distributed.init_process_group('gloo') (CPU) or ('nccl') (GPU) in every process first, "
            "e.g. in a script launched with `torchrun --nproc-per-node=N script.py`; or use distributed=False"
        )


@dataclass
class Comm:
    """The processes of one distributed fit: who we are, how the samples are split, and the reductions.

    ``counts[i]`` is the number of samples of process ``i``; this process holds rows
    ``offset : offset + n_local`` of the union.  ``bytes_reduced`` and ``calls`` count what the
    all-reduces carried (the tensors' sizes, per process), for benchmarks.  ``stop_requested``
    (set by Ctrl-C here) travels with every all-reduce; ``stop_seen`` is set on every process by
    the all-reduce that carried some process's request.
    """

    world_size: int
    rank: int
    counts: list[int]
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    group: object | None = None
    bytes_reduced: int = 0
    calls: int = 0
    stop_requested: bool = False
    stop_seen: bool = False

    @property
    def offset(self) -> int:
        return int(sum(self.counts[: self.rank]))

    @property
    def n_local(self) -> int:
        return int(self.counts[self.rank])

    @property
    def n_total(self) -> int:
        return int(sum(self.counts))

    @property
    def rows(self) -> slice:
        """This process's rows of the union."""
        return slice(self.offset, self.offset + self.n_local)

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """All-reduce (sum) ``t`` over the processes, in place; returns ``t``."""
        import torch.distributed as dist

        self._reduce(t, dist.ReduceOp.SUM)
        return t

    def _reduce(self, t: torch.Tensor, op) -> None:
        """All-reduce ``t`` in place, with the stop flag appended as one more number."""
        import torch.distributed as dist

        flag = 1.0 if self.stop_requested else 0.0
        buf = torch.cat([t.reshape(-1).to(self.device), torch.tensor([flag], dtype=t.dtype, device=self.device)])
        self.bytes_reduced += t.numel() * t.element_size()
        self.calls += 1
        dist.all_reduce(buf, op=op, group=self.group)
        if float(buf[-1]) > 0:
            self.stop_seen = True
        t.copy_(buf[:-1].reshape(t.shape))

    def sum_floats(self, values) -> list[float]:
        """The sums over processes of a few numbers (float64)."""
        t = torch.tensor([float(v) for v in values], dtype=torch.float64)
        return [float(v) for v in self.sum_(t)]

    def max_float(self, value: float) -> float:
        """The largest ``value`` over processes."""
        import torch.distributed as dist

        t = torch.tensor([float(value)], dtype=torch.float64)
        self._reduce(t, dist.ReduceOp.MAX)
        return float(t)

    def orth(self, Y: torch.Tensor) -> torch.Tensor:
        """An orthonormal basis of the columns of the row-partitioned ``Y`` (local rows x k).

        Cholesky QR twice (CholeskyQR2, Fukaya et al. 2014) with the k x k Gram matrix all-reduced,
        in float64: the local rows of ``Q`` such that ``Q`` over all processes is orthonormal.
        Spans the same space as a Householder QR of the stacked ``Y``.
        """
        Q = Y.double()
        for _ in range(2):
            G = self.sum_(Q.T @ Q)
            evals = torch.linalg.eigvalsh(G)
            shift = float(evals.max()) * 1e-14  # keeps the factorization defined for a rank-deficient Y
            R = torch.linalg.cholesky(G + shift * torch.eye(G.shape[0], dtype=G.dtype, device=G.device))
            Q = torch.linalg.solve_triangular(R, Q.T, upper=False).T  # Q R^-T with R lower: Q (L^T)^-1
        return Q.to(Y.dtype).contiguous()

    def gram_svd(self, B: torch.Tensor, rank: int):
        """Top ``rank`` singular triplets of the column-partitioned ``B`` (k x local samples).

        Through the all-reduced k x k matrix ``B B^T`` in float64: ``(Ub, S, V_local)``, ``V``'s
        local rows (samples x rank).  Equal to an SVD of the whole ``B`` up to the signs of the
        singular vectors (which NNDSVD ignores).
        """
        Bd = B.double()
        evals, evecs = torch.linalg.eigh(self.sum_(Bd @ Bd.T))
        order = torch.argsort(evals, descending=True)[:rank]
        S = evals[order].clamp_min(0).sqrt()
        Ub = evecs[:, order]
        V = (Bd.T @ Ub) / S.clamp_min(1e-300)
        return Ub, S, V

    def check_stop(self) -> None:
        """Raise KeyboardInterrupt when an all-reduce carried some process's stop request.

        No communication: every process saw the same all-reduces, so all of them raise at the
        same call (the next one after the request travelled).
        """
        if self.stop_seen:
            self.stop_requested = self.stop_seen = False
            raise KeyboardInterrupt("stopped: a process of the distributed fit was interrupted")

    @contextlib.contextmanager
    def deferred_interrupts(self):
        """While inside, SIGINT sets :attr:`stop_requested` instead of raising (a second one raises).

        Only in the main thread (where Python delivers signals); elsewhere nothing changes.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self.stop_requested:
                raise KeyboardInterrupt
            self.stop_requested = True

        old = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, old)

    def settings(self) -> dict:
        """What a distributed fit records in ``settings["distributed"]``."""
        return {"world_size": int(self.world_size), "rank": int(self.rank), "n_local": self.n_local}


def _backend_device() -> torch.device:
    import torch.distributed as dist

    if dist.get_backend() == "nccl":  # pragma: no cover - needs GPUs
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def connect(acts, summary: Mapping[str, object] | None = None, *, check=None) -> Comm:
    """Check that every process is ready for the same distributed fit, and describe the split.

    All-gathers, from every process: its sample count, its blocks' names and feature counts,
    which blocks are signed, ``summary`` (the fit's settings, which must agree) and the result of
    ``check(acts)`` (the local input checks, e.g. NaN or negative values).  Raises the same clear
    error on every process when one failed or when they differ (naming the block and the ranks),
    so that no process is left waiting in a collective.
    """
    import torch.distributed as dist

    _require_group()
    error = None
    if check is not None:
        try:
            check(acts)
        except PeeklensError as e:
            error = f"{type(e).__name__}: {e}"
    mine = {
        "n": int(acts.n_samples),
        "blocks": [(n, int(acts[n].n_features), bool(getattr(acts[n], "signed", False))) for n in acts.names],
        "summary": {k: repr(v) for k, v in dict(summary or {}).items()},
        "error": error,
    }
    world, rank = dist.get_world_size(), dist.get_rank()
    everyone: list = [None] * world
    dist.all_gather_object(everyone, mine)
    failed = [(i, p["error"]) for i, p in enumerate(everyone) if p["error"]]
    if failed:
        i, msg = failed[0]
        others = f" (and on ranks {[j for j, _ in failed[1:]]})" if len(failed) > 1 else ""
        raise InputError(f"distributed fit: the data of rank {i} was refused{others}: {msg}")
    _compare(everyone)
    return Comm(world, rank, [p["n"] for p in everyone], device=_backend_device())


def _compare(everyone: list[dict]) -> None:
    ref = everyone[0]
    ref_names = [b[0] for b in ref["blocks"]]
    for i, p in enumerate(everyone[1:], start=1):
        names = [b[0] for b in p["blocks"]]
        if names != ref_names:
            raise InputError(
                f"distributed fit: rank {i} has blocks {names} but rank 0 has {ref_names}; every process "
                "must capture the same layers (same model, same capture settings)"
            )
    for j, name in enumerate(ref_names):
        shapes = {}
        for i, p in enumerate(everyone):
            shapes.setdefault(p["blocks"][j][1:], []).append(i)
        if len(shapes) > 1:
            described = "; ".join(
                f"{feat} features{' (signed)' if sg else ''} on ranks {ranks}" for (feat, sg), ranks in shapes.items()
            )
            raise InputError(
                f"distributed fit: block {name!r} differs between processes: {described}; every process must "
                "hold the same features (only the samples differ)"
            )
    for key, value in ref["summary"].items():
        differ = [i for i, p in enumerate(everyone) if p["summary"].get(key) != value]
        if differ:
            raise InputError(
                f"distributed fit: {key}={value} on rank 0 but {everyone[differ[0]]['summary'].get(key)} on ranks "
                f"{differ}; call it with the same arguments on every process"
            )
    empty = [i for i, p in enumerate(everyone) if p["n"] == 0]
    if empty:
        raise InputError(f"distributed fit: ranks {empty} hold no samples; give every process at least one")


def is_distributed(obj) -> bool:
    """Whether ``obj`` (a Factorization or Sweep) comes from a distributed fit and holds local rows only."""
    fits = _fits_of(obj)
    return any(_local_info(f) is not None for f in fits)


def _fits_of(obj) -> list:
    from ..results import Factorization, Sweep

    if isinstance(obj, Factorization):
        return [obj]
    if isinstance(obj, Sweep):
        return list(obj.fits.values())
    return []


def _local_info(fit) -> dict | None:
    info = (fit.settings or {}).get("distributed")
    if isinstance(info, Mapping) and not info.get("gathered", False):
        return dict(info)
    return None


def _gather_rows(a: np.ndarray | None, axis: int):
    """The arrays of every process concatenated along ``axis`` in rank order, on rank 0 (None elsewhere)."""
    import torch.distributed as dist

    world, rank = dist.get_world_size(), dist.get_rank()
    dev = _backend_device()
    present = torch.tensor([0 if a is None else 1], device=dev)
    dist.all_reduce(present, op=dist.ReduceOp.MIN)
    if not int(present):
        return None
    a = np.moveaxis(np.asarray(a), axis, 0)
    t = torch.from_numpy(np.ascontiguousarray(a))
    sizes = [torch.zeros(1, dtype=torch.int64, device=dev) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([t.shape[0]], dtype=torch.int64, device=dev))
    sizes = [int(s) for s in sizes]
    big = max(sizes)
    pad = torch.zeros((big, *t.shape[1:]), dtype=t.dtype)
    pad[: t.shape[0]] = t
    pad = pad.to(dev)
    out = [torch.empty_like(pad) for _ in range(world)] if rank == 0 else None
    dist.gather(pad, out, dst=0)
    if rank != 0:
        return None
    whole = torch.cat([o[:s].cpu() for o, s in zip(out, sizes)], dim=0).numpy()
    return np.moveaxis(whole, 0, axis)


def gather_fit(fit):
    """The full :class:`~peeklens.Factorization` of a distributed fit on rank 0, ``None`` elsewhere.

    Collective: call it on every process.  ``F`` (and the per-sample ``labels`` and ``inputs``)
    are gathered in rank order; everything else is the same on every process already.  A fit
    that is not distributed is returned as it is.
    """
    info = _local_info(fit)
    if info is None:
        return fit
    import torch.distributed as dist

    _require_group()
    if dist.get_world_size() != info["world_size"]:
        raise DistributedError(
            f"this fit was made by {info['world_size']} processes but the process group has "
            f"{dist.get_world_size()}; gather it in the group that fitted it"
        )
    F = _gather_rows(fit.F, 0)
    labels = _gather_rows(fit.labels, 0)
    inputs = None
    if fit.inputs:
        inputs = {n: _gather_rows(a, 1) for n, a in sorted(fit.inputs.items())}
    if dist.get_rank() != 0:
        return None
    settings = dict(fit.settings)
    settings["distributed"] = {"world_size": info["world_size"], "gathered": True}
    return replace(fit, F=F, labels=labels, inputs=inputs, settings=settings)


def gather_for_save(obj):
    """What :func:`peeklens.save` writes for ``obj``: the gathered fit(s) on rank 0, ``None`` on the other
    processes of a distributed fit (they write nothing), ``obj`` itself otherwise.  Collective for
    distributed fits."""
    from ..results import Factorization, Sweep

    if not is_distributed(obj):
        return obj
    if isinstance(obj, Factorization):
        return gather_fit(obj)
    assert isinstance(obj, Sweep)
    fits = {r: gather_fit(f) for r, f in obj.fits.items()}
    if any(f is None for f in fits.values()):
        return None
    return Sweep(fits, interrupted=obj.interrupted, requested=list(obj.requested), meta=dict(obj.meta))


def save(obj, path, **kwargs):
    """:func:`peeklens.save` for the result of a distributed fit: collective, call it on every process.

    Rank 0 gathers ``F`` and writes one file, equal to what one process would write for the same
    data; the other processes write nothing.  Returns the path on every process.  Anything else
    is saved as :func:`peeklens.save` does.
    """
    from pathlib import Path

    from ..io import save as save_file

    whole = gather_for_save(obj)
    if whole is None:
        return Path(path)
    return save_file(whole, path, **kwargs)


def spectrum_values(acts, k: int, device, seed: int, n_iter: int, exact_limit: int):
    """The singular values of every block of the union of the processes' samples, for
    :func:`peeklens.spectrum` (``distributed=True``): ``(values, entropy_rank, stable_rank, method,
    n_samples)``, the same on every process.  Collective.

    Blocks of at most ``exact_limit`` features: eigenvalues of the all-reduced ``X X^T`` (exact).
    Wider blocks: a randomized range finder over the processes (``k + 10`` columns, ``n_iter``
    power iterations, the test matrix drawn for all samples from ``seed``), then the singular
    values of the small projected matrix.
    """
    import warnings

    from ..spectra import entropy_rank, stable_rank
    from ._linalg import range_sketch
    from ._problem import Problem, chunked_norm2

    comm = connect(acts, {"k": k, "seed": seed, "n_iter": n_iter}, check=check_blocks_finite)
    values, ent, stab, method = {}, {}, {}, {}
    for name in acts.names:
        data = np.asarray(acts[name].data, dtype=np.float32)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*not writable.*")
            X = torch.from_numpy(data).to(device)
        m, n = X.shape[0], comm.n_total
        kk = min(k, m, n)
        fro2 = comm.sum_floats([chunked_norm2(X)])[0]
        if m <= exact_limit:
            G = comm.sum_(X @ X.T)
            s = torch.sqrt(torch.clamp(torch.linalg.eigvalsh(G.double()).flip(0), min=0))[: min(m, n)]
            method[name] = "exact"
            ent[name] = entropy_rank(s.cpu().numpy())
        else:
            problem = Problem([name], [X], [1.0], [fro2], X.device, comm=comm)
            sketch = range_sketch(problem, min(kk + 10, m, n), power_iter=n_iter, seed=seed)
            _, s, _ = comm.gram_svd(sketch.B, sketch.k)
            method[name] = "randomized"
            ent[name] = entropy_rank(s[:kk].cpu().numpy())
        top = s[:kk].cpu().numpy()
        values[name] = top
        stab[name] = stable_rank(fro2, float(top[0]) if top.size else 0.0)
    return values, ent, stab, method, comm.n_total


def check_blocks_finite(acts) -> None:
    """Refuse empty blocks and NaN or Inf values (a spectrum allows negative values)."""
    from ._problem import finite_min_max

    for name in acts.names:
        data = acts[name].data
        if data.size == 0:
            raise InputError(f"block {name!r} is empty (shape {data.shape}); it has no spectrum")
        if finite_min_max(data)[0] is None:
            raise InputError(f"block {name!r} has NaN or Inf values; its spectrum is undefined")


def shard(n: int, world_size: int | None = None, rank: int | None = None) -> slice:
    """This process's contiguous share of ``n`` samples, in rank order (the first ``n % world_size``
    processes take one more), e.g. ``Subset(test_set, range(n)[shard(n)])`` before :func:`peeklens.capture`.

    Defaults to the initialized process group's size and rank.  Contiguous shares in rank order
    make the union of the processes' samples the first ``n`` samples in their order, so that a
    distributed fit equals the single-process fit of the same samples.

    >>> [shard(10, 3, r) for r in range(3)]
    [slice(0, 4, None), slice(4, 7, None), slice(7, 10, None)]
    """
    if world_size is None or rank is None:
        import torch.distributed as dist

        _require_group()
        world_size, rank = dist.get_world_size(), dist.get_rank()
    base, extra = divmod(int(n), int(world_size))
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (1 if rank < extra else 0))


def init_from_env(backend: str | None = None) -> bool:
    """Join the process group of a ``torchrun`` launch; ``False`` (nothing done) outside one.

    ``torchrun`` sets ``WORLD_SIZE``, ``RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in every
    process; with ``WORLD_SIZE`` above 1 this initializes ``torch.distributed`` from them (``gloo``,
    or ``nccl`` when CUDA is available, unless ``backend`` is given) and returns ``True``.  An
    already initialized group is kept.

    >>> import os
    >>> "WORLD_SIZE" in os.environ or init_from_env()
    False
    """
    import os

    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_available():
        raise DistributedError(f"launched by torchrun (WORLD_SIZE={os.environ['WORLD_SIZE']}) but this PyTorch has no "
                               "torch.distributed")  # fmt: skip
    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend, init_method="env://")
    return True


def broadcast_module(module: torch.nn.Module, src: int = 0) -> torch.nn.Module:
    """Give every process ``src``'s parameters and buffers (in place), e.g. a network trained on rank 0
    only, so that every process captures the activations of the same model.  Collective."""
    import torch.distributed as dist

    _require_group()
    dev = _backend_device()
    for t in [*module.parameters(), *module.buffers()]:
        buf = t.detach().to(dev)
        dist.broadcast(buf, src=src)
        if buf is not t:
            with torch.no_grad():
                t.copy_(buf)
    return module
