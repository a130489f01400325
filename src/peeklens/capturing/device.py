"""Where the model runs and what dtype it expects; moving a batch there with clear errors."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InputError

__all__ = ["check_stored_input", "model_device", "model_dtype", "oom_types"]


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (or buffer); the CPU for a model without any.

    >>> model_device(torch.nn.Linear(2, 2))
    device(type='cpu')
    """
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def model_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's first floating-point parameter (float32 when there is none).

    >>> model_dtype(torch.nn.Linear(2, 2).double())
    torch.float64
    """
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def check_stored_input(x: torch.Tensor) -> None:
    """Refuse an input that cannot be stored as input blocks: integer (token ids, raw pixels), bool, complex.

    >>> check_stored_input(torch.ones(2, 3))
    >>> check_stored_input(torch.ones(2, 3, dtype=torch.long))
    Traceback (most recent call last):
    ...
    peeklens.errors.InputError: inputs have integer dtype torch.int64; ...
    """
    if x.is_meta:
        raise InputError("the inputs are on the 'meta' device (tensors without data); give real tensors")
    if x.is_complex():
        raise InputError("complex inputs are not supported; give real floating-point tensors")
    if x.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64):
        raise InputError(
            f"inputs have integer dtype {x.dtype}; they cannot be stored as input blocks. Token ids: pass "
            "include_input=False (the model still gets them as they are). Images: convert them to floats as the "
            "model was trained on, e.g. transforms.ToTensor() or x.float() / 255"
        )
    if not x.is_floating_point():
        raise InputError(f"inputs have dtype {x.dtype}; give floating-point tensors (or include_input=False)")


def oom_types() -> tuple[type[BaseException], ...]:
    """The out-of-memory exception types of this torch build.

    >>> all(issubclass(t, BaseException) for t in oom_types())
    True
    """
    types: list[type[BaseException]] = []
    for mod, attr in ((torch, "OutOfMemoryError"), (torch.cuda, "OutOfMemoryError")):
        t = getattr(mod, attr, None)
        if isinstance(t, type) and t not in types:
            types.append(t)
    return tuple(types)
