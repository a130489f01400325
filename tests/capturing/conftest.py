"""An independent reference for capture tests: plain forward hooks, outputs copied as they are produced."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn


def _copy(o):
    if isinstance(o, torch.Tensor):
        return o.detach().clone()
    if isinstance(o, (tuple, list)):
        return type(o)(_copy(e) for e in o)
    return o


def hooked_outputs(model: nn.Module, names, call):
    """Run ``call()`` in eval mode without gradients; return {module name: [its output at each call]}."""
    modules = dict(model.named_modules())
    out: dict[str, list] = {n: [] for n in names}
    handles = [modules[n].register_forward_hook(lambda m, i, o, n=n: out[n].append(_copy(o))) for n in names]
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            call()
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    return out


def assert_block_equals(block, ref: torch.Tensor, rtol=1e-5, atol=1e-5):
    """A (features x samples) block equals a (samples, ...) reference tensor."""
    ref = ref.reshape(ref.shape[0], -1).T.numpy()
    assert block.data.shape == ref.shape, (block.name, block.data.shape, ref.shape)
    np.testing.assert_allclose(block.data, ref, rtol=rtol, atol=atol)


@pytest.fixture
def hooks():
    return hooked_outputs


@pytest.fixture
def same():
    return assert_block_equals
