"""Capture the inputs and the activations of any live ``torch.nn.Module``.

Layers are recorded with forward hooks when they are modules (:mod:`.recorder`), and through
torchvision's FX feature extraction when they are functional calls inside ``forward``
(:mod:`.fx`; ``F.relu(...)`` becomes an FX node named ``relu``, ``relu_1``...).  Which layers, and
how, is decided in :mod:`.plan`; how a batch reaches the model (and which part is the input, the
labels, the padding mask) in :mod:`.batches`; what one sample is (a whole input, its mean, its first
token, each token) in :mod:`.samples`; the batch loop in :mod:`.loop`; where the blocks live (RAM or
memory-mapped files) and whether they fit in :mod:`.storage`; the non-negativity policy in
:mod:`.blocks`; ``capture`` itself in :mod:`.core`.  The rules are written out in ``docs/capture.md``.  Every record is
copied off the model the moment it is produced, so an in-place op later in ``forward`` cannot
change it, and it is written straight into its place in a preallocated (samples-major) buffer;
blocks are exposed as (features x samples) views of those buffers.
"""

from .core import capture, estimate_bytes
from .plan import DEFAULT_LAYER_TYPES, list_layers

__all__ = ["DEFAULT_LAYER_TYPES", "capture", "estimate_bytes", "list_layers"]
