"""A model prepared for optimizing its inputs: eval mode, frozen weights, on a device, deterministic."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from ._inputs import model_device

__all__ = ["prepared", "no_inplace"]


@contextlib.contextmanager
def prepared(model: nn.Module, device: torch.device):
    """Eval mode, ``requires_grad=False`` on every parameter, on ``device``; all restored on exit.

    On CUDA, deterministic algorithms are requested (``warn_only``: an op without a deterministic
    kernel warns instead of failing) and cuDNN benchmarking is off, so that a seed gives the same
    images on the same machine.
    """
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    original = model_device(model)
    moved = original != device
    det = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    try:
        if moved:
            model.to(device)
        model.eval()
        for p, _ in flags:
            p.requires_grad_(False)
        if device.type == "cuda":
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        yield model
    finally:
        if device.type == "cuda":
            torch.use_deterministic_algorithms(det[0], warn_only=det[1])
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)
        if moved:
            model.to(original)


@contextlib.contextmanager
def no_inplace(model: nn.Module):
    """Temporarily set ``inplace=False`` on modules that have it (in-place ReLUs break backward hooks)."""
    changed = [m for m in model.modules() if getattr(m, "inplace", False) is True]
    try:
        for m in changed:
            m.inplace = False
        yield model
    finally:
        for m in changed:
            m.inplace = True
