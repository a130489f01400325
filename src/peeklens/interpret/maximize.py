"""Activation maximization of a factor: the input that drives ``<activation(layer), O_layer[:, factor]>`` up."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..errors import InputError
from ..results import Factorization
from ._image import PARAMETERIZATIONS, ImageParam, default_jitter, random_warp
from ._inputs import fit_inputs, input_spec, positive_int, run_device
from ._runtime import prepared
from ._target import factor_objective
from .results import Maximized

__all__ = ["maximize"]


def _style(a: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Per-sample style vector for diversity: the flattened channel Gram matrix (conv) or the activation."""
    if len(shape) == 3:
        f = a.reshape(a.shape[0], shape[0], -1)
        g = f @ f.transpose(1, 2) / f.shape[-1]
        return g.reshape(a.shape[0], -1)
    return a


def reference_score(objective, fit: Factorization, spec, factor: int, device) -> float:
    """The factor's activation of its top captured input, or nan without inputs."""
    if not fit.inputs or not spec.names:
        return float("nan")
    top = int(np.argmax(np.asarray(fit.F)[:, factor]))
    with torch.no_grad():
        return float(objective(fit_inputs(fit, spec, [top]).to(device))[0])


def maximize(
    model: nn.Module,
    fit: Factorization,
    layer: str,
    factor: int,
    *,
    n: int = 1,
    steps: int = 256,
    lr: float = 0.05,
    param: str = "fourier",
    decorrelate: bool = True,
    jitter: float | None = None,
    scale: tuple[float, float] | None = None,
    rotate: float | None = None,
    diversity: float = 2.0,
    seed: int = 0,
    device: str | torch.device | None = None,
    preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
    input_shape: tuple[int, ...] | None = None,
    value_range: tuple[float, float] | None = None,
    progress: bool = True,
) -> Maximized:
    """The input(s) that maximize factor ``factor``'s activation in ``layer``.

    The factor's activation of an input x is ``<a(x), w>``: the layer's activation as captured
    (flattened, pooled and made non-negative as :func:`peeklens.capture` did), dotted with the
    factor's loading vector ``w = fit.loadings[layer][:, factor]``.  It is maximized with Adam over
    a parameterized image under random transforms, as feature visualization does for neurons
    (Olah et al. 2017; Lucid/Lucent); MACO (Fel et al. 2023) is ``param="maco"``.

    Parameters
    ----------
    model : torch.nn.Module
        The model the activations were captured from (weights are not changed; eval mode).
    fit : Factorization
        A factorization of its captured activations (``pl.factorize``, ``sweep[rank]``, ``pl.load``).
    layer : str
        A layer block of ``fit``: a module name (forward hook) or an FX node name (``"relu"``), as
        capture named it.
    factor : int
        Factor index, ``0 <= factor < fit.rank``.
    n : int, default 1
        Number of images.  They are optimized one after another; from the second on, a diversity
        term pushes each away from the finished ones (cosine of the layer's channel Gram matrices,
        Lucid's diversity objective).  Ctrl-C keeps the finished ones.
    steps : int, default 256
        Adam steps per image.
    lr : float, default 0.05
        Adam's learning rate.
    param : {"fourier", "maco", "pixel"}, default "fourier"
        The image parameterization (see :mod:`peeklens.interpret._image`).  Flat inputs use
        ``"pixel"``.
    decorrelate : bool, default True
        For 3-channel inputs, decorrelate colours with the square root of the captured inputs'
        channel covariance (ImageNet's when the factorization carries no inputs).
    jitter : float, optional
        Random translation by whole pixels at every step; default 1 pixel per 28 of the input side
        (8 at 224 px, as Lucid).  0 disables it.
    scale : (float, float), optional
        Range of the random scaling; default (0.9, 1.1) for inputs of 64 pixels or more, none
        (``(1, 1)``) for smaller ones.
    rotate : float, optional
        Random rotation up to this many degrees; default 10 for inputs of 64 pixels or more, 0 for
        smaller ones.  Measured on the planted test (28 x 28, 5 x 5 detector): scaling and rotation
        resample the image, which blurs strokes a few pixels wide, and the maximized pattern's
        correlation with the planted one fell from 0.92 (whole-pixel jitter only) to 0.65
        (+/- 10 % scale, 10 degrees) -- no better than a random direction's (0.44-0.57).
    diversity : float, default 2.0
        Weight of the diversity term (``n > 1``), relative to the objective, which is measured in
        units of the factor's activation of its top captured input.  Measured on the trained paper
        network (``relu_1``, 4 images, factors 0 and 3): the images' mean pairwise correlation is
        0.43 / 0.50 without it, 0.41 / 0.46 at 1, 0.15 / 0.36 at 2 (scores 1.06-1.21 x the top input),
        0.09 / 0.16 at 3 (scores down to 0.89 x).
    seed : int, default 0
        Seeds the initial parameters and the transforms (drawn on the CPU): the same seed gives the
        same images on the same device.
    device : str or torch.device, optional
        Where to work; default: where the model is.  The model is moved back afterwards.
    preprocess : callable, optional
        Maps inputs from the captured space (what ``fit.inputs`` holds, e.g. [0, 1] pixels when
        capture had ``input_transform=studies.denormalizer("mnist")``) to what the model takes
        (e.g. the normalization).  Default: identity.
    input_shape : tuple of int, optional
        Per-sample input shape; default ``(C, H, W)`` from the factorization's input blocks.
    value_range : (float, float), optional
        Range of the generated inputs; default the min/max of ``fit.inputs``, else (0, 1).
    progress : bool, default True
        A tqdm progress bar over all steps.

    Returns
    -------
    Maximized
        ``inputs`` ``(n, *input_shape)``, ``scores``, ``reference`` (the top captured input's score),
        per-step ``history``; ``.images`` for display.

    Raises
    ------
    LayerNotFoundError
        ``layer`` is not a layer block of ``fit``, or the model has no such layer (closest names
        listed).
    InputError
        ``factor`` out of range, bad options, an input shape the layer does not fit.

    Examples
    --------
    >>> import torch, peeklens as pl
    >>> from torch import nn
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
    >>> acts = pl.capture(model, torch.rand(30, 1, 8, 8), layers=["1"], progress=False)
    >>> fit = pl.factorize(acts, rank=2, max_iter=20)
    >>> m = pl.maximize(model, fit, "1", 0, steps=20, progress=False)
    >>> m.inputs.shape, m.images.shape
    ((1, 1, 8, 8), (1, 8, 8))
    >>> bool(m.scores[0] > m.history[0, 0])
    True
    """
    objective = factor_objective(model, fit, layer, factor, preprocess)
    factor = int(factor)
    n = positive_int("n", n)
    steps = positive_int("steps", steps)
    if param not in PARAMETERIZATIONS:
        raise InputError(f"param must be one of {PARAMETERIZATIONS}, got {param!r}")
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise InputError(f"lr must be a positive number, got {lr!r}")
    spec = input_spec(fit, input_shape, value_range)
    large = spec.is_image and min(spec.shape[1:]) >= 64
    scale = ((0.9, 1.1) if large else (1.0, 1.0)) if scale is None else scale
    rotate = (10.0 if large else 0.0) if rotate is None else float(rotate)
    try:
        scale = tuple(float(v) for v in scale)
    except (TypeError, ValueError):
        scale = ()
    if len(scale) != 2 or not 0 < scale[0] <= scale[1]:
        raise InputError(f"scale must be (low, high) with 0 < low <= high, got {scale!r}")
    jitter = default_jitter(spec) if jitter is None else float(jitter)
    for name, v in (("jitter", jitter), ("rotate", rotate), ("diversity", diversity)):
        if not (isinstance(v, (int, float)) and v >= 0):
            raise InputError(f"{name} must be a non-negative number, got {v!r}")
    if not spec.is_image:
        jitter, scale, rotate = 0.0, (1.0, 1.0), 0.0
    dev = run_device(model, device)
    settings = {
        "steps": steps,
        "lr": float(lr),
        "param": param,
        "decorrelate": bool(decorrelate),
        "jitter": jitter,
        "scale": [float(scale[0]), float(scale[1])],
        "rotate": float(rotate),
        "diversity": float(diversity),
        "seed": int(seed),
        "device": str(dev),
        "value_range": [spec.low, spec.high],
    }
    gen = torch.Generator().manual_seed(int(seed))
    done_x: list[np.ndarray] = []
    done_s: list[float] = []
    hist = np.full((n, steps), np.nan, dtype=np.float32)
    styles: list[torch.Tensor] = []
    interrupted = False
    with prepared(model, dev):
        objective.to(dev)  # the loading, and tensors an FX graph holds itself (get_attr)
        ref = reference_score(objective, fit, spec, factor, dev)
        unit = ref if (math.isfinite(ref) and ref > 0) else 1.0
        bar = tqdm(total=n * steps, desc=f"maximize {layer} #{factor}", unit="step", disable=not progress)
        try:
            for i in range(n):
                img = ImageParam(spec, param, 1, generator=gen, decorrelate=decorrelate).to(dev)
                opt = torch.optim.Adam(img.parameters(), lr=lr)
                for t in range(steps):
                    opt.zero_grad(set_to_none=True)
                    x = img()
                    if spec.is_image:
                        x = random_warp(x, gen, jitter=jitter, scale=scale, rotate=rotate)
                    score, act = objective.run(x)
                    loss = -score.mean() / unit
                    if styles and diversity:
                        s = nn.functional.normalize(_style(act, objective.spec.shape), dim=1)
                        loss = loss + diversity * torch.stack([(s * o).sum() for o in styles]).mean()
                    loss.backward()
                    opt.step()
                    hist[i, t] = float(score.detach().mean())
                    bar.update(1)
                with torch.no_grad():
                    x = img()
                    score, act = objective.run(x)
                done_x.append(x.detach().cpu().numpy().astype(np.float32))
                done_s.append(float(score[0]))
                styles.append(nn.functional.normalize(_style(act, objective.spec.shape), dim=1).detach())
        except KeyboardInterrupt:
            if not done_x:
                raise
            interrupted = True
            warnings.warn(f"maximize interrupted: keeping the {len(done_x)} of {n} images that finished", stacklevel=2)
        finally:
            bar.close()
    return Maximized(
        layer=layer,
        factor=factor,
        inputs=np.concatenate(done_x, axis=0),
        scores=np.asarray(done_s, np.float32),
        history=hist[: len(done_x)],
        reference=ref,
        interrupted=interrupted,
        settings=settings,
    )
