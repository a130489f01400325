"""Where the blocks live (RAM buffers or memory-mapped ``.npy`` files) and whether they fit."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from .._memory import available_memory, format_bytes
from ..errors import InputError, MemoryLimitError
from .outputs import pretty_name

__all__ = ["block_filename", "check_memory", "check_storage_free", "new_buffer"]


def block_filename(name: str) -> str:
    """The file name a block gets under ``storage=``.

    >>> block_filename("layer1.0/relu@1")
    'layer1.0_relu@1.npy'
    """
    return re.sub(r"[^A-Za-z0-9_.@+-]", "_", name) + ".npy"


def new_buffer(name: str, n_samples: int, n_features: int, storage: Path | None) -> np.ndarray:
    """A (samples x features) float32 buffer: in RAM, or a memory-mapped file in ``storage``.

    >>> new_buffer("a", 3, 2, None).shape
    (3, 2)
    """
    if storage is not None:
        path = storage / block_filename(name)
        return np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_samples, n_features))
    # torch's allocator maps large buffers with far fewer page faults than NumPy's
    # (2.3x faster first writes here), which is most of capture's overhead.
    return torch.empty((n_samples, n_features), dtype=torch.float32).numpy()


def check_storage_free(names: Iterable[str], store: Path) -> None:
    """Never overwrite the block files of an earlier capture (its Activations may still map them)."""
    taken = [block_filename(n) for n in names if (store / block_filename(n)).exists()]
    if taken:
        raise InputError(
            f"storage directory {str(store)!r} already holds block files {taken[:4]} of an earlier capture, "
            "which may still be in use; give a new or empty directory (or delete those files first)"
        )


def check_memory(
    features: dict[str, int],
    n_total: int,
    max_bytes,
    store: Path | None,
    growing: bool = False,
    held: int = 0,
) -> None:
    """Refuse when the blocks for ``n_total`` samples would exceed ``max_bytes`` or 80 % of what is free.

    ``features`` maps block names to features per sample; ``held`` is the bytes of records already
    waiting in RAM when the data has no length (``growing``).

    >>> check_memory({"a": 10}, 100, max_bytes=10**6, store=None)
    >>> check_memory({"a": 10}, 100, max_bytes=10, store=None)
    Traceback (most recent call last):
    ...
    peeklens.errors.MemoryLimitError: capturing 100 samples needs about 3.9 KiB, more than max_bytes=10. ...
    """
    per_block = {k: int(f) * 4 * n_total for k, f in features.items()}
    need = sum(per_block.values())
    if store is not None and not growing:
        avail = shutil.disk_usage(store).free
        where = f"free disk in {store}"
    else:
        avail = available_memory()
        where = "available memory"
        if growing and avail is not None and max_bytes is None:
            # Records of unknown-length data wait in RAM (already counted as used) and are
            # copied into the final buffers at the end: count them twice.
            avail += held
            need *= 2
    limit = max_bytes if max_bytes is not None else (int(avail * 0.8) if avail else None)
    if limit is not None and need > limit:
        biggest = sorted(per_block.items(), key=lambda kv: -kv[1])[:5]
        detail = ", ".join(f"{pretty_name(k)!r}: {format_bytes(v)}" for k, v in biggest)
        src = f"max_bytes={max_bytes}" if max_bytes is not None else f"80 % of the {where} ({format_bytes(avail)})"
        if growing:  # unknown length: the records so far plus this batch already need too much
            src += " (the data has no length, so the records grow in memory until the end)"
        raise MemoryLimitError(
            f"capturing {n_total} samples needs about {format_bytes(need)}, more than {src}. "
            f"Largest blocks: {detail}. Reduce it with max_samples=, spatial pooling pool=1 or pool=2, "
            "fewer layers=, or storage='some/dir' to keep blocks on disk"
        )
