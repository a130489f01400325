"""Capture the inputs and the activations of any live ``torch.nn.Module``.

Layers are recorded with forward hooks when they are modules, and through
torchvision's FX feature extraction when they are functional calls inside
``forward`` (``F.relu(...)`` becomes an FX node named ``relu``, ``relu_1``,
...).  Every record is copied off the model the moment it is produced, so an
in-place op later in ``forward`` cannot change it, and it is written straight
into its place in a preallocated (samples-major) buffer; blocks are exposed as
(features x samples) views of those buffers.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .activations import Activations, Block
from ._memory import available_memory, format_bytes
from .errors import (
    PeeklensError,
    CaptureError,
    DeviceError,
    InputError,
    LayerNotFoundError,
    MemoryLimitError,
    NonNegativityError,
)

__all__ = ["capture", "estimate_bytes", "list_layers", "DEFAULT_LAYER_TYPES"]

#: Module types captured when ``layers=None``: the non-negative activations, as analysed in the paper.
DEFAULT_LAYER_TYPES: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6)
_FX_RELU = re.compile(r"(^|[._])relu(_\d+)?$")
NONNEG_POLICIES = ("error", "shift", "split", "abs")


# --------------------------------------------------------------------------- data
def _iter_batches(data, batch_size: int):
    """Yield ``(x, y_or_None)`` from a DataLoader, Dataset, tensor, array or iterable of batches."""
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(data)
    if isinstance(data, torch.Tensor):
        if data.ndim == 0:
            raise InputError("data is a 0-d tensor; give a batch of samples (first axis = samples)")
        for i in range(0, data.shape[0], batch_size):
            yield data[i : i + batch_size], None
        return
    if isinstance(data, torch.utils.data.Dataset) and not isinstance(data, torch.utils.data.IterableDataset):
        if not hasattr(data, "__len__"):
            raise InputError("a map-style Dataset without __len__ cannot be captured; wrap it in a DataLoader")
        data = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False)
    if not isinstance(data, Iterable):
        raise InputError(
            f"data must be a DataLoader, a Dataset, a tensor or an iterable of batches, got {type(data).__name__}"
        )
    for batch in data:
        yield _split_batch(batch)


def _split_batch(batch):
    if isinstance(batch, torch.Tensor):
        return batch, None
    if isinstance(batch, np.ndarray):
        return torch.from_numpy(batch), None
    if isinstance(batch, Mapping):
        for key in ("x", "input", "inputs", "image", "images", "pixel_values"):
            if key in batch:
                y = next((batch[k] for k in ("y", "label", "labels", "target") if k in batch), None)
                return _as_tensor(batch[key]), y
        raise InputError(f"a dict batch needs an 'x' (or 'input', 'image') entry; got keys {list(batch)}")
    if isinstance(batch, Sequence) and len(batch) >= 1:
        return _as_tensor(batch[0]), (batch[1] if len(batch) > 1 else None)
    raise InputError(f"each batch must be a tensor x or a tuple (x, y, ...), got {type(batch).__name__}")


def _as_tensor(x):
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    raise InputError(f"batch inputs must be tensors, got {type(x).__name__}")


def _n_samples_hint(data) -> int | None:
    """Number of samples if it can be known before iterating."""
    if isinstance(data, (torch.Tensor, np.ndarray)):
        return int(data.shape[0])
    if isinstance(data, torch.utils.data.DataLoader):
        try:
            n = len(data.dataset)  # type: ignore[arg-type]
        except TypeError:
            return None
        if data.drop_last and data.batch_size:
            n = (n // data.batch_size) * data.batch_size
        return n
    if isinstance(data, torch.utils.data.Dataset) and hasattr(data, "__len__"):
        return len(data)  # type: ignore[arg-type]
    return None


def _labels_of(y, n: int) -> np.ndarray | None:
    if y is None:
        return None
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        return None
    return y.astype(np.int64)


# ------------------------------------------------------------------------ layers
def _module_names(model: nn.Module) -> list[str]:
    return [n for n, _ in model.named_modules() if n]


_NODE_NAMES: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()


def _structure_key(model: nn.Module) -> tuple:
    """Identity of the model's submodules: changes when one is replaced."""
    return tuple(id(m) for m in model.modules())


def _fx_names(model: nn.Module) -> list[str] | None:
    """Eval-mode FX node names (cached per model structure), or None when it cannot be traced."""
    key = _structure_key(model)
    cached = _NODE_NAMES.get(model)
    if cached is None or cached[0] != key:
        cached = (key, _trace_node_names(model))
        _NODE_NAMES[model] = cached
    return None if cached[1] is None else list(cached[1])


def _trace_node_names(model: nn.Module) -> list[str] | None:
    from torchvision.models.feature_extraction import get_graph_node_names

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, eval_names = get_graph_node_names(model)
    except Exception:  # noqa: BLE001 - any tracing failure means "no FX names"
        return None
    return [n for n in eval_names if n not in ("x", "input")]


def list_layers(model: nn.Module) -> dict[str, list[str]]:
    """Names that ``capture(layers=...)`` accepts for ``model``.

    Returns
    -------
    dict
        ``"modules"``: qualified submodule names (recorded with forward hooks);
        ``"nodes"``: FX node names, including functional calls such as
        ``relu`` (empty when the model cannot be traced symbolically).

    Examples
    --------
    >>> from torch import nn
    >>> list_layers(nn.Sequential(nn.Linear(4, 3), nn.ReLU()))["modules"]
    ['0', '1']
    """
    return {"modules": _module_names(model), "nodes": _fx_names(model) or []}


def _unknown_layer(name: str, model: nn.Module, fx: list[str] | None) -> LayerNotFoundError:
    candidates = list(dict.fromkeys(_module_names(model) + (fx or [])))
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.4)
    hint = f"closest valid names: {close}" if close else f"valid names include {candidates[:12]}"
    return LayerNotFoundError(
        f"layer {name!r} not found in {type(model).__name__}; {hint}. "
        "See peeklens.list_layers(model) for every module and FX node name."
    )


@dataclass
class _Plan:
    mode: str  # "hooks" or "fx"
    names: list[str]


def _resolve_layers(model: nn.Module, layers) -> _Plan:
    if layers is None:
        found = [n for n, m in model.named_modules() if n and isinstance(m, DEFAULT_LAYER_TYPES)]
        if found:
            return _Plan("hooks", found)
        fx = _fx_names(model)
        relus = [n for n in (fx or []) if _FX_RELU.search(n)]
        if relus:
            return _Plan("fx", relus)
        raise InputError(
            f"{type(model).__name__} has no ReLU (module or functional call) to capture by default; "
            "pass layers=[...] with module or FX node names (see peeklens.list_layers(model))"
        )
    if isinstance(layers, (str, type)):
        layers = [layers]
    modules = dict(model.named_modules())
    names: list[str] = []
    wanted_strs: list[str] = []
    for item in layers:
        if isinstance(item, type) and issubclass(item, nn.Module):
            matched = [n for n, m in modules.items() if n and isinstance(m, item)]
            if not matched:
                raise LayerNotFoundError(f"{type(model).__name__} has no submodule of type {item.__name__}")
            names.extend(matched)
        elif isinstance(item, str):
            names.append(item)
            wanted_strs.append(item)
        else:
            raise InputError(f"layers entries must be names (str) or nn.Module types, got {item!r}")
    if not names:
        raise InputError("layers is empty; give at least one layer, or layers=None for the default")
    names = list(dict.fromkeys(names))
    if all(n in modules for n in names):
        return _Plan("hooks", names)
    fx = _fx_names(model)
    for n in names:
        if n not in modules and (fx is None or n not in fx):
            raise _unknown_layer(n, model, fx)
    missing_in_fx = [n for n in names if n not in fx]  # type: ignore[operator]
    if missing_in_fx:
        raise InputError(
            f"layers {missing_in_fx} are modules hidden inside a traced leaf, while others {wanted_strs} need "
            "FX tracing; capture them in two calls"
        )
    return _Plan("fx", names)


_EXTRACTORS: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()


def _fx_extractor(model: nn.Module, names: list[str]) -> nn.Module:
    """The FX extractor for ``names``, reused while the model's submodules are the same objects.

    Tracing costs tens of milliseconds; the cached graph module refers to the model's own
    submodules, so trained weights are seen, and replacing a submodule invalidates the cache.
    """
    key = (tuple(names), _structure_key(model))
    cached = _EXTRACTORS.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    ext = _build_fx_extractor(model, names)
    _EXTRACTORS[model] = (key, ext)
    return ext


def _build_fx_extractor(model: nn.Module, names: list[str]) -> nn.Module:
    """An FX feature extractor that records each chosen node's output the moment it is computed.

    Recording in the graph (one copy straight into the block buffer) rather than returning the
    outputs keeps later in-place ops from changing them without a defensive clone of every output.
    """
    from torchvision.models.feature_extraction import create_feature_extractor

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ext = create_feature_extractor(model, return_nodes={n: n for n in names})
    except Exception as e:  # noqa: BLE001
        raise CaptureError(
            f"could not trace {type(model).__name__} with torch.fx to reach {names}: {e}. "
            "Capture module outputs instead (names from list_layers(model)['modules'])"
        ) from e
    ext.eval()
    graph = ext.graph
    out_node = next(n for n in graph.nodes if n.op == "output")
    outputs = dict(out_node.args[0])
    for key, node in outputs.items():
        with graph.inserting_after(node):
            outputs[key] = graph.call_function(_record_node, (node, key))
    out_node.args = (outputs,)
    graph.lint()
    ext.recompile()
    return ext


class _ActiveRecorder(threading.local):
    rec: "_Recorder | None" = None


_ACTIVE = _ActiveRecorder()


def _record_node(value, key: str) -> None:
    """Record an FX node's output into the active recorder, before later ops can change it in place."""
    parts = _flatten_output(key, value)
    if not parts:
        raise CaptureError(
            f"node {key!r} returned {type(value).__name__}, not a tensor; pick a node whose output is a tensor"
        )
    for nm, t in parts:
        _ACTIVE.rec.record(nm, t)


torch.fx.wrap("_record_node")


def _flatten_output(name: str, value) -> list[tuple[str, torch.Tensor]]:
    """Tensors in a layer output, named ``name``, ``name[0]``, ``name[key]``..."""
    if isinstance(value, torch.Tensor):
        return [(name, value)]
    out: list[tuple[str, torch.Tensor]] = []
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, (tuple, list)):
        items = list(enumerate(value))
    else:
        items = []
    for k, v in items:
        if isinstance(v, torch.Tensor):
            out.append((f"{name}[{k}]", v))
        elif isinstance(v, (tuple, list, Mapping)):
            out.extend(_flatten_output(f"{name}[{k}]", v))
    return out


# ------------------------------------------------------------------- recording
@dataclass
class _Slot:
    name: str
    shape: tuple[int, ...]
    kind: str
    buf: np.ndarray | None = None  # (samples x features)
    pending: list[np.ndarray] = field(default_factory=list)
    lo: float = math.inf


class _Recorder:
    """Collects per-batch records into per-block buffers."""

    def __init__(self, nonneg: str, pool, storage: Path | None):
        self.nonneg = nonneg
        self.pool = pool
        self.storage = storage
        self.slots: "OrderedDict[str, _Slot]" = OrderedDict()
        self.offset = 0
        self.batch_n = 0
        self.capacity: int | None = None
        self.calls: dict[str, int] = {}
        #: While True, record() only learns the names and per-sample shapes (no data is kept):
        #: capture runs one sample through the model this way to check memory before allocating.
        self.probing = False
        self.seen: set[str] = set()  # blocks recorded in the current batch

    # called from hooks / after the FX forward
    def record(self, name: str, t: torch.Tensor, kind: str = "layer") -> None:
        n = self.batch_n
        if t.ndim == 0 or t.shape[0] != n:
            raise CaptureError(
                f"layer {name!r} produced a tensor of shape {tuple(t.shape)} whose first axis is not the batch "
                f"({n} samples); capture a layer with one row per sample"
            )
        t = t.detach()
        if t.device.type == "meta":
            raise DeviceError(
                f"{kind} {_pretty_name(name)!r} is on the 'meta' device (a tensor without data); materialize "
                "the model (model.to_empty(device='cpu') then load_state_dict) and give real inputs"
            )
        if kind == "layer" and self.pool is not None and t.ndim == 4:
            t = nn.functional.adaptive_avg_pool2d(t.float(), self.pool)
        if t.is_complex():
            raise CaptureError(
                f"{kind} {_pretty_name(name)!r} is complex ({t.dtype}); capture a real-valued layer "
                "(e.g. after .abs())"
            )
        if t.dtype != torch.float32:  # ints, bools, half, bfloat16, float64: stored as float32
            t = t.float()
        shape = tuple(t.shape[1:])
        slot = self.slots.get(name)
        if slot is None and not self.probing and (self.capacity is not None or self.offset > 0):
            raise CaptureError(
                f"{kind} {_pretty_name(name)!r} ran on the batch starting at sample {self.offset} but not on the "
                "first sample (data-dependent control flow in forward); capture layers that run for every input"
            )
        self.seen.add(name)
        if slot is None:
            slot = self.slots[name] = _Slot(name, shape, kind)
        elif slot.shape != shape:
            raise CaptureError(
                f"layer {name!r} changed its per-sample shape from {slot.shape} to {shape} between batches; "
                "resize inputs to one size or pool the layer (pool=)"
            )
        if self.probing:
            return
        lo_hi = torch.aminmax(t) if t.numel() else None
        if lo_hi is not None:
            lo, hi = float(lo_hi[0]), float(lo_hi[1])
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise CaptureError(
                    f"{kind} {_pretty_name(name)!r} has NaN or Inf values in the batch starting at sample {self.offset}; "
                    "check the inputs and the model (e.g. torch.isfinite) before capturing"
                )
            if lo < 0 and self.nonneg == "error":
                what = "the inputs" if kind == "input" else f"layer {_pretty_name(name)!r}"
                raise NonNegativityError(
                    f"{what} has negative values (min {lo:.4g}); a non-negative factorization needs "
                    ">= 0. Remedies: capture a non-negative layer (after a ReLU), or pass nonneg='shift' "
                    "(subtract the block minimum), nonneg='split' (positive and negative parts as two "
                    "blocks) or nonneg='abs'"
                    + ("; for inputs, input_transform= can undo the normalization" if kind == "input" else "")
                )
            slot.lo = min(slot.lo, lo)
        flat = t.reshape(n, -1)
        if slot.buf is not None:
            dst = slot.buf[self.offset : self.offset + n]
            # torch's copy_ runs on every thread and takes device tensors directly (non-blocking
            # for pinned buffers is not worth it: the batch is needed before the next one runs).
            torch.from_numpy(dst).copy_(flat)
        else:
            slot.pending.append(flat.to("cpu", torch.float32, copy=True).numpy())

    def allocate(self, n_total: int) -> None:
        """Create the buffers once the sample count is known and move pending records in."""
        self.capacity = n_total
        for slot in self.slots.values():
            features = int(np.prod(slot.shape)) if slot.shape else 1
            if self.storage is not None:
                path = self.storage / f"{_safe_filename(slot.name)}.npy"
                slot.buf = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_total, features))
            else:
                # torch's allocator maps large buffers with far fewer page faults than NumPy's
                # (2.3x faster first writes here), which is most of capture's overhead.
                slot.buf = torch.empty((n_total, features), dtype=torch.float32).numpy()
            start = 0
            for part in slot.pending:
                slot.buf[start : start + len(part)] = part
                start += len(part)
            slot.pending.clear()


def _check_storage_free(rec: _Recorder, store: Path) -> None:
    """Never overwrite the block files of an earlier capture (its Activations may still map them)."""
    taken = [f"{_safe_filename(n)}.npy" for n in rec.slots if (store / f"{_safe_filename(n)}.npy").exists()]
    if taken:
        raise InputError(
            f"storage directory {str(store)!r} already holds block files {taken[:4]} of an earlier capture, "
            "which may still be in use; give a new or empty directory (or delete those files first)"
        )


def _safe_filename(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@+-]", "_", name)


# ----------------------------------------------------------------------- model
def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def _model_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def _prepare_input(x: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    if x.dtype == torch.bool or not (x.is_floating_point() or x.is_complex()):
        if x.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64):
            raise InputError(
                f"inputs have integer dtype {x.dtype}; convert them to floats as the model was trained on, "
                "e.g. transforms.ToTensor() or x.float() / 255"
            )
        raise InputError(f"inputs have dtype {x.dtype}; give floating-point tensors")
    if x.is_complex():
        raise InputError("complex inputs are not supported; give real floating-point tensors")
    if x.is_meta:
        raise InputError("the inputs are on the 'meta' device (tensors without data); give real tensors")
    try:
        return x.to(device=device, dtype=dtype, non_blocking=True)
    except (RuntimeError, AssertionError) as e:  # e.g. a CUDA tensor in a build or machine without it
        raise DeviceError(
            f"cannot move inputs from {x.device} to the model's device {device} ({e}); put the model and the "
            "data on a device this machine has, e.g. device='cpu'"
        ) from e


def _input_blocks(x: torch.Tensor) -> list[tuple[str, torch.Tensor, tuple[int, ...]]]:
    """One block per input channel: (N, C, H, W) -> C blocks of (N, H*W); (N, H, W) or (N, D) -> one."""
    if x.ndim == 4:
        return [(f"input:{c}", x[:, c], tuple(x.shape[2:])) for c in range(x.shape[1])]
    if x.ndim in (2, 3):
        return [("input:0", x, tuple(x.shape[1:]))]
    if x.ndim == 1:
        return [("input:0", x[:, None], (1,))]
    return [("input:0", x.reshape(x.shape[0], -1), (int(np.prod(x.shape[1:])),))]


# --------------------------------------------------------------------- capture
def capture(
    model: nn.Module,
    data: Any,
    layers: Sequence[str | type[nn.Module]] | str | type[nn.Module] | None = None,
    *,
    include_input: bool = True,
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

    Parameters
    ----------
    model : torch.nn.Module
        Any live module, on the CPU or a GPU.
    data : DataLoader, Dataset, Tensor, ndarray or iterable of batches
        Inputs as fed to the model. Batches may be ``x``, ``(x, y, ...)`` or dicts with ``"x"``;
        labels ``y`` are kept in ``Activations.labels`` for display only.
    layers : list of str or nn.Module types, optional
        Qualified module names (``"layer1.0.relu"``; forward hooks), FX node names for functional
        calls in ``forward`` (``"relu"``, ``"relu_1"``), or module types (``nn.ReLU``).  ``None``
        captures every ``nn.ReLU``/``nn.ReLU6`` module, or, when there is none, every functional
        ReLU call (FX nodes named ``relu``, ``relu_1``...).  A module called several times gives
        one block per call (``name@0``, ``name@1``...); tuple/list/dict outputs give one block per
        tensor (``name[0]``, ``name[key]``).
    include_input : bool, default True
        Add one block per input channel (the paper's D_i), named ``"input:0"``, ``"input:1"``...
    device : str or torch.device, optional
        Where to run the model; default: where its parameters are.  Batches are moved there and
        activations come back to the CPU batch by batch.
    max_samples : int, optional
        Stop after this many samples.
    nonneg : {"error", "shift", "split", "abs"}, default "error"
        What to do with negative values: raise an error naming the block (default); subtract the
        block minimum; keep positive and negative parts as two blocks (``name+``, ``name-``); or take
        the absolute value.
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
    """
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if nonneg not in NONNEG_POLICIES:
        raise InputError(f"nonneg must be one of {NONNEG_POLICIES}, got {nonneg!r}")
    if max_samples is not None and (isinstance(max_samples, bool) or int(max_samples) < 1):
        raise InputError(f"max_samples must be a positive integer, got {max_samples!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer, float))
                                  or not max_bytes > 0):
        raise InputError(f"max_bytes must be a positive number of bytes, got {max_bytes!r}")
    plan = _resolve_layers(model, layers)
    meta_params = [n for n, p in list(model.named_parameters()) + list(model.named_buffers()) if p.is_meta]
    if meta_params:
        raise DeviceError(
            f"{type(model).__name__} has parameters on the 'meta' device (no data), e.g. {meta_params[:3]}; "
            "materialize it first: model.to_empty(device='cpu') and then load_state_dict(...)"
        )
    try:
        run_device = torch.device(device) if device is not None else _model_device(model)
    except (RuntimeError, TypeError) as e:
        raise InputError(f"device={device!r} is not a valid torch device ({e}); use 'cpu' or 'cuda'") from e
    if run_device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            f"device={str(run_device)!r} was requested (or the model is there) but CUDA is not available in this "
            "PyTorch; use device='cpu'"
        )
    store_dir = None
    if storage is not None:
        store_dir = Path(storage)
        store_dir.mkdir(parents=True, exist_ok=True)

    n_hint = _n_samples_hint(data)
    if n_hint is not None and max_samples is not None:
        n_hint = min(n_hint, int(max_samples))
    if n_hint == 0:
        raise InputError("data is empty: there are no samples to capture")

    rec = _Recorder(nonneg, pool, store_dir)
    was_training = model.training
    moved = False
    if device is not None and _model_device(model) != run_device:
        original_device = _model_device(model)
        model.to(run_device)
        moved = True
    dtype = _model_dtype(model)
    handles = []
    runner: Callable[[torch.Tensor], Any]
    interrupted = False
    try:
        model.eval()
        if plan.mode == "hooks":
            modules = dict(model.named_modules())
            for name in plan.names:
                handles.append(modules[name].register_forward_hook(_make_hook(rec, name)))
            runner = model
        else:
            runner = _fx_extractor(model, plan.names)
        labels: list[np.ndarray] = []
        has_labels = True
        total = 0
        bar = tqdm(total=n_hint, desc="capture", unit="sample", disable=not progress)
        try:
            with torch.no_grad():
                for x, y in _iter_batches(data, batch_size):
                    if max_samples is not None and total >= max_samples:
                        break
                    if max_samples is not None and total + x.shape[0] > max_samples:
                        x = x[: max_samples - total]
                        y = y[: max_samples - total] if y is not None and hasattr(y, "__getitem__") else y
                    n = int(x.shape[0])
                    if n == 0:
                        continue
                    xin = _prepare_input(x, run_device, dtype)
                    if total == 0:
                        # One sample through the model, keeping only names and shapes: the memory
                        # check below runs before any block buffer exists.
                        rec.probing = True
                        _run_batch(rec, runner, plan, model, x[:1], xin[:1], include_input, input_transform, 0)
                        rec.probing = False
                        _check_hooks_fired(rec, plan)
                        if store_dir is not None:
                            _check_storage_free(rec, store_dir)
                        planned = n_hint if n_hint is not None else (max_samples or n)
                        _check_memory(rec, planned, max_bytes, store_dir)
                        if n_hint is not None:
                            rec.allocate(n_hint)
                    elif rec.capacity is None:  # unknown length: keep checking as the records grow
                        _check_memory(rec, total + n, max_bytes, store_dir, growing=True)
                    _run_batch(rec, runner, plan, model, x, xin, include_input, input_transform, total)
                    lab = _labels_of(y, n)
                    if lab is None:
                        has_labels = False
                    else:
                        labels.append(lab)
                    total += n
                    rec.offset = total
                    bar.update(n)
        except KeyboardInterrupt:
            if total == 0:
                raise
            interrupted = True
            warnings.warn(
                f"capture interrupted: keeping the {total} samples captured so far (of "
                f"{n_hint if n_hint is not None else 'an unknown number'}); acts.meta['interrupted'] is True",
                stacklevel=2,
            )
        finally:
            rec.probing = False
            bar.close()
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
        if moved:
            model.to(original_device)
    if total == 0:
        raise InputError("data is empty: no batch had any sample")
    if rec.capacity is None:
        for slot in rec.slots.values():  # a record of a batch cut short by an interruption
            _drop_partial(slot, total)
        rec.allocate(total)
    elif total < rec.capacity:  # fewer samples than announced (e.g. an IterableDataset)
        for slot in rec.slots.values():
            slot.buf = slot.buf[:total]
    blocks = _finish_blocks(rec, nonneg)
    meta = {
        "model": type(model).__name__,
        "layers": plan.names,
        "mode": plan.mode,
        "nonneg": nonneg,
        "pool": pool,
        "n_samples": total,
        "torch": torch.__version__,
    }
    if interrupted:
        meta["interrupted"] = True
    y_all = np.concatenate(labels) if has_labels and labels else None
    return Activations(blocks, labels=y_all, meta=meta)


def _drop_partial(slot: _Slot, total: int) -> None:
    """Keep only the pending records of complete batches (the first ``total`` samples)."""
    kept, n = [], 0
    for part in slot.pending:
        if n >= total:
            break
        kept.append(part[: total - n])
        n += len(kept[-1])
    slot.pending = kept


def _oom_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = []
    for mod, attr in ((torch, "OutOfMemoryError"), (torch.cuda, "OutOfMemoryError")):
        t = getattr(mod, attr, None)
        if isinstance(t, type) and t not in types:
            types.append(t)
    return tuple(types)


def _run_batch(rec, runner, plan, model, x, xin, include_input, input_transform, start: int) -> None:
    """Record the input blocks of one batch and run the model on it, with clear errors."""
    n = int(x.shape[0])
    rec.batch_n = n
    rec.calls.clear()
    rec.seen.clear()
    if include_input:
        shown = input_transform(x) if input_transform is not None else x
        if not isinstance(shown, torch.Tensor) or shown.ndim == 0 or shown.shape[0] != n:
            raise InputError("input_transform must return a tensor with the same batch size")
        for name, part, _ in _input_blocks(shown.float()):
            rec.record(name, part, kind="input")
    _ACTIVE.rec = rec  # FX graphs record through it (see _record_node)
    try:
        runner(xin)
    except KeyboardInterrupt:
        raise
    except PeeklensError:
        raise
    except _oom_types() as e:
        raise DeviceError(
            f"{type(model).__name__} ran out of GPU memory on the batch starting at sample {start} "
            f"({n} samples of shape {tuple(x.shape[1:])}): use a smaller batch_size= (or DataLoader batch size), "
            "capture fewer layers=, or run on the CPU with device='cpu'"
        ) from e
    except MemoryError as e:
        raise MemoryLimitError(
            f"{type(model).__name__} ran out of memory on the batch starting at sample {start} ({n} samples): "
            "use a smaller batch_size= (or DataLoader batch size) or capture fewer layers="
        ) from e
    except Exception as e:  # noqa: BLE001
        raise CaptureError(
            f"{type(model).__name__} raised {type(e).__name__} on the batch starting at sample "
            f"{start} (input shape {tuple(x.shape)}): {e}"
        ) from e
    finally:
        _ACTIVE.rec = None
    if not rec.probing:
        skipped = [_pretty_name(k) for k in rec.slots if k not in rec.seen]
        if skipped:
            raise CaptureError(
                f"layers {skipped} did not run on the batch starting at sample {start} (data-dependent control "
                "flow in forward, or a module called fewer times); capture layers that run for every input"
            )


def _make_hook(rec: _Recorder, name: str):
    def hook(module, inputs, output):
        k = rec.calls.get(name, 0)
        rec.calls[name] = k + 1
        parts = _flatten_output(name, output)
        if not parts:
            raise CaptureError(
                f"layer {name!r} returned {type(output).__name__}, not a tensor; capture one of its submodules "
                "or a layer whose output is a tensor"
            )
        for nm, t in parts:
            rec.record(f"{nm}@{k}", t)

    return hook


def _check_hooks_fired(rec: _Recorder, plan: _Plan) -> None:
    if plan.mode != "hooks":
        return
    fired = {n.split("@")[0].split("[")[0] for n in rec.slots if not n.startswith("input:")}
    silent = [n for n in plan.names if n not in fired]
    if silent:
        raise CaptureError(
            f"layers {silent} never ran during the forward pass on the first sample (modules defined but not "
            "called in forward, or called only under data-dependent control flow); pick layers that forward() "
            "uses for every input"
        )


def _check_memory(rec: _Recorder, n_total: int, max_bytes, store: Path | None, growing: bool = False):
    """Refuse when the blocks for ``n_total`` samples would exceed ``max_bytes`` or 80 % of what is free."""
    per_block = {s.name: int(np.prod(s.shape) if s.shape else 1) * 4 * n_total for s in rec.slots.values()}
    need = sum(per_block.values())
    if store is not None and not growing:
        import shutil

        avail = shutil.disk_usage(store).free
        where = f"free disk in {store}"
    else:
        avail = available_memory()
        where = "available memory"
        if growing and avail is not None and max_bytes is None:
            # Records of unknown-length data wait in RAM (already counted as used) and are
            # copied into the final buffers at the end: count them twice.
            held = sum(sum(p.nbytes for p in s.pending) for s in rec.slots.values())
            avail += held
            need *= 2
    limit = max_bytes if max_bytes is not None else (int(avail * 0.8) if avail else None)
    if limit is not None and need > limit:
        biggest = sorted(per_block.items(), key=lambda kv: -kv[1])[:5]
        detail = ", ".join(f"{_pretty_name(k)!r}: {format_bytes(v)}" for k, v in biggest)
        src = f"max_bytes={max_bytes}" if max_bytes is not None else f"80 % of the {where} ({format_bytes(avail)})"
        if growing:  # unknown length: the records so far plus this batch already need too much
            src += " (the data has no length, so the records grow in memory until the end)"
        raise MemoryLimitError(
            f"capturing {n_total} samples needs about {format_bytes(need)}, more than {src}. "
            f"Largest blocks: {detail}. Reduce it with max_samples=, spatial pooling pool=1 or pool=2, "
            "fewer layers=, or storage='some/dir' to keep blocks on disk"
        )


def _pretty_name(name: str) -> str:
    return name[:-2] if name.endswith("@0") else name


def _finish_blocks(rec: _Recorder, nonneg: str) -> dict[str, Block]:
    # Names: drop the "@0" of modules called once; keep "@k" for modules called several times.
    bases: dict[str, int] = {}
    for name in rec.slots:
        if "@" in name:
            base = name.rsplit("@", 1)[0]
            bases[base] = bases.get(base, 0) + 1
    blocks: dict[str, Block] = {}
    for name, slot in rec.slots.items():
        nice = name
        if "@" in name:
            base = name.rsplit("@", 1)[0]
            nice = base if bases[base] == 1 else name
        data = slot.buf.T  # (features x samples) view of the samples-major buffer
        shape = slot.shape if slot.shape else (1,)
        kind = slot.kind
        if slot.lo >= 0 or nonneg == "error":
            blocks[nice] = Block(nice, data, shape, kind)
        elif nonneg == "shift":
            slot.buf -= np.float32(slot.lo)
            blocks[nice] = Block(nice, data, shape, kind, transform=f"shift({slot.lo:.6g})")
        elif nonneg == "abs":
            np.abs(slot.buf, out=slot.buf)
            blocks[nice] = Block(nice, data, shape, kind, transform="abs")
        elif nonneg == "split":
            neg = np.maximum(-slot.buf, 0)
            np.maximum(slot.buf, 0, out=slot.buf)
            blocks[nice + "+"] = Block(nice + "+", data, shape, kind, transform="split+")
            blocks[nice + "-"] = Block(nice + "-", neg.T, shape, kind, transform="split-")
    return blocks


def estimate_bytes(
    model: nn.Module,
    example: torch.Tensor,
    n_samples: int,
    layers=None,
    *,
    include_input: bool = True,
    pool=None,
) -> dict[str, int]:
    """Bytes each block would take when capturing ``n_samples`` inputs shaped like ``example``.

    Runs the model once on ``example`` (a small batch) to learn the layer shapes.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(10, 32), nn.ReLU())
    >>> estimate_bytes(model, torch.rand(2, 10), 1000, layers=["1"])
    {'input:0': 40000, '1': 128000}
    """
    acts = capture(model, example, layers, include_input=include_input, pool=pool, progress=False,
                   nonneg="abs", max_bytes=1 << 62)
    return {n: b.n_features * 4 * int(n_samples) for n, b in acts.blocks.items()}
