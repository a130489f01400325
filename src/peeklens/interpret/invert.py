"""Inversion of a factor: an input whose activation in a layer reproduces the factor's loading pattern."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..errors import InputError
from ..results import Factorization
from ._image import random_warp, total_variation
from ._inputs import input_spec, positive_int, run_device
from ._runtime import prepared
from ._target import factor_objective
from .results import Inversion

__all__ = ["invert"]


def invert(
    model: nn.Module,
    fit: Factorization,
    layer: str,
    factor: int,
    *,
    steps: int = 400,
    lr: float = 0.05,
    tv: float = 0.05,
    beta: float = 2.0,
    range_weight: float = 10.0,
    jitter: float = 0.0,
    seed: int = 0,
    device: str | torch.device | None = None,
    preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
    input_shape: tuple[int, ...] | None = None,
    value_range: tuple[float, float] | None = None,
    progress: bool = True,
) -> Inversion:
    """An input whose activation in ``layer`` points along factor ``factor``'s loading vector.

    Mahendran & Vedaldi (2015)-style inversion: free pixels ``x`` minimize

        1 - cos(a(x), w) + tv * TV_beta(x) + range_weight * R(x)

    where ``a(x)`` is the layer's activation as captured, ``w = fit.loadings[layer][:, factor]``,
    ``TV_beta`` the total-variation prior (mean of ``(dx^2 + dy^2)^(beta/2)``) and ``R`` the mean
    squared excursion outside the input range; both priors are measured on the input rescaled to
    [0, 1].  Where maximization asks "what drives the factor up", inversion asks "what input gives
    exactly this pattern of activity": the cosine says how well the layer can produce it.

    Parameters
    ----------
    model, fit, layer, factor
        As for :func:`peeklens.maximize`.
    steps : int, default 400
        Adam steps.
    lr : float, default 0.05
        Adam's learning rate (on the [0, 1]-rescaled input).
    tv : float, default 0.05
        Weight of the total-variation prior (0: none).
    beta : float, default 2
        Exponent of the total-variation prior.
    range_weight : float, default 10
        Weight of the range penalty; the result is clipped to the range at the end.
    jitter : float, default 0
        Random translation (pixels) at each step, as in Mahendran & Vedaldi's jittered variant.
    seed : int, default 0
        Seeds the initial input (mid-range plus 1 % noise) and the jitter.
    device, preprocess, input_shape, value_range, progress
        As for :func:`peeklens.maximize`.

    Returns
    -------
    Inversion
        ``inputs`` ``(1, *input_shape)``, the final ``cosine`` (after clipping to the range) and its
        per-step ``history``.  Ctrl-C returns the input reached so far with ``interrupted=True``.

    Examples
    --------
    >>> import torch, peeklens as pl
    >>> from torch import nn
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
    >>> acts = pl.capture(model, torch.rand(30, 1, 8, 8), layers=["1"], progress=False)
    >>> fit = pl.factorize(acts, rank=2, max_iter=20)
    >>> inv = pl.invert(model, fit, "1", 1, steps=100, progress=False)
    >>> inv.inputs.shape, bool(inv.cosine > inv.history[0])
    ((1, 1, 8, 8), True)
    """
    objective = factor_objective(model, fit, layer, factor, preprocess)
    factor = int(factor)
    steps = positive_int("steps", steps)
    for name, v in (("lr", lr), ("tv", tv), ("range_weight", range_weight), ("jitter", jitter), ("beta", beta)):
        if not isinstance(v, (int, float)) or v < 0 or (name in ("lr", "beta") and v == 0):
            raise InputError(
                f"{name} must be a {'positive' if name in ('lr', 'beta') else 'non-negative'} number, got {v!r}"
            )
    spec = input_spec(fit, input_shape, value_range, stats=False)
    dev = run_device(model, device)
    gen = torch.Generator().manual_seed(int(seed))
    lo, span = spec.low, spec.high - spec.low
    settings = {
        "steps": steps,
        "lr": float(lr),
        "tv": float(tv),
        "beta": float(beta),
        "range_weight": float(range_weight),
        "jitter": float(jitter),
        "seed": int(seed),
        "device": str(dev),
        "value_range": [spec.low, spec.high],
    }
    p0 = 0.5 + 0.01 * torch.randn((1,) + spec.shape, generator=gen)
    hist = np.full(steps, np.nan, dtype=np.float32)
    interrupted = False
    with prepared(model, dev):
        objective.to(dev)  # the loading, and tensors an FX graph holds itself (get_attr)
        w = objective.loading
        p = nn.Parameter(p0.to(dev))
        opt = torch.optim.Adam([p], lr=lr)
        bar = tqdm(total=steps, desc=f"invert {layer} #{factor}", unit="step", disable=not progress)
        try:
            for t in range(steps):
                opt.zero_grad(set_to_none=True)
                x = p
                if jitter > 0 and spec.is_image:
                    x = random_warp(x, gen, jitter=jitter)
                _, a = objective.run(lo + span * x)
                cos = nn.functional.cosine_similarity(a, w[None], dim=1, eps=1e-12)[0]
                loss = 1 - cos
                if tv:
                    loss = loss + tv * total_variation(p, beta)[0]
                if range_weight:
                    loss = loss + range_weight * (torch.relu(-p) ** 2 + torch.relu(p - 1) ** 2).mean()
                loss.backward()
                opt.step()
                hist[t] = float(cos.detach())
                bar.update(1)
        except KeyboardInterrupt:
            interrupted = True
            warnings.warn(
                f"invert interrupted after {int(np.isfinite(hist).sum())} of {steps} steps; "
                "returning the input reached so far",
                stacklevel=2,
            )
        finally:
            bar.close()
        with torch.no_grad():
            x = lo + span * p.detach().clamp(0, 1)
            _, a = objective.run(x)
            cos = float(nn.functional.cosine_similarity(a, w[None], dim=1, eps=1e-12)[0])
    return Inversion(
        layer=layer,
        factor=factor,
        inputs=x.cpu().numpy().astype(np.float32),
        cosine=cos,
        history=hist,
        interrupted=interrupted,
        settings=settings,
    )
