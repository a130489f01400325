"""``capture``: run a model over the data and record its inputs and layers as (features x samples) blocks."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .._validation import (
    boolean,
    finite_float,
    one_of,
    optional_positive_int,
    positive_int,
)
from ..activations import Activations
from ..errors import (
    CaptureError,
    DeviceError,
    InputError,
    MemoryLimitError,
    PeeklensError,
)
from .batches import Batch, Feeder, iter_batches, labels_of, n_samples_hint
from .blocks import NONNEG_POLICIES, finish_blocks
from .device import check_stored_input, model_device, model_dtype, oom_types
from .fx import active, fx_extractor
from .plan import Plan, resolve_layers, unwrap
from .recorder import Recorder, input_blocks, make_global_hook, make_hook
from .samples import SAMPLE_CHOICES, Sampler
from .storage import check_memory, check_storage_free

__all__ = ["capture", "estimate_bytes"]

#: How ``inputs=``, ``labels=`` and ``mask=`` pick a part of a batch: a key, an index, a callable, False or None.
Selector = str | int | Callable[[Any], Any] | bool | None

#: Modules whose forward takes a fused fast path in eval mode unless they (or their submodules) carry hooks.
_FUSED = (nn.TransformerEncoderLayer,)


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
    >>> batch = {"input_ids": torch.tensor([[1, 2, 3], [4, 5, 0]]), "attention_mask": torch.tensor([[1, 1, 1], [1, 1, 0]])}
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
    loop = _Loop(rec, plan, model, feeder, include_input, input_transform, max_bytes, store_dir, n_hint, max_samples)
    with _prepared(model, plan, rec, device, run_device) as runner:
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


@contextlib.contextmanager
def _prepared(model: nn.Module, plan: Plan, rec: Recorder, device, run_device) -> Iterator[Callable]:
    """The model in eval mode on ``run_device`` with its recording in place; all undone on exit."""
    was_training = model.training
    original_device = model_device(model)
    moved = device is not None and original_device != run_device
    if moved:
        model.to(run_device)
    handles = []
    try:
        model.eval()
        if plan.mode == "hooks":
            modules = dict(model.named_modules())
            fused = {modules[n]: n for n in plan.names if isinstance(modules[n], _FUSED)}
            if fused:  # their fused fast path is skipped when they carry hooks: watch them from outside
                handles.append(nn.modules.module.register_module_forward_hook(make_global_hook(rec, fused)))
            for name in plan.names:
                if modules[name] in fused:
                    continue
                try:
                    handles.append(modules[name].register_forward_hook(make_hook(rec, name)))
                except RuntimeError as e:  # e.g. a scripted submodule
                    raise CaptureError(
                        f"cannot put a forward hook on layer {name!r} ({type(modules[name]).__name__}): {e}; "
                        "capture a plain Python nn.Module instead"
                    ) from e
            yield model
        else:
            yield fx_extractor(model, plan.names)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
        if moved:
            model.to(original_device)


def _describe(raw: Any) -> str:
    """Shapes of a batch, for error messages."""
    if isinstance(raw, torch.Tensor):
        return f"input shape {tuple(raw.shape)}"
    if isinstance(raw, Mapping):
        return "batch " + str({k: tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
                               for k, v in raw.items()})
    if isinstance(raw, (list, tuple)):
        return "batch " + str([tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__ for v in raw])
    return f"batch of type {type(raw).__name__}"


class _Loop:
    """The batch loop: a one-sample probe and the memory check, then every batch into the buffers."""

    def __init__(self, rec: Recorder, plan: Plan, model: nn.Module, feeder: Feeder, include_input: bool,
                 input_transform, max_bytes, store_dir, n_hint, max_samples):
        self.rec, self.plan, self.model, self.feeder = rec, plan, model, feeder
        self.include_input, self.input_transform = include_input, input_transform
        self.max_bytes, self.store_dir = max_bytes, store_dir
        self.n_hint, self.max_samples = n_hint, max_samples
        self.runner: Callable = model
        self.dtype = torch.float32
        self.device = torch.device("cpu")
        self.total = 0  # inputs captured
        self.rows_per_input = 1  # samples per input (tokens: as seen on the probe)
        self.interrupted = False
        self._labels: list[np.ndarray] = []
        self._has_labels = True
        self._info: dict[str, list[np.ndarray]] = {"sample": [], "position": [], "token": []}

    def labels(self) -> np.ndarray | None:
        return np.concatenate(self._labels) if self._has_labels and self._labels else None

    def sample_info(self) -> dict[str, np.ndarray] | None:
        if self.rec.sampler.per_input:
            return None
        info = {k: np.concatenate(v) for k, v in self._info.items() if v}
        return info if len(self._info["token"]) == len(self._info["sample"]) else {
            k: v for k, v in info.items() if k != "token"}

    def run(self, batches, progress: bool) -> None:
        bar = tqdm(total=self.n_hint, desc="capture", unit="sample", disable=not progress)
        try:
            with torch.no_grad():
                for batch in batches:
                    if self.max_samples is not None and self.total >= self.max_samples:
                        break
                    bar.update(self.step(self.feeder.split(batch)))
        except KeyboardInterrupt:
            if self.total == 0:
                raise
            self.interrupted = True
            warnings.warn(
                f"capture interrupted: keeping the {self.total} samples captured so far (of "
                f"{self.n_hint if self.n_hint is not None else 'an unknown number'}); acts.meta['interrupted'] is True",
                stacklevel=3,
            )
        finally:
            self.rec.probing = False
            bar.close()

    def step(self, b: Batch) -> int:
        """Capture one batch; returns its number of inputs."""
        rec, total = self.rec, self.total
        if self.max_samples is not None and total + b.n > self.max_samples:
            b = self.feeder.head(b, self.max_samples - total)
        n = b.n
        if n == 0:
            return 0
        if total == 0:
            self.probe(b)
        elif rec.capacity is None:  # unknown length: keep checking as the records grow
            check_memory(rec.features, rec.offset + n * self.rows_per_input, self.max_bytes, self.store_dir,
                         growing=True, held=rec.held_bytes)
        self.run_batch(b, total)
        rows = rec.sampler.rows()
        self.keep_labels_and_info(b, total)
        self.total = total + n
        rec.offset += rows
        return n

    def keep_labels_and_info(self, b: Batch, start: int) -> None:
        sampler = self.rec.sampler
        lab = sampler.labels(labels_of(b.labels, b.n))
        if lab is None:
            self._has_labels = False
        else:
            self._labels.append(lab)
        if sampler.per_input:
            return
        i, j = sampler.index()
        self._info["sample"].append(i + start)
        self._info["position"].append(j)
        ids = b.inputs
        if (isinstance(ids, torch.Tensor) and ids.ndim == 2 and not ids.is_floating_point()
                and ids.shape[1] == sampler.positions):
            self._info["token"].append(ids.detach().cpu().numpy().astype(np.int64)[i, j])

    def probe(self, b: Batch) -> None:
        """One input through the model, keeping only names and shapes: the memory check runs before any buffer."""
        rec = self.rec
        rec.probing = True
        self.run_batch(self.feeder.head(b, 1), 0)
        self.rows_per_input = max(1, rec.sampler.rows())
        rec.probing = False
        if self.plan.mode == "hooks":
            rec.check_hooks_fired(self.plan.names)
        if self.store_dir is not None:
            check_storage_free(rec.slots, self.store_dir)
        planned = self.n_hint if self.n_hint is not None else (self.max_samples or b.n)
        check_memory(rec.features, planned * self.rows_per_input, self.max_bytes, self.store_dir)
        if self.n_hint is not None and rec.sampler.per_input:
            rec.allocate(self.n_hint)

    def record_inputs(self, b: Batch) -> None:
        x = b.inputs
        if x is None:
            raise InputError(
                "include_input=True but no part of the batch was taken as the input; choose it with inputs= "
                "(a key, an index or a callable of the batch), or pass include_input=False"
            )
        check_stored_input(x)
        shown = self.input_transform(x) if self.input_transform is not None else x
        if not isinstance(shown, torch.Tensor) or shown.ndim == 0 or shown.shape[0] != b.n:
            raise InputError("input_transform must return a tensor with the same batch size")
        shown = shown.float()
        parts = [("input:0", shown)] if not self.rec.sampler.per_input else [
            (name, part) for name, part, _ in input_blocks(shown)]
        for name, part in parts:
            self.rec.record(name, part, kind="input")

    def run_batch(self, b: Batch, start: int) -> None:
        """Record the input blocks of one batch and run the model on it, with clear errors.

        The input is copied into its block before the model runs; the probe runs on copies, so a
        model that edits its input in place changes neither the stored input nor the user's data twice.
        """
        rec, model = self.rec, self.model
        rec.start_batch(b.n, b.mask)
        if self.include_input:
            self.record_inputs(b)
        moved = self.feeder.to_device(b.raw, self.device, self.dtype, clone=rec.probing)
        active.rec = rec  # FX graphs record through it (see fx.record_node)
        try:
            self.feeder.call(self.runner, b, moved)
        except (KeyboardInterrupt, PeeklensError):
            raise
        except oom_types() as e:
            raise DeviceError(
                f"{type(model).__name__} ran out of GPU memory on the batch starting at sample {start} "
                f"({b.n} samples, {_describe(b.raw)}): use a smaller batch_size= (or DataLoader batch "
                "size), capture fewer layers=, or run on the CPU with device='cpu'"
            ) from e
        except MemoryError as e:
            raise MemoryLimitError(
                f"{type(model).__name__} ran out of memory on the batch starting at sample {start} ({b.n} samples): "
                "use a smaller batch_size= (or DataLoader batch size) or capture fewer layers="
            ) from e
        except Exception as e:
            how = "forward=" if self.feeder.forward is not None else "the call peeklens made (see forward=)"
            raise CaptureError(
                f"{type(model).__name__} raised {type(e).__name__} on the batch starting at sample "
                f"{start} ({_describe(b.raw)}): {e}. If the batch does not reach the model as it expects, "
                f"check {how}: tensors are called as model(x), tuples as model(batch[0]), dicts by keyword"
            ) from e
        finally:
            active.rec = None
        if not rec.probing:
            rec.check_all_ran(start)


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
