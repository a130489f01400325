"""``capture``: run a model over the data and record its inputs and layers as (features x samples) blocks."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._validation import (
    boolean,
    finite_float,
    one_of,
    optional_positive_int,
    positive_int,
)
from ..activations import Activations
from ..errors import DeviceError, InputError
from .batches import Feeder, iter_batches, n_samples_hint
from .blocks import NONNEG_POLICIES, finish_blocks
from .device import model_device, model_dtype
from .loop import BatchLoop, prepared
from .plan import resolve_layers, unwrap
from .recorder import Recorder
from .samples import SAMPLE_CHOICES, Sampler

__all__ = ["capture", "estimate_bytes"]

#: How ``inputs=``, ``labels=`` and ``mask=`` pick a part of a batch: a key, an index, a callable, False or None.
Selector = str | int | Callable[[Any], Any] | bool | None


def capture(
    model: nn.Module,
    data: Any,
    layers: Sequence[str | type[nn.Module]] | str | type[nn.Module] | None = None,
    *,
    include_input: bool = True,
    samples: str = "inputs",
    forward: Callable[[nn.Module, Any], Any] | None = None,
    inputs: Selector = None,
    labels: Selector = None,
    mask: Selector = None,
    device: str | torch.device | None = None,
    max_samples: int | None = None,
    nonneg: str = "error",
    input_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    pool: int | tuple[int, int] | None = None,
    max_bytes: int | None = None,
    storage: str | os.PathLike | None = None,
    batch_size: int = 256,
    progress: bool = True,
) -> Activations:
    """Record a model's inputs and layer activations as (features x samples) blocks.

    The model runs in eval mode under ``torch.no_grad()``; its mode is restored afterwards.
    ``docs/capture.md`` has the rules below with examples for transformers and sequence models.

    **How a batch reaches the model.** A tensor batch ``x`` is called as ``model(x)``; a tuple
    ``(x, y, ...)`` as ``model(x)``, with ``y`` as the labels; a dict whose keys name parameters of
    ``model.forward`` is passed by keyword (``model(input_ids=..., attention_mask=...)``; its labels
    entry is not passed), any other dict as ``model(batch["x"])``.  ``forward=`` replaces the call;
    ``inputs=``, ``labels=`` and ``mask=`` say which part of the batch is stored as the input blocks,
    kept as labels, or read as the padding mask.

    Parameters
    ----------
    model : torch.nn.Module
        Any live module, on the CPU or a GPU.  ``torch.compile`` / ``DataParallel`` /
        ``DistributedDataParallel`` wrappers are unwrapped (the module inside runs; layer names
        with or without ``_orig_mod.`` / ``module.`` are accepted); TorchScript is refused.
    data : DataLoader, Dataset, Tensor, ndarray, dict or iterable of batches
        Inputs as fed to the model (first axis: samples); see the batch rules above.  Labels are
        kept in ``Activations.labels`` for display only.
    layers : list of str or nn.Module types, optional
        Qualified module names (``"layer1.0.relu"``; forward hooks), FX node names for functional
        calls in ``forward`` (``"relu"``, ``"relu_1"``), or module types (``nn.ReLU``).  ``None``
        captures every ``nn.ReLU``/``nn.ReLU6`` module, or, when there is none, every functional
        ReLU call (FX nodes named ``relu``, ``relu_1``...).  A module called several times gives
        one block per call (``name@0``, ``name@1``...).  Tuple/list/dict outputs give one block per
        tensor (``name[0]``, ``name[1][0]``, ``name[key]``); ``"lstm[0]"`` asks for one element only.
        Without such a selection, elements whose first axis is not the batch are left out with a
        warning.  Recurrent, ``nn.MultiheadAttention`` and ``nn.Transformer*`` outputs are stored
        batch first whatever their ``batch_first``.
    include_input : bool, default True
        Add one block per input channel (the paper's D_i), named ``"input:0"``, ``"input:1"``...
        Integer inputs (token ids) cannot be input blocks: pass ``include_input=False``.
    samples : {"inputs", "mean", "first", "tokens"}, default "inputs"
        What one sample (one column) is for outputs with positions, (batch, tokens, features) or
        (batch, C, H, W): the whole output flattened (the paper's; needs a fixed length); its mean
        over positions (padding excluded); its first position (a CLS token); or every position of
        every input as its own sample (padding excluded; ``Activations.sample_info`` says which
        input, position and token id each sample came from, and labels follow).
    forward : callable, optional
        ``forward(model, batch) -> output``, called instead of the rules above with the batch on
        the model's device.  ``model`` is the module to call (the model, or its traced copy when
        functional layers are captured).
    inputs, labels, mask : str, int, callable or False, optional
        The part of each batch to store as the input blocks, to keep as labels (integers, one per
        sample, or one per token with ``samples="tokens"``), and to read as the padding mask
        (batch, positions), nonzero = real token; used by ``samples="mean"``/``"tokens"``): a dict
        key, a tuple index or a callable of the batch; ``False`` for none; ``None`` (default) for
        ``x``/``batch[0]``/``"input_ids"``..., ``y``/``batch[1]``/``"labels"``... and
        ``"attention_mask"``.
    device : str or torch.device, optional
        Where to run the model; default: where its parameters are.  Batches are moved there and
        activations come back to the CPU batch by batch.
    max_samples : int, optional
        Stop after this many inputs.
    nonneg : {"error", "shift", "split", "abs", "semi"}, default "error"
        What to do with negative values: raise an error naming the block (default); subtract the
        block minimum; keep positive and negative parts as two blocks (``name+``, ``name-``); take
        the absolute value; or keep the signed values and mark the block ``signed`` (fitted by
        semi-NMF: free loadings, non-negative sample factor).
    input_transform : callable, optional
        Applied to each input batch before it is stored as input blocks (not before the model),
        e.g. to undo a normalization: ``lambda x: x * 0.3081 + 0.1307``.
    pool : int or (int, int), optional
        Adaptive average pooling of every 4-D layer output to this spatial size before storing
        (``pool=1`` keeps one value per channel); cuts memory for large feature maps.
    max_bytes : int, optional
        Refuse (before capturing) when the blocks would need more bytes; the default limit is
        80 % of the available memory (of the free disk when ``storage`` is given).  The check
        runs after one sample has gone through the model (to learn the block shapes) and before
        any block buffer is allocated.
    storage : path, optional
        A new or empty directory to hold the blocks as memory-mapped ``.npy`` files instead of
        RAM; block files of an earlier capture are never overwritten.
    batch_size : int, default 256
        Batch size when ``data`` is a tensor, array or Dataset.
    progress : bool, default True
        A progress bar over batches.

    Returns
    -------
    Activations
        If interrupted (Ctrl-C / KeyboardInterrupt) after the first batch, the samples of the
        finished batches are returned with a warning and ``meta["interrupted"] = True``.

    Raises
    ------
    InputError, LayerNotFoundError, NonNegativityError
        Bad data, options or layer names; negative values with ``nonneg="error"``.
    MemoryLimitError
        The blocks would not fit (see ``max_bytes``); the message names the largest blocks.
    CaptureError
        The model raised, or a layer returned something that is not a tensor, or NaN/Inf.
    DeviceError
        CUDA requested but unavailable, a model on the ``meta`` device, or GPU out of memory.

    Examples
    --------
    >>> import torch, peeklens as pl
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    >>> acts = pl.capture(model, torch.rand(20, 1, 8, 8), layers=["1"], progress=False)
    >>> acts.names, acts["1"].shape, acts["1"].data.shape
    (['input:0', '1'], (4, 6, 6), (144, 20))

    A sequence model fed tokenizer-style dict batches, one sample per real token:

    >>> class Tiny(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.emb, self.mlp = nn.Embedding(10, 4), nn.Sequential(nn.Linear(4, 6), nn.GELU())
    ...     def forward(self, input_ids, attention_mask):
    ...         return self.mlp(self.emb(input_ids))
    >>> batch = {"input_ids": torch.tensor([[1, 2, 3], [4, 5, 0]]),
    ...          "attention_mask": torch.tensor([[1, 1, 1], [1, 1, 0]])}
    >>> acts = pl.capture(Tiny(), [batch], layers=["mlp.1"], samples="tokens", include_input=False,
    ...                   nonneg="semi", progress=False)
    >>> acts.n_samples, acts["mlp.1"].signed, acts.sample_info["token"].tolist()
    (5, True, [1, 2, 3, 4, 5])
    """
    _check_options(model, nonneg, samples, max_samples, batch_size, max_bytes, include_input)
    model, wrappers = unwrap(model)
    plan = resolve_layers(model, layers, wrapped=bool(wrappers))
    sampler = Sampler(samples)
    feeder = Feeder(model, forward, inputs, labels, mask, needs_mask=samples in ("mean", "tokens"))
    _check_not_meta(model)
    run_device = _run_device(model, device)
    store_dir = None
    if storage is not None:
        store_dir = Path(storage)
        store_dir.mkdir(parents=True, exist_ok=True)
    n_hint = n_samples_hint(data)
    if n_hint is not None and max_samples is not None:
        n_hint = min(n_hint, int(max_samples))
    if n_hint == 0:
        raise InputError("data is empty: there are no samples to capture")

    rec = Recorder(nonneg, pool, store_dir, sampler, plan.select)
    loop = BatchLoop(rec, plan, model, feeder, include_input, input_transform, max_bytes, store_dir, n_hint,
                     max_samples)
    with prepared(model, plan, rec, device, run_device) as runner:
        loop.runner, loop.dtype, loop.device = runner, model_dtype(model), run_device
        loop.run(iter_batches(data, batch_size), progress)
    if loop.total == 0:
        raise InputError("data is empty: no batch had any sample")
    rec.finish(rec.offset)
    if rec.dropped:
        warnings.warn(
            "capture left out tuple-output elements whose first axis is not the batch: "
            + ", ".join(f"{k.rsplit('@', 1)[0]} {v}" for k, v in rec.dropped.items())
            + "; name an element to capture it, e.g. layers=['lstm[0]']",
            stacklevel=2,
        )
    meta = {
        "model": type(model).__name__, "layers": plan.names, "mode": plan.mode, "nonneg": nonneg,
        "pool": pool, "samples": samples, "n_samples": rec.offset, "n_inputs": loop.total,
        "torch": torch.__version__,
    }
    if wrappers:
        meta["unwrapped"] = wrappers
    if sampler.grid is not None:
        meta["token_grid"] = list(sampler.grid)
    if loop.interrupted:
        meta["interrupted"] = True
    return Activations(finish_blocks(rec, nonneg), labels=loop.labels(), meta=meta, sample_info=loop.sample_info())


def _check_options(model, nonneg, samples, max_samples, batch_size, max_bytes, include_input) -> None:
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    one_of(nonneg, "nonneg", NONNEG_POLICIES)
    one_of(samples, "samples", SAMPLE_CHOICES)
    optional_positive_int(max_samples, "max_samples")
    positive_int(batch_size, "batch_size")
    if max_bytes is not None:
        finite_float(max_bytes, "max_bytes", minimum=0, strict=True)
    boolean(include_input, "include_input")


def _check_not_meta(model: nn.Module) -> None:
    meta_params = [n for n, p in list(model.named_parameters()) + list(model.named_buffers()) if p.is_meta]
    if meta_params:
        raise DeviceError(
            f"{type(model).__name__} has parameters on the 'meta' device (no data), e.g. {meta_params[:3]}; "
            "materialize it first: model.to_empty(device='cpu') and then load_state_dict(...)"
        )


def _run_device(model: nn.Module, device) -> torch.device:
    try:
        run_device = torch.device(device) if device is not None else model_device(model)
    except (RuntimeError, TypeError) as e:
        raise InputError(f"device={device!r} is not a valid torch device ({e}); use 'cpu' or 'cuda'") from e
    if run_device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            f"device={str(run_device)!r} was requested (or the model is there) but CUDA is not available in this "
            "PyTorch; use device='cpu'"
        )
    return run_device


def estimate_bytes(
    model: nn.Module,
    example: Any,
    n_samples: int,
    layers=None,
    *,
    include_input: bool = True,
    pool=None,
    **options: Any,
) -> dict[str, int]:
    """Bytes each block would take when capturing ``n_samples`` samples shaped like ``example``'s.

    Runs the model once on ``example`` (a small batch, in any form :func:`capture` takes) to learn
    the layer shapes; other keyword arguments (``samples=``, ``forward=``, ``inputs=``...) are
    passed to :func:`capture`.  With ``samples="tokens"``, ``n_samples`` counts tokens.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(10, 32), nn.ReLU())
    >>> estimate_bytes(model, torch.rand(2, 10), 1000, layers=["1"])
    {'input:0': 40000, '1': 128000}
    """
    options.setdefault("nonneg", "abs")
    acts = capture(model, example, layers, include_input=include_input, pool=pool, progress=False,
                   max_bytes=1 << 62, **options)
    return {n: b.n_features * 4 * int(n_samples) for n, b in acts.blocks.items()}
