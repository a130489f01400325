"""What the model's inputs look like, from a factorization: shape, value range, colour statistics.

A factorization knows each input block's per-sample shape (``fit.blocks``) and, when it carries
them, the captured inputs themselves (``fit.inputs``, pixels x samples per channel, after
capture's ``input_transform``).  The methods of :mod:`peeklens.interpret` produce and take inputs
in that captured space; ``preprocess=`` maps them to what the model takes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import DeviceError, InputError
from ..results import Factorization

__all__ = [
    "DEFAULT_RANGE",
    "InputSpec",
    "input_spec",
    "as_batch",
    "fit_inputs",
    "model_device",
    "run_device",
    "positive_int",
]

#: Value range of generated inputs when the factorization carries no inputs to measure it on.
DEFAULT_RANGE: tuple[float, float] = (0.0, 1.0)


@dataclass
class InputSpec:
    """Per-sample input shape (model layout), the value range, and statistics of the captured inputs.

    Attributes
    ----------
    shape : tuple of int
        ``(C, H, W)`` for image inputs (one input block per channel), ``(D,)`` for flat ones.
    low, high : float
        The range of generated inputs: min/max of the captured inputs, or :data:`DEFAULT_RANGE`.
    names : list of str
        The input block names, in channel order.
    color : numpy.ndarray or None
        (C, C) square root of the channel covariance of the captured inputs (3 channels only),
        scaled to unit largest column norm: Lucid's colour decorrelation, measured on the data.
    amplitude : numpy.ndarray or None
        (C, H, W//2+1) mean Fourier amplitude of the (mean-removed) captured inputs (MACO).
    """

    shape: tuple[int, ...]
    low: float
    high: float
    names: list[str]
    color: np.ndarray | None = None
    amplitude: np.ndarray | None = None

    @property
    def is_image(self) -> bool:
        """Whether inputs are (C, H, W) images."""
        return len(self.shape) == 3


# Lucid's ImageNet colour correlation (square root of the RGB covariance), used when no inputs are kept.
_IMAGENET_COLOR = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float32)


def input_spec(
    fit: Factorization, input_shape=None, value_range=None, max_samples: int = 2000, stats: bool = True
) -> InputSpec:
    """The :class:`InputSpec` of ``fit``; ``input_shape`` / ``value_range`` override what it says.

    ``stats=False`` skips the colour covariance and the amplitude spectrum (only image generation
    needs them).
    """
    names = fit.input_names
    if input_shape is not None:
        shape = tuple(int(s) for s in input_shape)
    elif names:
        block = tuple(int(s) for s in fit.blocks[names[0]]["shape"])
        shape = (len(names),) + block if len(block) == 2 else (int(np.prod(block)) * len(names),)
    else:
        raise InputError(
            "this factorization has no input blocks, so the input shape is unknown; capture with "
            "include_input=True, or pass input_shape=(C, H, W)"
        )
    inputs = [np.asarray(fit.inputs[n]) for n in names] if fit.inputs and names else None
    if inputs is not None and len(inputs) and inputs[0].shape[1] > max_samples:
        step = int(np.ceil(inputs[0].shape[1] / max_samples))
        inputs = [x[:, ::step] for x in inputs]
    if value_range is not None:
        low, high = (float(v) for v in value_range)
    elif inputs is not None:
        low = float(min(x.min() for x in inputs))
        high = float(max(x.max() for x in inputs))
    else:
        low, high = DEFAULT_RANGE
    if not high > low:
        raise InputError(f"the input value range ({low}, {high}) is empty; pass value_range=(low, high)")
    color = amplitude = None
    if len(shape) == 3 and stats:
        C, H, W = shape
        if inputs is not None and len(inputs) == C and inputs[0].shape[0] == H * W:
            x = np.stack(inputs, 0).astype(np.float64)  # (C, pixels, samples)
            if C == 3:
                flat = x.reshape(3, -1)
                cov = np.cov(flat)
                vals, vecs = np.linalg.eigh(cov)
                sqrt = vecs @ np.diag(np.sqrt(np.clip(vals, 0, None))) @ vecs.T
                norm = np.linalg.norm(sqrt, axis=0).max()
                color = (sqrt / norm).astype(np.float32) if norm > 0 else None
            imgs = x.transpose(2, 0, 1).reshape(-1, C, H, W)
            imgs = imgs - imgs.mean(axis=(2, 3), keepdims=True)
            amplitude = np.abs(np.fft.rfft2(imgs, norm="ortho")).mean(axis=0).astype(np.float32)
        elif C == 3:
            color = _IMAGENET_COLOR / np.linalg.norm(_IMAGENET_COLOR, axis=0).max()
    return InputSpec(shape, low, high, list(names), color, amplitude)


def fit_inputs(fit: Factorization, spec: InputSpec, indices) -> torch.Tensor:
    """Captured inputs of some samples in model layout: ``(len(indices), *spec.shape)``."""
    if not fit.inputs or not spec.names:
        raise InputError(
            "this factorization carries no input images; pass inputs= explicitly (a tensor of inputs as "
            "captured), or factorize Activations captured with include_input=True"
        )
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    chans = [np.asarray(fit.inputs[n])[:, idx].T for n in spec.names]  # (m, pixels) each
    x = np.stack(chans, axis=1).reshape((len(idx),) + spec.shape)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def as_batch(inputs, spec: InputSpec) -> torch.Tensor:
    """Check user inputs against the captured per-sample shape; return a float32 batch."""
    if isinstance(inputs, np.ndarray):
        inputs = torch.from_numpy(np.ascontiguousarray(inputs))
    if not isinstance(inputs, torch.Tensor):
        raise InputError(f"inputs must be a tensor or an array of inputs, got {type(inputs).__name__}")
    if not inputs.is_floating_point():
        raise InputError(f"inputs have dtype {inputs.dtype}; give floating-point inputs in the captured range")
    shape = tuple(inputs.shape)
    if shape == spec.shape:
        inputs = inputs[None]
    elif len(spec.shape) == 3 and spec.shape[0] == 1 and shape[1:] == spec.shape[1:]:
        inputs = inputs[:, None]  # (N, H, W) for one-channel inputs
    elif shape[1:] != spec.shape:
        raise InputError(
            f"inputs have shape {shape} but the factorization was captured from inputs of per-sample shape "
            f"{spec.shape}; give a batch of shape (N, {', '.join(map(str, spec.shape))})"
        )
    if inputs.shape[0] == 0:
        raise InputError("inputs is an empty batch")
    return inputs.float()


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters are (CPU for a model without any)."""
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def run_device(model: nn.Module, device) -> torch.device:
    """The device to work on: ``device`` or the model's; a clear error when CUDA is missing."""
    try:
        dev = torch.device(device) if device is not None else model_device(model)
    except (RuntimeError, TypeError) as e:
        raise InputError(f"device={device!r} is not a valid torch device ({e}); use 'cpu' or 'cuda'") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device={str(dev)!r} was requested (or the model is there) but CUDA is not available")
    return dev


def positive_int(name: str, v) -> int:
    """``v`` as an int, or an InputError naming ``name`` when it is not a positive integer."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise InputError(f"{name} must be a positive integer, got {v!r}")
    return int(v)
