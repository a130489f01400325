"""Attribution of a factor: where in each input the evidence for ``<activation(layer), O_layer[:, factor]>`` lies."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from ..results import Factorization
from ._inputs import as_batch, fit_inputs, input_spec, positive_int, run_device
from ._runtime import no_inplace, prepared
from ._target import factor_objective, relu_modules
from .results import Attribution

__all__ = ["ATTRIBUTION_METHODS", "attribute", "cell_centres", "hottest_boxes", "onto_input"]

ATTRIBUTION_METHODS = ("guided_backprop", "deconvnet", "integrated_gradients", "spatial")


def _captum_attr():
    try:
        import captum.attr as ca
    except ImportError as e:
        raise ImportError(
            "the gradient attribution methods (guided_backprop, deconvnet, integrated_gradients) use Captum: "
            "pip install 'peeklens[interpret]' (or pip install captum). method='spatial' works without it."
        ) from e
    return ca


def _gradient_attribution(ca, method, objective, xb, spec, baseline, ig_steps, batch_size, dev) -> torch.Tensor:
    if method == "guided_backprop":
        return ca.GuidedBackprop(objective).attribute(xb)
    if method == "deconvnet":
        return ca.Deconvolution(objective).attribute(xb)
    base = spec.low if baseline is None else baseline
    base = torch.as_tensor(base, dtype=xb.dtype, device=dev)
    base = base.expand_as(xb) if base.ndim == 0 else as_batch(base, spec).to(dev).expand_as(xb)
    return ca.IntegratedGradients(objective).attribute(
        xb, baselines=base.contiguous(), n_steps=ig_steps, internal_batch_size=batch_size
    )


def cell_centres(objective, spec, device) -> tuple[float, float, float, float]:
    """Where the layer's cells sit on the input grid: ``(y0, dy, x0, dx)``, cell (i, j) at (y0 + i dy, x0 + j dx).

    Measured, not assumed: the centre of mass of the input gradient of the first and the last
    cell (channels summed, four random inputs in the range), so padding, strides and pooling of any
    network are accounted for.  Falls back to evenly spread cells (bilinear upsampling's
    ``align_corners=False`` grid) when a gradient is zero.
    """
    C, h, w = objective.spec.shape
    H, W = spec.shape[1:]
    fallback = (0.5 * H / h - 0.5, H / h, 0.5 * W / w - 0.5, W / w)
    g = torch.Generator().manual_seed(0)
    x = spec.low + (spec.high - spec.low) * torch.rand((4,) + tuple(spec.shape), generator=g)
    x = x.to(device).requires_grad_(True)
    with torch.enable_grad():
        act = objective.activation(x).reshape(4, C, h, w)
        centres = []
        for i, j in ((0, 0), (h - 1, w - 1)):
            (grad,) = torch.autograd.grad(act[:, :, i, j].sum(), x, retain_graph=True, allow_unused=True)
            if grad is None:
                return fallback
            m = grad.detach().abs().sum(dim=(0, 1)).double().cpu()
            tot = float(m.sum())
            if not tot > 0:
                return fallback
            cy = float((m.sum(dim=1) * torch.arange(H, dtype=torch.float64)).sum()) / tot
            cx = float((m.sum(dim=0) * torch.arange(W, dtype=torch.float64)).sum()) / tot
            centres.append((cy, cx))
    (ya, xa), (yb, xb) = centres
    dy = (yb - ya) / (h - 1) if h > 1 else 1.0
    dx = (xb - xa) / (w - 1) if w > 1 else 1.0
    if dy <= 0 or dx <= 0:
        return fallback
    return ya, dy, xa, dx


def _interp_matrix(n_out: int, n_in: int, start: float, step: float) -> torch.Tensor:
    pos = ((torch.arange(n_out, dtype=torch.float64) - start) / step).clamp(0, n_in - 1)
    R = torch.zeros(n_out, n_in, dtype=torch.float64)
    if n_in == 1:
        R[:, 0] = 1
        return R
    i0 = pos.floor().clamp(max=n_in - 2).long()
    f = pos - i0
    rows = torch.arange(n_out)
    R[rows, i0] = 1 - f
    R[rows, i0 + 1] = f
    return R


def onto_input(maps: torch.Tensor, size: tuple[int, int], centres) -> torch.Tensor:
    """Bilinear interpolation of (N, h, w) layer maps onto the (H, W) input grid, cells at ``centres``.

    Beyond the first and last cell centres the edge values continue.

    Examples
    --------
    >>> import torch
    >>> onto_input(torch.tensor([[[0.0, 1.0]]]), (1, 5), (0.0, 1.0, 1.0, 2.0)).tolist()
    [[[0.0, 0.0, 0.5, 1.0, 1.0]]]
    """
    y0, dy, x0, dx = centres
    Ry = _interp_matrix(size[0], maps.shape[1], y0, dy).to(maps)
    Rx = _interp_matrix(size[1], maps.shape[2], x0, dx).to(maps)
    return Ry @ maps @ Rx.T


def hottest_boxes(heatmaps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, 4) ``top, left, height, width`` of the ``size`` window with the largest total heat per map.

    Examples
    --------
    >>> import torch
    >>> h = torch.zeros(1, 10, 10); h[0, 6, 2] = 1.0
    >>> hottest_boxes(h, (3, 3)).tolist()
    [[5, 1, 3, 3]]
    """
    ch, cw = size
    pooled = nn.functional.avg_pool2d(heatmaps[:, None].float(), (ch, cw), stride=1)[:, 0]  # (N, H-ch+1, W-cw+1)
    # Ties (flat regions) go to the window centred on the hottest pixel rather than the first one.
    hp, wp = pooled.shape[1:]
    pooled = pooled + 1e-6 * heatmaps[:, ch // 2 : ch // 2 + hp, cw // 2 : cw // 2 + wp].float()
    flat = pooled.reshape(len(pooled), -1).argmax(dim=1)
    top, left = flat // pooled.shape[2], flat % pooled.shape[2]
    n = len(heatmaps)
    return torch.stack([top, left, torch.full((n,), ch), torch.full((n,), cw)], dim=1).long()


def attribute(
    model: nn.Module,
    fit: Factorization,
    layer: str,
    factor: int,
    inputs=None,
    *,
    method: str = "guided_backprop",
    k: int = 8,
    crops: bool = False,
    crop_size: int | tuple[int, int] | None = None,
    ig_steps: int = 32,
    baseline: float | torch.Tensor | None = None,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> Attribution:
    """Where in each input factor ``factor`` of ``layer`` finds its evidence.

    The scalar attributed is the factor's activation ``<a(x), w>`` (see :func:`peeklens.maximize`).

    Parameters
    ----------
    model, fit, layer, factor
        As for :func:`peeklens.maximize`.
    inputs : tensor, array or None
        Inputs in the captured space, ``(N, *input_shape)`` (one-channel images may be (N, H, W)); or a
        1-D integer array of sample indices of ``fit``; or None: the factor's top ``k`` samples
        (largest ``F[:, factor]``), taken from the inputs the factorization carries.
    method : {"guided_backprop", "deconvnet", "integrated_gradients", "spatial"}
        Gradient maps through Captum (Springenberg et al. 2015; Zeiler & Fergus 2014; Sundararajan
        et al. 2017), or, for convolutional layers, ``"spatial"``: the factor's own map in the layer
        (the loading-weighted activation summed over channels, which sums to the score) upsampled
        bilinearly onto the input grid.  Guided backprop and DeconvNet change the gradient of
        ``nn.ReLU`` modules; functional ``F.relu`` calls are turned into modules when the layer is
        reached through FX, and in-place ReLUs are made out-of-place for the call.
    k : int, default 8
        Number of top inputs when ``inputs`` is None.
    crops : bool, default False
        Also cut each input to its hottest window (the window of ``crop_size`` with the largest
        total heat), as CRAFT shows concepts: ``boxes`` and ``crops`` of the result.
    crop_size : int or (int, int), optional
        Window size in input pixels; default 40 % of the input side.
    ig_steps : int, default 32
        Integration steps of integrated gradients.
    baseline : float or tensor, optional
        Integrated gradients' baseline, in the captured space; default the low end of the input range
        (black).
    batch_size : int, default 64
        Inputs per backward pass.
    device, preprocess, input_shape
        As for :func:`peeklens.maximize`.

    Returns
    -------
    Attribution
        ``heatmaps`` (N, H, W) on the input grid, ``scores``, the raw ``attributions`` (gradient
        methods) or ``layer_maps`` (spatial), and ``boxes`` / ``crops`` with ``crops=True``.

    Raises
    ------
    LayerNotFoundError, InputError
        Unknown layer, factor out of range, unknown method, ``"spatial"`` on a dense layer, inputs
        of the wrong shape.
    ImportError
        A gradient method without Captum installed.

    Examples
    --------
    >>> import torch, peeklens as pl
    >>> from torch import nn
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
    >>> acts = pl.capture(model, torch.rand(30, 1, 8, 8), layers=["1"], progress=False)
    >>> fit = pl.factorize(acts, rank=2, max_iter=20)
    >>> att = pl.attribute(model, fit, "1", 0, method="spatial", k=3, crops=True, crop_size=4)
    >>> att.heatmaps.shape, att.layer_maps.shape, att.crops.shape
    ((3, 8, 8), (3, 6, 6), (3, 1, 4, 4))
    """
    objective = factor_objective(model, fit, layer, factor, preprocess)
    factor = int(factor)
    if method not in ATTRIBUTION_METHODS:
        raise InputError(f"method must be one of {ATTRIBUTION_METHODS}, got {method!r}")
    if method == "spatial" and not objective.spec.is_conv:
        raise InputError(
            f"method='spatial' needs a convolutional layer (per-sample shape (C, H, W)); {layer!r} has shape "
            f"{objective.spec.shape}. Use a gradient method (method='guided_backprop')"
        )
    batch_size = positive_int("batch_size", batch_size)
    ig_steps = positive_int("ig_steps", ig_steps)
    spec = input_spec(fit, input_shape, stats=False)
    if inputs is None:
        k = positive_int("k", k)
        idx = np.argsort(-np.asarray(fit.F)[:, factor], kind="stable")[: min(k, fit.n_samples)]
        x = fit_inputs(fit, spec, idx)
    elif (
        isinstance(inputs, (np.ndarray, torch.Tensor, list))
        and np.asarray(inputs).ndim == 1
        and np.issubdtype(np.asarray(inputs).dtype, np.integer)
    ):
        idx = np.asarray(inputs, dtype=np.int64)
        if idx.size == 0 or idx.min() < 0 or idx.max() >= fit.n_samples:
            raise InputError(f"sample indices must be in 0..{fit.n_samples - 1}, got {idx.tolist()[:8]}")
        x = fit_inputs(fit, spec, idx)
    else:
        x = as_batch(inputs, spec)
        idx = np.full(len(x), -1, dtype=np.int64)
    if crops and not spec.is_image:
        raise InputError("crops=True needs image inputs (C, H, W); these inputs are flat")
    if spec.is_image:
        H, W = spec.shape[1:]
        if crop_size is None:
            size = (max(1, round(0.4 * H)), max(1, round(0.4 * W)))
        else:
            size = (int(crop_size), int(crop_size)) if np.isscalar(crop_size) else tuple(int(c) for c in crop_size)
            if len(size) != 2 or not (1 <= size[0] <= H and 1 <= size[1] <= W):
                raise InputError(f"crop_size must fit in the {H} x {W} input, got {crop_size!r}")
    ca = _captum_attr() if method != "spatial" else None
    dev = run_device(model, device)
    heat, raw, maps, scores = [], [], [], []
    with prepared(model, dev), no_inplace(model):
        objective.to(dev)  # the loading, and tensors an FX graph holds itself (get_attr)
        if method in ("guided_backprop", "deconvnet") and objective.extractor is not None:
            objective.extractor = relu_modules(objective.extractor)
        elif method in ("guided_backprop", "deconvnet") and not any(isinstance(m, nn.ReLU) for m in model.modules()):
            warnings.warn(
                f"{type(model).__name__} has no nn.ReLU module, and layer {layer!r} is reached with a forward hook: "
                f"{method} changes the backward pass of nn.ReLU modules only, so here it is the plain gradient. "
                "Factorize a layer captured by its FX node name (e.g. 'relu') to have functional ReLUs rewritten.",
                stacklevel=2,
            )
        if method == "spatial":
            centres = cell_centres(objective, spec, dev)
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size].to(dev)
            if method == "spatial":
                with torch.no_grad():
                    act = objective.activation(xb)
                    C, h, w = objective.spec.shape
                    m = (act.reshape(-1, C, h, w) * objective.loading.reshape(1, C, h, w)).sum(dim=1)
                    s = m.flatten(1).sum(dim=1)
                    up = onto_input(m, (H, W), centres)
                maps.append(m.cpu())
                heat.append(up.clamp(min=0).cpu())
            else:
                xb = xb.clone().requires_grad_(True)
                with warnings.catch_warnings():  # Captum announces its ReLU hooks on every call
                    warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
                    a = _gradient_attribution(ca, method, objective, xb, spec, baseline, ig_steps, batch_size, dev)
                a = a.detach()
                with torch.no_grad():
                    s = objective(xb.detach())
                raw.append(a.cpu())
                if spec.is_image:
                    hm = a.abs().sum(dim=1) if method != "integrated_gradients" else a.sum(dim=1).clamp(min=0)
                else:
                    hm = (a.abs() if method != "integrated_gradients" else a.clamp(min=0)).reshape(len(a), 1, -1)
                heat.append(hm.cpu())
            scores.append(s.detach().cpu())
    heatmaps = torch.cat(heat).float()
    boxes = cut = None
    if crops:
        b = hottest_boxes(heatmaps, size)
        cut = np.stack([x[i, :, t : t + hh, c : c + ww].numpy() for i, (t, c, hh, ww) in enumerate(b.tolist())])
        boxes = b.numpy()
    return Attribution(
        layer=layer,
        factor=factor,
        method=method,
        inputs=x.numpy().astype(np.float32),
        indices=idx,
        scores=torch.cat(scores).numpy().astype(np.float32),
        heatmaps=heatmaps.numpy(),
        attributions=torch.cat(raw).numpy().astype(np.float32) if raw else None,
        layer_maps=torch.cat(maps).numpy().astype(np.float32) if maps else None,
        boxes=boxes,
        crops=None if cut is None else cut.astype(np.float32),
        settings={"ig_steps": ig_steps, "crop_size": list(size) if spec.is_image else None, "device": str(dev)},
    )
