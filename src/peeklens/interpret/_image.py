"""Image parameterizations and random transforms for feature visualization.

* ``"fourier"``: Olah et al. (2017) / Lucid: the image is the inverse real FFT of learned
  coefficients scaled by ``1 / frequency`` (so optimization favours natural, low-frequency
  structure), colours decorrelated with the square root of the captured inputs' channel
  covariance (3-channel inputs), squashed into the input range with a sigmoid.
* ``"maco"``: Fel et al. (2023), magnitude-constrained optimization: the Fourier *amplitude* is
  fixed to the mean amplitude spectrum of the captured inputs (``1 / frequency`` without them) and
  only the *phase* is learned; the image is standardized and squashed into the range.
* ``"pixel"``: one free value per input element, squashed into the range.

:func:`random_warp` applies a random translation, scale and rotation to a batch with a bilinear
gather (reflecting at the borders).  Its backward pass is a gather's, which PyTorch computes
deterministically on CUDA in deterministic mode (``grid_sample``'s backward is not).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._inputs import InputSpec

__all__ = ["PARAMETERIZATIONS", "ImageParam", "default_jitter", "random_warp", "total_variation"]

PARAMETERIZATIONS = ("fourier", "maco", "pixel")


def _inv_freq(H: int, W: int, decay: float) -> torch.Tensor:
    fy = torch.fft.fftfreq(H, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(W, dtype=torch.float64)[None, :]
    freqs = torch.sqrt(fx**2 + fy**2)
    return (1.0 / torch.clamp(freqs, min=1.0 / max(H, W)) ** decay).float()


class ImageParam(nn.Module):
    """A batch of ``batch`` inputs in ``[spec.low, spec.high]``, as a function of learnable parameters.

    ``forward()`` returns ``(batch, *spec.shape)``.  Initial values are drawn from ``generator``
    (on the CPU) so that a seed gives the same start on every device; ``init_std`` is the standard
    deviation of the initial image before the sigmoid (a random texture around mid-range: enough
    contrast that a layer behind a ReLU is not dead at the start, whatever the input size).
    """

    def __init__(
        self,
        spec: InputSpec,
        kind: str = "fourier",
        batch: int = 1,
        *,
        generator: torch.Generator,
        decorrelate: bool = True,
        init_std: float = 1.0,
        decay: float = 1.0,
    ):
        super().__init__()
        self.spec, self.kind = spec, kind
        self.low, self.high = float(spec.low), float(spec.high)
        shape = (batch,) + tuple(spec.shape)
        if kind != "pixel" and not spec.is_image:
            kind = self.kind = "pixel"  # flat inputs have no spectrum
        if kind == "pixel":
            self.p = nn.Parameter(torch.randn(shape, generator=generator) * init_std)
            return
        C, H, W = spec.shape
        self.H, self.W = H, W
        scale = _inv_freq(H, W, decay)  # (H, W//2 + 1)
        if kind == "fourier":
            self.register_buffer("scale", scale)
            self.p = nn.Parameter(torch.randn((batch, C, H, W // 2 + 1, 2), generator=generator))
        elif kind == "maco":
            if spec.amplitude is not None:
                amp = torch.as_tensor(spec.amplitude, dtype=torch.float32)
            else:
                amp = scale.expand(C, -1, -1).clone()
            self.register_buffer("amplitude", amp)
            self.p = nn.Parameter(torch.rand((batch, C, H, W // 2 + 1), generator=generator) * (2 * math.pi) - math.pi)
        else:
            raise ValueError(kind)
        color = spec.color if (decorrelate and C == 3) else None
        self.register_buffer("color", None if color is None else torch.as_tensor(color, dtype=torch.float32))
        if kind == "fourier":  # the image is linear in p: scale p to the wanted initial contrast
            with torch.no_grad():
                std = float(self.logits().std())
                self.p.mul_(init_std / std if std > 0 else 1.0)

    def logits(self) -> torch.Tensor:
        """The batch before the sigmoid."""
        if self.kind == "pixel":
            return self.p
        if self.kind == "fourier":
            spectrum = torch.view_as_complex(self.p.contiguous()) * self.scale
            img = torch.fft.irfft2(spectrum, s=(self.H, self.W), norm="ortho") / 4.0
        else:  # maco: fixed amplitude, learned phase, standardized
            spectrum = torch.polar(self.amplitude.expand_as(self.p), self.p)
            img = torch.fft.irfft2(spectrum, s=(self.H, self.W), norm="ortho")
            img = img - img.mean(dim=(1, 2, 3), keepdim=True)
            img = img / (img.std(dim=(1, 2, 3), keepdim=True) + 1e-6)
        if self.color is not None:
            img = torch.einsum("ij,bjhw->bihw", self.color, img)
        return img

    def unit(self) -> torch.Tensor:
        """The batch in [0, 1] (before the affine map onto the input range)."""
        return torch.sigmoid(self.logits())

    def forward(self) -> torch.Tensor:
        return self.low + (self.high - self.low) * self.unit()


def _reflect(c: torch.Tensor, n: int) -> torch.Tensor:
    if n == 1:
        return torch.zeros_like(c)
    period = 2 * (n - 1)
    c = torch.remainder(c, period)
    return torch.where(c > n - 1, period - c, c)


def random_warp(
    x: torch.Tensor, generator: torch.Generator, *, jitter: float, scale=(1.0, 1.0), rotate: float = 0.0
) -> torch.Tensor:
    """Randomly translate (whole pixels, up to ``jitter``), scale and rotate (degrees) each image of ``x``.

    ``x`` is (B, C, H, W); random numbers come from ``generator`` on the CPU.
    """
    B, C, H, W = x.shape
    if jitter <= 0 and scale[0] == scale[1] == 1.0 and rotate == 0:
        return x
    r = torch.rand((B, 4), generator=generator, dtype=torch.float64)
    # Whole-pixel translations (as Lucid's random crops): a fractional shift would blur thin strokes.
    j = math.floor(jitter)
    tx = torch.clamp(torch.floor(r[:, 0] * (2 * j + 1)) - j, -j, j)
    ty = torch.clamp(torch.floor(r[:, 1] * (2 * j + 1)) - j, -j, j)
    s = scale[0] + (scale[1] - scale[0]) * r[:, 2]
    a = (2 * r[:, 3] - 1) * math.radians(rotate)
    cos, sin = torch.cos(a) / s, torch.sin(a) / s
    dev = x.device
    v = torch.arange(H, dtype=torch.float64) - (H - 1) / 2
    u = torch.arange(W, dtype=torch.float64) - (W - 1) / 2
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    uu, vv = uu.reshape(1, -1), vv.reshape(1, -1)
    # output pixel -> source position (inverse map: rotate by -a and shrink by 1/s, then shift)
    su = cos[:, None] * uu + sin[:, None] * vv - tx[:, None] + (W - 1) / 2
    sv = -sin[:, None] * uu + cos[:, None] * vv - ty[:, None] + (H - 1) / 2
    su, sv = _reflect(su, W), _reflect(sv, H)
    x0 = torch.clamp(torch.floor(su), 0, max(W - 2, 0))
    y0 = torch.clamp(torch.floor(sv), 0, max(H - 2, 0))
    fx, fy = (su - x0).float().to(dev)[:, None], (sv - y0).float().to(dev)[:, None]
    x0, y0 = x0.long(), y0.long()
    x1, y1 = torch.clamp(x0 + 1, max=W - 1), torch.clamp(y0 + 1, max=H - 1)
    flat = x.reshape(B, C, H * W)

    def g(yi, xi):
        idx = (yi * W + xi).to(dev)[:, None, :].expand(B, C, H * W)
        return flat.gather(2, idx)

    out = (1 - fy) * ((1 - fx) * g(y0, x0) + fx * g(y0, x1)) + fy * ((1 - fx) * g(y1, x0) + fx * g(y1, x1))
    return out.reshape(B, C, H, W)


def total_variation(x: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """Mahendran & Vedaldi's TV^beta prior per image: mean over pixels of ``(dx^2 + dy^2)^(beta/2)``."""
    if x.ndim < 4:
        d = x.reshape(x.shape[0], -1).diff(dim=1)
        return (d.abs() ** beta).mean(dim=1)
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    return ((dx**2 + dy**2 + 1e-8) ** (beta / 2)).flatten(1).mean(dim=1)


def default_jitter(spec: InputSpec) -> float:
    """Lucid's 8 pixels at 224 px, scaled to the input size (1 pixel at 28 px)."""
    if not spec.is_image:
        return 0.0
    return float(max(1, round(min(spec.shape[1:]) / 28)))
