"""How the data is cut into batches, and which part of a batch is the input and which the labels."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Iterator

import numpy as np
import torch

from ..errors import InputError

__all__ = ["iter_batches", "n_samples_hint", "labels_of"]


def iter_batches(data: Any, batch_size: int) -> Iterator[tuple[torch.Tensor, Any]]:
    """Yield ``(x, y_or_None)`` from a DataLoader, Dataset, tensor, array or iterable of batches.

    >>> [tuple(x.shape) for x, _ in iter_batches(torch.zeros(5, 2), 2)]
    [(2, 2), (2, 2), (1, 2)]
    """
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
    """Integer labels of one batch of ``n`` samples as int64, or None when ``y`` is not that.

    >>> labels_of(torch.tensor([1, 0]), 2)
    array([1, 0])
    """
    if y is None:
        return None
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        return None
    return y.astype(np.int64)
