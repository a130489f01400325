"""How a batch reaches the model, and which parts of it are the input, the labels and the padding mask.

The rules (also in ``docs/capture.md`` and the docstring of :func:`peeklens.capture`):

* a **tensor** (or array) batch ``x`` is called as ``model(x)``; ``x`` is the input;
* a **tuple/list** batch ``(x, y, ...)`` is called as ``model(x)``; ``x`` is the input, ``y`` the labels;
* a **dict** batch whose keys name parameters of ``model.forward`` is called with those entries as keyword
  arguments (``model(input_ids=..., attention_mask=...)``; every key when ``forward`` takes ``**kwargs``),
  except the labels entry; other dicts are called as ``model(batch["x"])`` (or ``"input"``, ``"image"``...).
  The input is the first of ``"x"``, ``"input"``, ``"inputs"``, ``"image"``, ``"images"``, ``"pixel_values"``,
  ``"input_ids"``; the labels the first of ``"y"``, ``"label"``, ``"labels"``, ``"target"``, ``"targets"``;
  the padding mask is ``"attention_mask"``;
* ``forward=`` (a callable ``(model, batch) -> output``) replaces the call for anything else;
* ``inputs=``, ``labels=`` and ``mask=`` choose those parts explicitly: a key, an index, or a callable of the
  batch (``None`` for the defaults above, ``False`` for none).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import DeviceError, InputError

__all__ = ["Batch", "Feeder", "is_opaque", "iter_batches", "labels_of", "map_tensors", "n_samples_hint"]

INPUT_KEYS = ("x", "input", "inputs", "image", "images", "pixel_values", "input_ids")
LABEL_KEYS = ("y", "label", "labels", "target", "targets")
MASK_KEYS = ("attention_mask",)


def iter_batches(data: Any, batch_size: int) -> Iterator[Any]:
    """Yield the batches of a DataLoader, Dataset, tensor, array or iterable of batches, as they are.

    >>> [tuple(x.shape) for x in iter_batches(torch.zeros(5, 2), 2)]
    [(2, 2), (2, 2), (1, 2)]
    """
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(data)
    if isinstance(data, torch.Tensor):
        if data.ndim == 0:
            raise InputError("data is a 0-d tensor; give a batch of samples (first axis = samples)")
        for i in range(0, data.shape[0], batch_size):
            yield data[i : i + batch_size]
        return
    if isinstance(data, Mapping):  # one dict batch (e.g. a tokenizer's output)
        yield data
        return
    if isinstance(data, torch.utils.data.Dataset) and not isinstance(data, torch.utils.data.IterableDataset):
        if not hasattr(data, "__len__"):
            raise InputError("a map-style Dataset without __len__ cannot be captured; wrap it in a DataLoader")
        data = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False)
    if not isinstance(data, Iterable):
        raise InputError(
            f"data must be a DataLoader, a Dataset, a tensor or an iterable of batches, got {type(data).__name__}"
        )
    yield from data


def n_samples_hint(data: Any) -> int | None:
    """Number of samples if it can be known before iterating.

    >>> n_samples_hint(torch.zeros(7, 3)), n_samples_hint(iter([]))
    (7, None)
    """
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


def labels_of(y: Any, n: int) -> np.ndarray | None:
    """Integer labels of one batch of ``n`` samples as int64 (shape (n,) or (n, positions)), else None.

    >>> labels_of(torch.tensor([1, 0]), 2)
    array([1, 0])
    """
    if y is None:
        return None
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    try:
        y = np.asarray(y)
    except (ValueError, TypeError):
        return None
    if y.ndim not in (1, 2) or y.shape[0] != n or not np.issubdtype(y.dtype, np.integer):
        return None
    return y.astype(np.int64)


def map_tensors(obj: Any, fn: Callable[[torch.Tensor], Any]) -> Any:
    """``obj`` with ``fn`` applied to every tensor inside (dicts, lists and tuples are rebuilt).

    >>> map_tensors({"a": torch.ones(2), "b": [torch.zeros(1), 3]}, lambda t: t + 1)["b"][0]
    tensor([1.])
    """
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, Mapping):  # dict subclasses keep their type; other mappings become dicts
        out = {k: map_tensors(v, fn) for k, v in obj.items()}
        return type(obj)(out) if isinstance(obj, dict) else out
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # namedtuple
        return type(obj)(*(map_tensors(v, fn) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(map_tensors(v, fn) for v in obj)
    return obj


def is_opaque(batch: Any) -> bool:
    """Whether a batch is an object peeklens cannot look into (not a tensor, array, dict or sequence).

    >>> is_opaque((torch.ones(1),)), is_opaque(object())
    (False, True)
    """
    return not isinstance(batch, (torch.Tensor, np.ndarray, Mapping, Sequence)) or isinstance(batch, (str, bytes))


def _first_tensor(obj: Any) -> torch.Tensor | None:
    found: list[torch.Tensor] = []

    def grab(t):
        if not found:
            found.append(t)
        return t

    map_tensors(obj, grab)
    return found[0] if found else None


@dataclass
class Batch:
    """One batch as the model gets it, and its parts: the stored input, the labels, the padding mask."""

    raw: Any
    n: int
    inputs: torch.Tensor | None
    labels: Any
    mask: torch.Tensor | None
    #: key of the labels entry of a dict batch (never passed to the model)
    label_key: Any = None


class Feeder:
    """Splits each batch into its parts and calls the model on it (see the module's rules).

    Examples
    --------
    >>> f = Feeder(nn.Linear(2, 1))
    >>> b = f.split((torch.ones(3, 2), torch.tensor([0, 1, 0])))
    >>> b.n, b.labels.tolist()
    (3, [0, 1, 0])
    """

    def __init__(self, model: nn.Module, forward: Callable | None = None, inputs=None, labels=None, mask=None,
                 needs_mask: bool = False):
        if forward is not None and not callable(forward):
            raise InputError(f"forward= must be a callable (model, batch) -> output, got {type(forward).__name__}")
        for what, sel in (("inputs", inputs), ("labels", labels), ("mask", mask)):
            if not (sel is None or sel is False or (isinstance(sel, (str, int)) and sel is not True) or callable(sel)):
                raise InputError(
                    f"{what}= must be a key (str), an index (int), a callable of the batch, None or False; "
                    f"got {sel!r}"
                )
        self.forward = forward
        self.needs_mask = needs_mask
        self.sel_inputs, self.sel_labels, self.sel_mask = inputs, labels, mask
        try:
            params = inspect.signature(model.forward).parameters
        except (TypeError, ValueError):  # builtins, some scripted modules
            params = {}
        self.params = [p for p, v in params.items() if v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)]
        self.takes_kwargs = any(v.kind == v.VAR_KEYWORD for v in params.values())

    # ------------------------------------------------------------------ parts
    def split(self, batch: Any) -> Batch:
        """The parts of one batch as given by the data."""
        if isinstance(batch, np.ndarray):
            batch = torch.from_numpy(batch)
        if is_opaque(batch) and self.forward is None:
            raise InputError(
                f"each batch must be a tensor, a tuple (x, y, ...) or a dict of tensors, got {type(batch).__name__}; "
                "for other batch objects pass forward=lambda model, batch: ... and inputs=lambda batch: ..."
            )
        inputs = self._pick("inputs", batch, self.sel_inputs, self._default_inputs)
        labels = self._pick("labels", batch, self.sel_labels, self._default_labels)
        mask = self._pick("mask", batch, self.sel_mask, self._default_mask)
        if isinstance(inputs, np.ndarray):
            inputs = torch.from_numpy(inputs)
        if inputs is not None and not isinstance(inputs, torch.Tensor):
            raise InputError(
                f"the batch's input part is a {type(inputs).__name__}, not a tensor; give tensors, or choose the "
                "input with inputs= (a key, an index or a callable returning a tensor)"
            )
        if mask is not None and not isinstance(mask, torch.Tensor):
            mask = torch.as_tensor(np.asarray(mask))
        anchor = inputs if inputs is not None else _first_tensor(batch)
        if anchor is None or anchor.ndim == 0:
            raise InputError(
                f"no tensor with a batch axis found in a batch of type {type(batch).__name__}; give tensors "
                "whose first axis is the samples"
            )
        label_key = self.sel_labels if isinstance(self.sel_labels, str) else None
        if label_key is None and self.sel_labels is None and isinstance(batch, Mapping):
            label_key = next((k for k in LABEL_KEYS if k in batch), None)
        n = int(anchor.shape[0])
        if self.needs_mask and mask is not None and (mask.ndim != 2 or mask.shape[0] != n):
            raise InputError(
                f"the attention mask has shape {tuple(mask.shape)}, expected (batch, positions) = ({n}, positions); "
                "give a mask with one row per sample and one column per token (mask= chooses it, mask=False "
                "ignores it)"
            )
        return Batch(batch, n, inputs, labels, mask, label_key)

    def _pick(self, what: str, batch, sel, default):
        if sel is False:
            return None
        if sel is None:
            return None if is_opaque(batch) else default(batch)
        if callable(sel) and not isinstance(sel, (str, int)):
            return sel(batch)
        try:
            if isinstance(batch, torch.Tensor):
                raise TypeError
            return batch[sel]
        except (KeyError, IndexError, TypeError):
            keys = list(batch) if isinstance(batch, Mapping) else (
                f"indices 0..{len(batch) - 1}" if isinstance(batch, Sequence) else "a plain tensor")
            raise InputError(
                f"{what}={sel!r} is not part of the batch (it has {keys}); give a key, an index or a callable "
                "that picks it from the batch"
            ) from None

    @staticmethod
    def _default_inputs(batch):
        if isinstance(batch, torch.Tensor):
            return batch
        if isinstance(batch, Mapping):
            return next((batch[k] for k in INPUT_KEYS if k in batch), None)
        return batch[0] if len(batch) >= 1 else None

    @staticmethod
    def _default_labels(batch):
        if isinstance(batch, torch.Tensor):
            return None
        if isinstance(batch, Mapping):
            return next((batch[k] for k in LABEL_KEYS if k in batch), None)
        return batch[1] if len(batch) > 1 else None

    @staticmethod
    def _default_mask(batch):
        if isinstance(batch, Mapping):
            return next((batch[k] for k in MASK_KEYS if k in batch), None)
        return None

    # ------------------------------------------------------------------ call
    def kwargs_of(self, raw: Any, label_key: Any = None) -> dict | None:
        """Keyword arguments for a dict batch whose keys name ``forward``'s parameters, else None."""
        if not isinstance(raw, Mapping):
            return None
        keys = [k for k in raw if k != label_key]
        if not any(k in self.params for k in keys):
            return None
        return {k: raw[k] for k in keys if k in self.params or self.takes_kwargs}

    def call(self, runner: Callable, b: Batch, raw: Any) -> Any:
        """Run ``runner`` (the model or its traced copy) on ``raw``, the batch moved to the model's device."""
        if self.forward is not None:
            return self.forward(runner, raw)
        if isinstance(raw, torch.Tensor):
            return runner(raw)
        if isinstance(raw, Mapping):
            kwargs = self.kwargs_of(raw, b.label_key)
            if kwargs is not None:
                return runner(**kwargs)
            sel = self.sel_inputs
            x = self._default_inputs(raw) if sel is None or sel is False else self._pick(
                "inputs", raw, sel, self._default_inputs)
            if x is None:
                raise InputError(
                    f"a dict batch needs an 'x' (or 'input', 'image') entry, or keys naming the parameters of "
                    f"forward {self.params}; got keys {list(raw)}. Or pass forward=lambda model, batch: ..."
                )
            return runner(x)
        return runner(raw[0])

    # ------------------------------------------------------------------ slicing and moving
    @staticmethod
    def head(b: Batch, k: int) -> Batch:
        """The first ``k`` samples of a batch (tensors whose first axis is the batch are cut).

        A batch object of another type (with ``forward=``) cannot be cut: it is returned whole.
        """
        n = b.n
        if is_opaque(b.raw):
            return b

        def cut(t):
            return t[:k] if t.ndim >= 1 and t.shape[0] == n else t

        raw = map_tensors(b.raw, cut)
        inputs = None if b.inputs is None else cut(b.inputs)
        mask = None if b.mask is None else cut(b.mask)
        labels = b.labels
        per_sample = (isinstance(labels, (torch.Tensor, np.ndarray)) and labels.ndim >= 1 and labels.shape[0] == n) or (
            isinstance(labels, list) and len(labels) == n)
        if per_sample:
            labels = labels[:k]
        return Batch(raw, min(k, n), inputs, labels, mask, b.label_key)

    @staticmethod
    def to_device(raw: Any, device: torch.device, dtype: torch.dtype, clone: bool = False) -> Any:
        """Every tensor of the batch moved to ``device``; floating ones as ``dtype``; copies when ``clone``."""

        def move(t: torch.Tensor) -> torch.Tensor:
            if t.is_meta:
                raise InputError("the inputs are on the 'meta' device (tensors without data); give real tensors")
            if t.is_complex():
                raise InputError("complex inputs are not supported; give real floating-point tensors")
            try:
                out = t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype, non_blocking=True)
            except (RuntimeError, AssertionError) as e:  # e.g. a CUDA tensor in a build or machine without it
                raise DeviceError(
                    f"cannot move inputs from {t.device} to the model's device {device} ({e}); put the model and "
                    "the data on a device this machine has, e.g. device='cpu'"
                ) from e
            return out.clone() if clone and out is t else out

        return map_tensors(raw, move)
